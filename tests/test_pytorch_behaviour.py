"""PyTorch's documented RNN behaviour, ported in spirit from PyTorch's own tests.

Each test names the PyTorch test it follows (test/test_nn.py, test/test_modules.py)
and runs the layers on both paths, fused=True and fused=False. Where torch is
installed the numbers are compared with it (the import is skipped otherwise).
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, optim

FUSED = [True, False]
LAYERS = [nn.RNN, nn.LSTM, nn.GRU]
CELLS = [nn.RNNCell, nn.LSTMCell, nn.GRUCell]


def first(result):
    """The hidden state of a cell's result: h, or h of the pair (h, c)."""
    return result[0] if isinstance(result, tuple) else result


def to_torch_state(module):
    torch = pytest.importorskip("torch")
    return {name: torch.tensor(array) for name, array in module.state_dict().items()}


# --------------------------------------------------------------------------
# 1. Hidden size 0 (test_RNN_cell_forward_zero_hidden_size)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("cell", CELLS)
def test_cell_with_zero_hidden_size_gives_empty_state(cell, fused):
    x = tr.randn(3, 10, requires_grad=True)
    h = cell(10, 0, fused=fused)(x)
    assert first(h).shape == (3, 0)
    if isinstance(h, tuple):
        assert h[1].shape == (3, 0)
    first(h).sum().backward()                  # nothing depends on x: its gradient is zero
    np.testing.assert_array_equal(x.grad, np.zeros((3, 10)))


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("layer", LAYERS)
def test_layer_with_zero_hidden_size(layer, fused):
    """As PyTorch: a layer refuses hidden_size=0 (only its cells accept it), naming the cell."""
    with pytest.raises(ValueError, match=f"hidden_size must be greater than zero.*{layer.__name__}Cell"):
        layer(4, 0, num_layers=2, bidirectional=True, fused=fused)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_kernels_accept_zero_hidden_size(backend):
    """The fused sequence ops themselves run with H = 0 (no layer fallback involved)."""
    from tinygrad_rnn.fused import gru_sequence, lstm_sequence, rnn_sequence
    x, h = tr.randn(3, 2, 4), tr.zeros(2, 0)
    W_ih, W_hh = tr.zeros(0, 4), tr.zeros(0, 0)
    with tr.backend(backend):
        assert lstm_sequence(x, h, h, W_ih, W_hh)[0].shape == (3, 2, 0)
        assert gru_sequence(x, h, W_ih, W_hh)[0].shape == (3, 2, 0)
        assert rnn_sequence(x, h, W_ih, W_hh)[0].shape == (3, 2, 0)


# --------------------------------------------------------------------------
# 2. dropout = 1 and 4. changing the rate after construction
#    (test_RNN_dropout, test_RNN_change_dropout)
# --------------------------------------------------------------------------

def ones_relu_rnn(hidden, p, fused):
    """PyTorch's test set-up: every weight 1, no bias, relu, two layers."""
    model = nn.RNN(10, hidden, num_layers=2, bias=False, dropout=p, nonlinearity="relu", fused=fused)
    for param in model.parameters():
        param.data[...] = 1
    return model


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("p", [0.0, 0.276, 0.5, 1.0])
def test_dropout_between_layers(p, fused):
    """Layer 0 outputs 10 per unit (ten inputs of 1); dropout keeps k of the 100 units and scales
    them by 1/(1-p), so every layer-1 unit is k * 10 / (1-p), with k = 0 whenever p = 1."""
    tr.manual_seed(1)
    model = ones_relu_rnn(100, p, fused)
    x = tr.ones(1, 1, 10)
    out = model(x)[0].data.reshape(-1)
    # every unit sees the same kept inputs: equal up to float32 rounding (BLAS may add a row's terms
    # in another order for some columns; one dropped input more or less moves a unit by 10/(1-p))
    np.testing.assert_allclose(out, out[0], rtol=1e-6)
    if p == 1:
        assert out[0] == 0
    else:
        kept = out[0] * (1 - p) / 10
        assert abs(kept - round(kept)) < 1e-3 * max(kept, 1)
        assert 0 <= round(kept) <= 100
        if p == 0:
            assert round(kept) == 100
    model.eval()                                   # no dropout: all 100 units pass
    np.testing.assert_allclose(model(x)[0].data, 1000.0)


@pytest.mark.parametrize("fused", FUSED)
def test_changing_dropout_after_construction_takes_effect(fused):
    """Each run keeps k of 100 units (layer-1 output k * 10 / (1-p)); over 20 runs the kept
    fraction must be near 1 - p for the rate set *after* construction."""
    tr.manual_seed(2)
    model = ones_relu_rnn(100, 0.0, fused)
    x = tr.ones(1, 1, 10)
    for p in [0.0, 0.276, 0.731, 1.0, 0.5]:
        model.dropout = p
        outs = np.array([model(x)[0].data[0, 0, 0] for _ in range(20)])
        if p == 1:
            np.testing.assert_array_equal(outs, 0.0)
        else:
            kept = outs * (1 - p) / 10                 # the number of kept units in each run
            np.testing.assert_allclose(kept, np.round(kept), atol=1e-3 * 100)
            assert abs(kept.mean() / 100 - (1 - p)) < 0.1
        assert model.get_config()["dropout"] == p


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5"])
def test_dropout_out_of_range_is_refused(p):
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        nn.LSTM(3, 4, num_layers=2, dropout=p)
    model = nn.LSTM(3, 4, num_layers=2)
    model.dropout = p
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        model(tr.zeros(2, 1, 3))


def test_dropout_module_accepts_one():
    tr.manual_seed(3)
    x = tr.ones(4, 5, requires_grad=True)
    y = nn.Dropout(1.0)(x)
    np.testing.assert_array_equal(y.data, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


# --------------------------------------------------------------------------
# 3. Zero-length sequences (test_error_RNN_seq_len_zero)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_zero_length_sequence_is_refused(layer, fused, batch_first):
    model = layer(10, 4, batch_first=batch_first, fused=fused)
    x = tr.zeros(3, 0, 10) if batch_first else tr.zeros(0, 3, 10)
    with pytest.raises(ValueError, match=r"Expected sequence length to be larger than 0.*"
                                         + re_shape(x.shape)):
        model(x)
    with pytest.raises(ValueError, match=r"Expected sequence length to be larger than 0"):
        model(tr.zeros(0, 10))                    # unbatched, no steps


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


# --------------------------------------------------------------------------
# 5. Flags must be bool (test_rnn_args_check family)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("flag, value", [("bias", "True"), ("bias", 1), ("batch_first", "False"),
                                         ("batch_first", 0), ("bidirectional", "False"),
                                         ("fused", "True")])
def test_flags_must_be_bool(layer, flag, value):
    with pytest.raises(TypeError, match=f"{flag} should be of type bool, got {type(value).__name__}"):
        layer(3, 4, **{flag: value})


def test_flag_types_agree_with_torch():
    """PyTorch checks bias and batch_first (it lets bidirectional="False" through, as True)."""
    torch = pytest.importorskip("torch")
    for flag in ("bias", "batch_first"):
        with pytest.raises(TypeError, match=f"{flag} should be of type bool"):
            torch.nn.LSTM(3, 4, **{flag: "False"})
        with pytest.raises(TypeError, match=f"{flag} should be of type bool"):
            nn.LSTM(3, 4, **{flag: "False"})


@pytest.mark.parametrize("cell", CELLS)
def test_cell_bias_must_be_bool(cell):
    with pytest.raises(TypeError, match="bias should be of type bool, got str"):
        cell(3, 4, bias="False")


# --------------------------------------------------------------------------
# 6. Unbatched input (test_modules: no-batch-dim forward)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_layer_equals_a_batch_of_one(layer, fused, batch_first):
    tr.manual_seed(4)
    model = layer(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, fused=fused)
    x = tr.randn(5, 3)
    h0 = tr.randn(4, 4)
    state = (h0, tr.randn(4, 4)) if layer is nn.LSTM else h0
    out, final = model(x, state)
    assert out.shape == (5, 8)
    batched_x = x.data[None] if batch_first else x.data[:, None]
    batched_state = (tuple(tr.Tensor(s.data[:, None]) for s in state) if layer is nn.LSTM
                     else tr.Tensor(h0.data[:, None]))
    out_b, final_b = model(tr.Tensor(batched_x), batched_state)
    np.testing.assert_allclose(out.data, out_b.data.reshape(5, 8), rtol=1e-6, atol=1e-7)
    finals = final if layer is nn.LSTM else (final,)
    finals_b = final_b if layer is nn.LSTM else (final_b,)
    for f, f_b in zip(finals, finals_b):
        assert f.shape == (4, 4)
        np.testing.assert_allclose(f.data, f_b.data[:, 0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("layer", LAYERS)
def test_unbatched_layer_agrees_with_torch(layer, fused):
    torch = pytest.importorskip("torch")
    tr.manual_seed(5)
    ours = layer(3, 4, num_layers=2, bidirectional=True, fused=fused)
    theirs = getattr(torch.nn, layer.__name__)(3, 4, num_layers=2, bidirectional=True)
    theirs.load_state_dict(to_torch_state(ours))
    x = tr.randn(6, 3, requires_grad=True)
    out, _ = ours(x)
    out.sum().backward()
    xt = torch.tensor(x.data, requires_grad=True)
    out_t, _ = theirs(xt)
    out_t.sum().backward()
    assert tuple(out_t.shape) == out.shape
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("fused", FUSED)
def test_unbatched_layer_refuses_lengths_and_batched_state(fused):
    model = nn.GRU(3, 4, fused=fused)
    with pytest.raises(ValueError, match="lengths= is for a padded batch"):
        model(tr.zeros(5, 3), lengths=[5])
    with pytest.raises(ValueError, match=r"unbatched 2-D input \(5, 3\), h0 should also be 2-D"):
        model(tr.zeros(5, 3), tr.zeros(1, 1, 4))
    with pytest.raises(ValueError, match=r"c0 should also be 2-D"):
        nn.LSTM(3, 4, fused=fused)(tr.zeros(5, 3), (tr.zeros(1, 4), tr.zeros(1, 1, 4)))


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("cell", CELLS)
def test_unbatched_cell(cell, fused):
    tr.manual_seed(6)
    model = cell(3, 4, fused=fused)
    x = tr.randn(3)
    state = (tr.randn(4), tr.randn(4)) if cell is nn.LSTMCell else tr.randn(4)
    result = model(x, state)
    batched_state = (tuple(s.reshape(1, 4) for s in state) if cell is nn.LSTMCell
                     else state.reshape(1, 4))
    expected = model(x.reshape(1, 3), batched_state)
    results = result if isinstance(result, tuple) else (result,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    for r, e in zip(results, expecteds):
        assert r.shape == (4,)
        np.testing.assert_allclose(r.data, e.data[0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"state h must be unbatched too, of shape \(4,\)"):
        model(x, (tr.zeros(1, 4), tr.zeros(1, 4)) if cell is nn.LSTMCell else tr.zeros(1, 4))


@pytest.mark.parametrize("cell", CELLS)
def test_unbatched_cell_agrees_with_torch(cell):
    torch = pytest.importorskip("torch")
    tr.manual_seed(7)
    ours = cell(3, 4)
    theirs = getattr(torch.nn, cell.__name__)(3, 4)
    theirs.load_state_dict(to_torch_state(ours))
    x = tr.randn(3)
    expected = first(theirs(torch.tensor(x.data)))
    assert tuple(expected.shape) == (4,)
    np.testing.assert_allclose(first(ours(x)).data, expected.detach().numpy(), rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------------------
# API gaps: frozen parameters, dtype/device keywords, nn.utils
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fused", FUSED)
def test_frozen_parameters_are_still_parameters(fused):
    tr.manual_seed(8)
    model = nn.LSTM(3, 4, fused=fused)
    names = [name for name, _ in model.named_parameters()]
    model.weight_hh_l0.requires_grad_(False)
    assert [name for name, _ in model.named_parameters()] == names
    assert list(model.state_dict()) == names
    assert len(model.parameters()) == len(names)
    frozen_before = model.weight_hh_l0.data.copy()
    trained_before = model.weight_ih_l0.data.copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(tr.randn(5, 2, 3))[0].sum().backward()
    assert model.weight_hh_l0.grad is None
    assert optim.clip_grad_norm_(model.parameters(), 1e-3) > 0
    opt.step()
    np.testing.assert_array_equal(model.weight_hh_l0.data, frozen_before)   # skipped
    assert not np.array_equal(model.weight_ih_l0.data, trained_before)


def test_frozen_parameter_with_a_stale_gradient_is_not_updated():
    """Frozen after a backward: its old .grad must neither move it nor count in the clip norm."""
    w = tr.tensor([1.0, 2.0], requires_grad=True)
    v = tr.tensor([3.0], requires_grad=True)
    ((w * w).sum() + (v * v).sum()).backward()        # grads (2, 4) and (6,)
    w.requires_grad_(False)
    assert optim.clip_grad_norm_([w, v], 100.0) == pytest.approx(6.0)
    optim.SGD([w, v], lr=0.5).step()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    np.testing.assert_allclose(v.data, [0.0])


def test_frozen_model_loads_a_full_torch_state_dict():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.GRU(3, 4, num_layers=2)
    ours = nn.GRU(3, 4, num_layers=2)
    for p in ours.parameters():
        p.requires_grad_(False)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.weight_hh_l1.data, theirs.weight_hh_l1.detach().numpy())


def test_optimizer_refuses_a_list_with_nothing_to_train():
    with pytest.raises(ValueError, match="no parameter requires grad"):
        optim.SGD([tr.zeros(3)], lr=0.1)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("make", [
    lambda **kw: nn.LSTM(3, 4, **kw), lambda **kw: nn.GRUCell(3, 4, **kw),
    lambda **kw: nn.Linear(3, 4, **kw), lambda **kw: nn.Embedding(5, 3, **kw)])
def test_dtype_and_device_keywords(make, fused):
    model = make(dtype=np.float64, device="cpu")
    assert all(p.dtype == np.float64 for p in model.parameters())
    with pytest.raises(ValueError, match=r"device='cuda' is not supported.*only device is 'cpu'"):
        make(device="cuda")
    with pytest.raises(TypeError, match="dtype float16 is not supported"):
        make(dtype=np.float16)
    with pytest.raises(TypeError, match="parameters need a floating dtype, got dtype=int32"):
        make(dtype=np.int32)


@pytest.mark.parametrize("fused", FUSED)
def test_float64_layer_runs_on_both_paths(fused):
    model = nn.GRU(3, 4, dtype=np.float64, fused=fused)
    out, _ = model(tr.Tensor(np.ones((2, 1, 3))))
    assert out.dtype == np.float64


def test_nn_utils_clips_like_optim():
    x = tr.tensor([3.0, 4.0], requires_grad=True)
    (x * x).sum().backward()                    # grad = 2x = (6, 8), norm 10
    assert nn.utils.clip_grad_norm_([x], 5.0) == pytest.approx(10.0)
    np.testing.assert_allclose(x.grad, [3.0, 4.0], rtol=1e-5)
    nn.utils.clip_grad_value_([x], 3.5)
    np.testing.assert_allclose(x.grad, [3.0, 3.5], rtol=1e-6)


def test_module_to_refuses_unsupported_dtypes_and_devices():
    model = nn.RNN(2, 3)
    with pytest.raises(TypeError, match="dtype float16 is not supported"):
        model.to(np.float16)
    with pytest.raises(ValueError, match="only device is 'cpu'"):
        model.to(device="cuda:0")
    assert model.to(device="cpu") is model and model.to("cpu") is model
    with pytest.raises(ValueError, match="only device is 'cpu'"):
        model.to("cuda")
