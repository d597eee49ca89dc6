"""Modules, cells and recurrent layers: BPTT gradchecks in float64 and behaviour.

The layers run with fused=False here: this is the composite path, the graph
of the unrolled network, checked against central differences. (The fused
path is compared with this one in test_fused_layers.py.)
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.nn.cells import gru_step, leaky_step, lstm_step, rnn_step

from strategies import rnn_configs


def float64_leaves(module):
    """Replace every parameter by a float64 leaf; return (names, leaves) for gradcheck."""
    module.double()
    names = [name for name, _ in module.named_parameters()]
    return names, [p.data for _, p in module.named_parameters()]


def set_parameters(module, names, leaves):
    """Point the module's attributes at gradcheck's leaves (names like 'weight_ih_l0')."""
    for name, leaf in zip(names, leaves):
        owner = module
        *path, attr = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, attr, leaf)


@st.composite
def layer_configs(draw):
    """A recurrent layer configuration with every option the layers support."""
    B, T, I, H = draw(rnn_configs(max_batch=3, max_steps=4, max_input=3, max_hidden=3))
    options = dict(num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
                   merge=draw(st.sampled_from(["concat", "sum"])), batch_first=draw(st.booleans()),
                   bias=draw(st.booleans()))
    lengths = None
    if draw(st.booleans()):
        lengths = np.array(sorted(draw(st.lists(st.integers(1, T), min_size=B, max_size=B)), reverse=True))
    return dict(B=B, T=T, I=I, H=H, options=options, lengths=lengths,
                mode=draw(st.sampled_from(["RNN", "LSTM", "GRU"])))


def make_input(config, rng):
    B, T, I = config["B"], config["T"], config["I"]
    shape = (B, T, I) if config["options"]["batch_first"] else (T, B, I)
    return rng.standard_normal(shape)


# --------------------------------------------------------------------------
# BPTT gradchecks
# --------------------------------------------------------------------------

STEPS = {
    "rnn": (1, lambda x, s, w: (rnn_step(x, s[0], *w),)),
    "leaky": (1, lambda x, s, w: (leaky_step(x, s[0], *w, 0.3),)),
    "lstm": (4, lambda x, s, w: lstm_step(x, s[0], s[1], *w)),
    "gru": (3, lambda x, s, w: (gru_step(x, s[0], *w),)),
}


@pytest.mark.parametrize("cell", sorted(STEPS))
@given(config=rnn_configs(max_steps=4))
def test_unrolled_cell_bptt_gradcheck(cell, config):
    """Loss summed over steps of an unrolled cell: gradients w.r.t. every weight, x and h0."""
    B, T, I, H = config
    gates, step = STEPS[cell]
    rng = np.random.default_rng(B * 100 + T * 10 + I + H)
    x = rng.standard_normal((T, B, I))
    states = [rng.standard_normal((B, H)) for _ in range(2 if cell == "lstm" else 1)]
    weights = [rng.standard_normal(s) * 0.5 for s in [(gates * H, I), (gates * H, H), (gates * H,), (gates * H,)]]
    targets = rng.standard_normal((T, B, H))

    def loss(x, *rest):
        state, w = tuple(rest[:len(states)]), rest[len(states):]
        total = 0.0
        for t in range(T):
            state = step(x[t], state, w)
            total = total + ((state[0] - tr.Tensor(targets[t])) ** 2).sum()
        return total

    tr.gradcheck(loss, [x, *states, *weights])


@given(config=layer_configs())
def test_layer_bptt_gradcheck(config):
    """Every layer option: gradients w.r.t. parameters, input and initial state."""
    rng = np.random.default_rng(config["B"] + 10 * config["T"])
    tr.manual_seed(config["T"])
    layer = getattr(nn, config["mode"])(config["I"], config["H"], fused=False, **config["options"])
    names, params = float64_leaves(layer)
    L, D = layer.num_layers, layer.num_directions
    h0 = rng.standard_normal((L * D, config["B"], config["H"]))
    x = make_input(config, rng)

    def loss(x, h0, *params):
        set_parameters(layer, names, params)
        state = (h0, h0 * 0.5) if config["mode"] == "LSTM" else h0
        out, final = layer(x, state, lengths=config["lengths"])
        h_n = final[0] if config["mode"] == "LSTM" else final
        return (out * out).sum() + h_n.sum()

    tr.gradcheck(loss, [x, h0, *params], names=["x", "h0", *names])


def test_learned_leak_rate_is_gradchecked():
    tr.manual_seed(0)
    cell = nn.LeakyRNNCell(2, 3, alpha=0.4, learn_alpha=True).double()
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "alpha"]
    x = np.random.default_rng(0).standard_normal((4, 2, 2))

    def loss(alpha):
        cell.alpha = alpha
        h = None
        for t in range(4):
            h = cell(tr.Tensor(x[t]), h)
        return h.sum()

    tr.gradcheck(loss, [cell.alpha.data])


# --------------------------------------------------------------------------
# Variable lengths: padding neither changes the state nor receives gradient
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_padded_steps_change_nothing(mode):
    tr.manual_seed(1)
    layer = getattr(nn, mode)(3, 4, bidirectional=True, fused=False).double()
    lengths = np.array([5, 3, 1])
    x = tr.Tensor(np.random.default_rng(1).standard_normal((5, 3, 3)), requires_grad=True)
    out, final = layer(x, lengths=lengths)
    h_n = final[0] if mode == "LSTM" else final
    (out.sum() + h_n.sum()).backward()
    for b, length in enumerate(lengths):
        alone_out, alone_final = layer(tr.Tensor(x.data[:length, b:b + 1]))
        alone_h = alone_final[0] if mode == "LSTM" else alone_final
        np.testing.assert_allclose(out.data[:length, b], alone_out.data[:, 0], atol=1e-12)
        np.testing.assert_allclose(h_n.data[:, b], alone_h.data[:, 0], atol=1e-12)
        assert np.all(out.data[length:, b] == 0)
        assert np.all(x.grad[length:, b] == 0)
        assert np.all(x.grad[:length, b] != 0)


def test_unsorted_lengths_allowed_when_not_enforced():
    tr.manual_seed(2)
    layer = nn.GRU(2, 3, fused=False).double()
    x = tr.Tensor(np.random.default_rng(2).standard_normal((4, 2, 2)))
    out_sorted, h_sorted = layer(x, lengths=[4, 2])
    out_swapped, h_swapped = layer(x[:, ::-1], lengths=[2, 4], enforce_sorted=False)
    np.testing.assert_allclose(h_swapped.data[:, ::-1], h_sorted.data)
    np.testing.assert_allclose(out_swapped.data[:, ::-1], out_sorted.data)


# --------------------------------------------------------------------------
# Module behaviour
# --------------------------------------------------------------------------

def test_parameter_names_follow_pytorch():
    layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    names = [n for n, _ in layer.named_parameters()]
    expected = [f"{kind}_l{k}{suffix}" for k in range(2) for suffix in ("", "_reverse")
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert names == expected
    assert layer.weight_ih_l1.shape == (16, 8) and layer.weight_hh_l0_reverse.shape == (16, 4)
    assert nn.GRU(3, 4, num_layers=2, bidirectional=True, merge="sum").weight_ih_l1.shape == (12, 4)


def test_initialisation_is_uniform_within_pytorch_bound():
    tr.manual_seed(3)
    weights = nn.LSTM(10, 64).weight_hh_l0.data
    bound = 1 / np.sqrt(64)
    assert weights.min() >= -bound and weights.max() <= bound
    assert weights.std() == pytest.approx(2 * bound / np.sqrt(12), rel=0.05)  # std of U(-a, a)


def test_state_dict_round_trip_and_errors():
    tr.manual_seed(4)
    source, target = nn.GRU(2, 3, num_layers=2), nn.GRU(2, 3, num_layers=2)
    target.load_state_dict(source.state_dict())
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    state = source.state_dict()
    state["weight_ih_l0"] = state["weight_ih_l0"][:, :1]
    with pytest.raises(ValueError, match=r"weight_ih_l0.*\(9, 1\).*\(9, 2\)"):
        target.load_state_dict(state)
    with pytest.raises(KeyError, match="missing keys.*bias_hh_l1"):
        target.load_state_dict({k: v for k, v in source.state_dict().items() if k != "bias_hh_l1"})
    with pytest.raises(KeyError, match="unexpected keys.*extra"):
        target.load_state_dict({**source.state_dict(), "extra": np.zeros(1)})


def test_state_dict_is_a_copy():
    layer = nn.Linear(2, 2)
    state = layer.state_dict()
    state["weight"][:] = 7
    assert not np.any(layer.weight.data == 7)


def test_nested_modules_train_eval_and_zero_grad():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    assert [n for n, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    model.eval()
    assert not model.layers[1].training
    x = tr.ones(5, 3)
    np.testing.assert_array_equal(model(x).data, model(x).data)  # no dropout in eval mode
    model(x).sum().backward()
    assert model.layers[0].weight.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_dropout_scales_kept_units():
    tr.manual_seed(5)
    y = nn.Dropout(0.25)(tr.ones(200, 50)).data
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)


def test_embedding_accumulates_repeated_rows():
    emb = nn.Embedding(5, 2)
    emb(np.array([[1, 1], [3, 1]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [0, 3, 0, 1, 0])


def test_inter_layer_dropout_only_in_training():
    tr.manual_seed(6)
    layer = nn.LSTM(2, 3, num_layers=2, dropout=0.5, fused=False)
    x = tr.randn(4, 2, 2)
    layer.eval()
    np.testing.assert_array_equal(layer(x)[0].data, layer(x)[0].data)
    layer.train()
    assert not np.array_equal(layer(x)[0].data, layer(x)[0].data)


# --------------------------------------------------------------------------
# Bad input: clear errors with the fix in the message
# --------------------------------------------------------------------------

def test_wrong_rank_and_feature_size():
    layer = nn.LSTM(32, 8, fused=False)
    with pytest.raises(ValueError, match=r"expected input of shape \(T, B, 32\) \(or \(T, 32\).*got \(32,\)"):
        layer(tr.zeros(32))
    with pytest.raises(ValueError, match=r"unbatched sequence of shape \(T, 32\), got \(5, 16\)"):
        layer(tr.zeros(5, 16))
    with pytest.raises(ValueError, match=r"\(T, B, 32\), got \(5, 3, 16\).*input_size=32"):
        layer(tr.zeros(5, 3, 16))


def test_batch_first_confusion_is_named():
    layer = nn.GRU(4, 8, fused=False)
    x = tr.zeros(3, 7, 4)            # (B, T, I) given to a time-major layer
    with pytest.raises(ValueError, match="did you mean batch_first=True"):
        layer(x, lengths=[7, 7, 5])
    with pytest.raises(ValueError, match="did you mean batch_first=True"):
        layer(x, tr.zeros(1, 3, 8))
    with pytest.raises(ValueError, match="did you mean batch_first=False"):
        nn.GRU(4, 8, batch_first=True, fused=False)(tr.zeros(7, 3, 4), lengths=[7, 7, 5])


def test_bad_initial_state():
    layer = nn.LSTM(2, 3, num_layers=2, fused=False)
    x = tr.zeros(4, 5, 2)
    with pytest.raises(ValueError, match=r"h0 of shape .* = \(2, 5, 3\), got \(1, 5, 3\)"):
        layer(x, (tr.zeros(1, 5, 3), tr.zeros(2, 5, 3)))
    with pytest.raises(ValueError, match=r"tuple \(h0, c0\)"):
        layer(x, (tr.zeros(2, 5, 3),))
    with pytest.raises(ValueError, match=r"expected h of shape \(B, H\) = \(5, 3\)"):
        nn.RNNCell(2, 3)(tr.zeros(5, 2), tr.zeros(5, 4))


def test_bad_lengths():
    layer = nn.RNN(2, 3, fused=False)
    x = tr.zeros(4, 3, 2)
    with pytest.raises(ValueError, match=r"between 1 and T=4.*\[5, 2, 1\]"):
        layer(x, lengths=[5, 2, 1])
    with pytest.raises(ValueError, match="not sorted in decreasing order.*enforce_sorted=False"):
        layer(x, lengths=[2, 4, 1])
    with pytest.raises(ValueError, match="lengths must be B=3 integers"):
        layer(x, lengths=[2.0, 1.0, 1.0])


def test_dtype_mismatch_and_bad_options():
    with pytest.raises(TypeError, match=r"input dtype float64 differs .* \.to\(dtype\)"):
        nn.RNN(2, 3, fused=False)(tr.Tensor(np.zeros((1, 1, 2))))
    with pytest.raises(ValueError, match="hidden_size must be a non-negative integer"):
        nn.LSTM(2, -1)
    with pytest.raises(ValueError, match="merge must be one of"):
        nn.GRU(2, 3, bidirectional=True, merge="mean")
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"Linear expected input with 3 features.*\(2, 4\)"):
        nn.Linear(3, 1)(tr.zeros(2, 4))
    with pytest.raises(IndexError, match=r"indices must be in \[0, 5\)"):
        nn.Embedding(5, 2)(np.array([5]))


def test_tied_weights_are_one_parameter():
    """Weight tying (output layer sharing the embedding table) must not list the weight twice."""
    class TiedModel(nn.Module):
        def __init__(self):
            self.embedding = nn.Embedding(5, 3)
            self.output = nn.Linear(3, 5, bias=False)
            self.output.weight = self.embedding.weight

    model = TiedModel()
    assert [n for n, _ in model.named_parameters()] == ["embedding.weight"]
    assert list(model.state_dict()) == ["embedding.weight"]
    tr.optim.SGD(model.parameters(), lr=0.1)      # refused duplicates before


def test_small_api_edges():
    assert tr.arange(0.0, 1.0, 0.25).dtype == np.float32          # like tr.tensor([0.5])
    assert tr.arange(3).dtype.kind == "i"
    assert [p.shape for p in tr.split(tr.ones(4, 2), np.int64(2))] == [(2, 2), (2, 2)]
    with pytest.raises(ValueError, match="start and end tokens must differ"):
        nn.Seq2Seq(5, 5, 4, 4, sos_index=1, eos_index=1)
    with pytest.raises(IndexError, match=r"got values in \[1, 7\]"):    # ignored -100 not reported
        nn.cross_entropy(tr.randn(3, 4), np.array([1, -100, 7]))
    with pytest.raises(ValueError, match=r"logits of shape \(\.\.\., V\), got shape \(\)"):
        nn.cross_entropy(tr.tensor(1.0), np.array(1))
