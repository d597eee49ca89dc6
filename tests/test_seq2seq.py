"""Seq2Seq: gradients through encoder, attention and decoder; padding; teacher forcing; decoding."""
import itertools

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

SOS, EOS = 1, 2


def tiny_model(seed=0, **options):
    tr.manual_seed(seed)
    settings = dict(source_vocab_size=7, target_vocab_size=5, embedding_size=3, hidden_size=2, fused=False)
    settings.update(options)
    return nn.Seq2Seq(**settings)


def batch(seed=0, S=4, T=4, B=3, source_vocab=7, target_vocab=5):
    rng = np.random.default_rng(seed)
    source = rng.integers(3, source_vocab, size=(S, B))
    target = rng.integers(3, target_vocab, size=(T, B))
    target[0] = SOS
    return source, target


def set_parameter(module, dotted_name, value):
    *path, name = dotted_name.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, name, value)


def log_prob_of(model, source, lengths, tokens):
    """log p(tokens, EOS | source) for one source (S, 1), by teacher forcing."""
    target = np.array([SOS] + list(tokens) + [EOS])[:, None]
    with tr.no_grad():
        log_probs = model(source, target, lengths).log_softmax(axis=-1).data[:, 0]   # (n+1, V)
    return float(log_probs[np.arange(len(target) - 1), target[1:, 0]].sum())


# --------------------------------------------------------------------------
# Gradients: the whole encoder–decoder, every parameter, in float64
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cell, bidirectional, attention", [
    ("lstm", True, "additive"), ("gru", False, "general"), ("gru", True, "scaled_dot"), ("lstm", False, None)])
def test_seq2seq_gradcheck_every_parameter(cell, bidirectional, attention):
    model = tiny_model(cell=cell, bidirectional=bidirectional, attention=attention).double()
    source, target = batch(S=3, T=3, B=2)
    lengths = np.array([2, 3])                      # unsorted on purpose: enforce_sorted=False inside
    names = [name for name, _ in model.named_parameters()]

    def fn(*parameters):
        for name, value in zip(names, parameters):
            set_parameter(model, name, value)
        return model(source, target, lengths)

    report = tr.gradcheck(fn, [p.data for p in model.parameters()], names=names)
    assert report.passed and len(report.inputs) == len(names)


# --------------------------------------------------------------------------
# Padding, layouts and the fused path
# --------------------------------------------------------------------------

def test_padding_of_the_source_changes_nothing():
    model = tiny_model(bidirectional=True)
    source, target = batch(S=5, T=4, B=2, seed=1)
    lengths = np.array([3, 5])
    garbage = source.copy()
    garbage[3:, 0] = 6                               # different padding tokens
    together = model(garbage, target, lengths).data[:, 0]
    alone = model(source[:3, :1], target[:, :1]).data[:, 0]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_batch_first_matches_time_major():
    source, target = batch(seed=2)
    time_major = tiny_model(seed=3)
    batch_first = tiny_model(seed=3, batch_first=True)
    a = time_major(source, target, [4, 2, 3]).data
    b = batch_first(source.T, target.T, [4, 2, 3]).data
    np.testing.assert_allclose(b, a.transpose(1, 0, 2), rtol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fused_and_composite_models_agree(cell):
    source, target = batch(seed=4)
    composite = tiny_model(seed=5, cell=cell, bidirectional=True, fused=False)
    fused = tiny_model(seed=5, cell=cell, bidirectional=True, fused=True)
    losses = []
    for model in (composite, fused):
        loss = nn.cross_entropy(model(source, target, [4, 1, 3]), target[1:])
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for (name, p), q in zip(composite.named_parameters(), fused.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6, err_msg=name)


# --------------------------------------------------------------------------
# Teacher forcing and decoding
# --------------------------------------------------------------------------

def test_without_teacher_forcing_the_decoder_reads_its_own_greedy_outputs():
    model = tiny_model(seed=6, attention="dot", bidirectional=True)
    source, target = batch(seed=7, T=6)
    lengths = [4, 3, 2]
    free_running = model(source, target, lengths, teacher_forcing_ratio=0.0).data.argmax(axis=-1)   # (5, B)
    greedy = model.decode(source, lengths, max_length=5)
    for b, tokens in enumerate(greedy):
        assert list(free_running[:len(tokens), b]) == tokens
        if len(tokens) < 5:
            assert free_running[len(tokens), b] == EOS
    forced = model(source, target, lengths, teacher_forcing_ratio=1.0).data
    assert not np.allclose(forced, model(source, target, lengths, teacher_forcing_ratio=0.0).data)


def test_greedy_decode_returns_attention_rows_that_sum_to_one_over_the_source():
    model = tiny_model(seed=8)
    source, _ = batch(seed=9, S=6)
    lengths = [6, 2, 4]
    tokens, attention = model.decode(source, lengths, max_length=7, return_attention=True)
    for b, (out, weights) in enumerate(zip(tokens, attention)):
        assert weights.shape == (len(out), lengths[b])
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wide_enough_finds_the_exact_best_output(alpha):
    """Beam width > number of prefixes: nothing is pruned, so beam search is exhaustive search."""
    model = tiny_model(seed=10, target_vocab_size=4, bidirectional=True)
    model.output.bias.data[EOS] -= 2.0               # make EOS rarer so lengths vary
    source, _ = batch(seed=11, B=1)
    max_length = 4
    candidates = [tokens for n in range(max_length)
                  for tokens in itertools.product([0, 1, 3], repeat=n)]   # every non-EOS token
    scores = {tokens: log_prob_of(model, source, None, tokens) / (len(tokens) + 1) ** alpha
              for tokens in candidates}
    best = max(scores, key=scores.get)
    (found,), (attention,) = model.decode(source, max_length=max_length, beam_width=200, alpha=alpha,
                                          return_attention=True)
    assert tuple(found) == best
    assert attention.shape == (len(found), source.shape[0])


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_a_narrow_beam_keeps_an_early_ending_that_wins(seed):
    """Token 3 is likely at every step, EOS unlikely: ending at once is the best output, although EOS
    is never among the top two candidates. Beam search keeps every ending it meets and stops only
    when no live prefix can beat the best one, so even a beam of 2 finds it."""
    model = tiny_model(seed=seed, target_vocab_size=4, bidirectional=True)
    model.output.bias.data[:] = [0.0, 0.0, -2.0, 3.0]
    source, _ = batch(seed=11, B=1)
    exhaustive = model.decode(source, max_length=5, beam_width=200)
    assert exhaustive == [[]] and model.decode(source, max_length=5, beam_width=2) == exhaustive


def test_length_normalisation_never_prefers_a_shorter_output():
    """Over the same finished hypotheses, log p / n (alpha = 1) never picks a shorter one than log p
    (alpha = 0): a shorter winner would need a higher log p *and* a higher log p / n. Here, untrained,
    alpha = 0 stops at once (EOS first: the fewest negative terms) while alpha = 1 writes tokens."""
    model = tiny_model(seed=12, target_vocab_size=4)
    source, _ = batch(seed=13, B=1)
    outputs = {alpha: model.decode(source, max_length=6, beam_width=30, alpha=alpha)[0] for alpha in (0.0, 1.0)}
    assert outputs[0.0] == [] and len(outputs[1.0]) >= 3


def test_a_saved_model_rebuilt_from_its_config_decodes_the_same(tmp_path):
    model = tiny_model(seed=16, bidirectional=True, attention="general", cell="gru")
    tr.io.save(model, tmp_path / "seq2seq.npz")
    saved = tr.io.load(tmp_path / "seq2seq.npz")
    rebuilt = nn.Seq2Seq(**saved.config)
    tr.io.load(tmp_path / "seq2seq.npz", into=rebuilt)
    source, _ = batch(seed=17)
    assert rebuilt.decode(source, beam_width=3) == model.decode(source, beam_width=3)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    model = tiny_model()
    source, target = batch()
    with pytest.raises(ValueError, match="cell must be one of"):
        tiny_model(cell="rnn")
    with pytest.raises(ValueError, match="attention must be one of"):
        tiny_model(attention="cosine")
    with pytest.raises(ValueError, match="eos_index=9 is outside the target vocabulary"):
        tiny_model(eos_index=9)
    with pytest.raises(ValueError, match=r"source must be a 2-D integer array of token indices \(S, B\)"):
        model(source.astype(float), target)
    with pytest.raises(ValueError, match="target must be"):
        model(source, target[:1])
    with pytest.raises(ValueError, match="teacher_forcing_ratio must be in"):
        model(source, target, teacher_forcing_ratio=2.0)
    with pytest.raises(ValueError, match="beam_width must be a positive integer"):
        model.decode(source, beam_width=0)
    with pytest.raises(ValueError, match="needs a model built with attention"):
        tiny_model(attention=None).decode(source, return_attention=True)
