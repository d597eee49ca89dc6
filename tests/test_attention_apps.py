"""Date-translation data and the attention / CNN+RNN worked examples: each one learns."""
from datetime import date

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import optim
from tinygrad_rnn.apps import cnn_rnn, hard_attention, translate
from tinygrad_rnn.apps.training import Trainer
from tinygrad_rnn.data import dates


def trained(task, steps, lr=1e-2, clip=1.0, seed=0):
    trainer = Trainer(task, optim.Adam(task.model.parameters(), lr=lr), clip=clip, seed=seed)
    return trainer.train(steps=steps, progress=False)


# --------------------------------------------------------------------------
# Date-translation data
# --------------------------------------------------------------------------

def test_date_pairs_are_seeded_valid_and_varied():
    pairs = dates.date_pairs(2000, seed=3)
    assert pairs == dates.date_pairs(2000, seed=3) and pairs != dates.date_pairs(2000, seed=4)
    for _, target in pairs:
        assert dates.FIRST_DAY <= date.fromisoformat(target) <= dates.LAST_DAY
    assert len({source for source, _ in pairs}) > 1900           # many formats, many days
    for source, _ in pairs:
        dates.SOURCE_VOCAB.encode(source)                         # every character is known


def test_formats_write_the_same_day():
    day = date(2026, 11, 23)
    written = [style(day) for style in dates.FORMATS]
    assert "23 November 2026" in written and "November 23, 2026" in written
    assert "monday, november 23, 2026" in written and "the 23rd of November 2026" in written
    assert [dates.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_a_batch_is_padded_time_major_with_lengths_and_sos_eos():
    pairs = [("1 May 2001", "2001-05-01"), ("wednesday, september 30, 2026", "2026-09-30")]
    batch = dates.make_batch(pairs)
    assert batch.source.shape == (29, 2) and batch.source_lengths.tolist() == [10, 29]
    assert np.all(batch.source[10:, 0] == dates.PAD_INDEX)
    assert dates.SOURCE_VOCAB.decode(batch.source[:10, 0]) == "1 May 2001"
    assert batch.target.shape == (12, 2)
    assert np.all(batch.target[0] == dates.SOS_INDEX) and np.all(batch.target[-1] == dates.EOS_INDEX)
    assert dates.decode_target(batch.target[:, 1]) == "2026-09-30"
    batch_first = dates.make_batch(pairs, batch_first=True)
    np.testing.assert_array_equal(batch_first.source, batch.source.T)


def test_batches_visit_every_pair_once():
    pairs = dates.date_pairs(25, seed=0)
    seen = []
    for batch in dates.date_batches(pairs, batch_size=10, rng=1):
        assert batch.source.shape[1] <= 10
        seen += [dates.decode_target(batch.target[:, b]) for b in range(batch.target.shape[1])]
    assert sorted(seen) == sorted(target for _, target in pairs)


def test_bad_data_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        dates.date_pairs(0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(dates.date_batches(dates.date_pairs(3), batch_size=0))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        dates.encode_sources(["23 Novembre 2026 é"])


# --------------------------------------------------------------------------
# Seq2Seq with attention translates dates
# --------------------------------------------------------------------------

def test_translation_loss_falls_and_characters_beat_chance():
    tr.manual_seed(0)
    task = translate.build_task(hidden_size=16, batch_size=32, test_size=100)
    result = trained(task, steps=40)
    assert np.mean(result.losses[-5:]) < 0.5 * np.mean(result.losses[:5])
    assert task.evaluate(task.model)["char accuracy"] > 0.3           # chance: 1/13 per character
    # Half-trained, the model is unsure of every character: without length normalisation beam search
    # prefers stopping early (fewer negative log-probabilities to add); alpha = 1 undoes that bias.
    sources = [source for source, _ in dates.date_pairs(20, seed=5)]
    lengths = {alpha: np.mean([len(out) for out in translate.translate(task.model, sources, 3, alpha)])
               for alpha in (0.0, 1.0)}
    assert lengths[0.0] < lengths[1.0]


@pytest.mark.slow
def test_seq2seq_with_attention_translates_dates(tmp_path):
    pytest.importorskip("matplotlib")
    tr.manual_seed(0)
    task = translate.build_task(hidden_size=32, batch_size=64)
    trained(task, steps=300, lr=3e-3)
    assert task.evaluate(task.model)["exact match"] >= 0.9
    pairs = dates.date_pairs(100, seed=99)
    assert translate.translation_scores(task.model, pairs, beam_width=3)["exact match"] >= 0.9
    iso, attention = translate.show_attention(task.model, "23 November 2026", path=tmp_path / "attention.png")
    assert iso == "2026-11-23" and attention.shape == (10, len("23 November 2026"))
    looked_at = attention.argmax(axis=1)            # the source character each output character reads
    assert all(12 <= j < 16 for j in looked_at[:4])          # 2026 <- "2026"
    assert all(3 <= j < 11 for j in looked_at[5:7])          # 11   <- "November"
    assert all(0 <= j < 2 for j in looked_at[8:])            # 23   <- "23"
    assert (tmp_path / "attention.png").stat().st_size > 0


# --------------------------------------------------------------------------
# CNN + RNN + MLP
# --------------------------------------------------------------------------

def test_motif_order_batches_hold_each_motif_once_in_the_labelled_order():
    x, labels = cnn_rnn.motif_order_batch(50, length=20, rng=0)
    assert x.shape == (50, 6, 20) and set(labels) == {0, 1}
    for one_hot, label in zip(x, labels):
        symbols = one_hot.argmax(axis=0)
        (a,), (b,) = (cnn_rnn._contains(symbols, motif) for motif in cnn_rnn.MOTIFS)
        assert (a < b) == bool(label)


def test_conv_rnn_classifier_learns_motif_order():
    tr.manual_seed(0)
    task = cnn_rnn.build_task(test_size=300)
    trained(task, steps=150, clip=5.0)
    assert task.evaluate(task.model)["test accuracy"] > 0.9


@pytest.mark.slow
def test_conv_rnn_classifier_masters_longer_sequences():
    tr.manual_seed(1)
    task = cnn_rnn.build_task(length=48, batch_size=32)
    trained(task, steps=500, clip=5.0)
    assert task.evaluate(task.model)["test accuracy"] > 0.98


# --------------------------------------------------------------------------
# Soft attention (backprop) versus hard attention (REINFORCE + baseline)
# --------------------------------------------------------------------------

def test_recall_batch_answers_the_value_stored_with_the_query_key():
    keys, values, query, answer, uniforms = hard_attention.recall_batch(40, rng=0)
    assert keys.shape == values.shape == (6, 40) and np.all((0 <= uniforms) & (uniforms < 1))
    for b in range(40):
        assert len(set(keys[:, b])) == 6
        assert answer[b] == values[list(keys[:, b]).index(query[b]), b]


def test_sampled_positions_follow_the_attention_distribution():
    pi = np.array([[0.1, 0.6, 0.3]] * 20000)
    positions = hard_attention.sample_positions(pi, np.random.default_rng(0).random(20000))
    np.testing.assert_allclose(np.bincount(positions, minlength=3) / 20000, pi[0], atol=0.01)


def test_soft_and_hard_attention_both_learn_to_recall():
    accuracies = hard_attention.compare(steps=150)
    assert accuracies["soft"] > 0.9           # chance: 0.1
    assert accuracies["hard"] > 0.5


def test_reinforce_moves_the_hard_glimpse_onto_the_queried_key():
    tr.manual_seed(0)
    task = hard_attention.build_hard_task()
    batch = hard_attention.recall_batch(500, rng=7)
    keys, values, query, _, _ = batch

    def attention_on_the_query():
        with tr.no_grad():
            pi = task.model.attend(keys, values, query)[0].data
        return float(np.mean(pi[keys.T == query[:, None]]))

    before = attention_on_the_query()
    trained(task, steps=300, clip=None)
    assert before < 0.3 and attention_on_the_query() > 0.8
    assert 0.5 < task.model.baseline <= 1.0    # the running mean reward has risen


@pytest.mark.slow
def test_soft_and_hard_attention_reach_high_accuracy():
    accuracies = hard_attention.compare(steps=800, num_pairs=8, num_keys=16)
    assert accuracies["soft"] > 0.95 and accuracies["hard"] > 0.95


@pytest.mark.slow
def test_a_reward_baseline_helps_reinforce():
    accuracy = {True: [], False: []}
    for seed in range(3):
        for baseline in (True, False):
            tr.manual_seed(seed)
            task = hard_attention.build_hard_task(num_pairs=8, num_keys=16, baseline=baseline)
            trained(task, steps=300, clip=None, seed=seed)
            accuracy[baseline].append(task.evaluate(task.model)["test accuracy"])
    assert np.mean(accuracy[True]) > np.mean(accuracy[False]) + 0.03
