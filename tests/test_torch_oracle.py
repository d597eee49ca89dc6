"""PyTorch as an oracle: same weights in, same numbers out (skipped without torch).

A PyTorch state dict converted to NumPy loads directly into our layers; then
outputs, final states and every gradient (parameters, input, initial state)
must agree to float precision, with and without variable lengths, for both
the composite (fused=False) and fused (fused=True) paths.
"""
import importlib.util

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import nn

torch = pytest.importorskip("torch")

FUSED = [False, pytest.param(True, marks=pytest.mark.skipif(
    importlib.util.find_spec("tinygrad_rnn.fused") is None, reason="fused path not built"))]
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


@st.composite
def oracle_configs(draw):
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    lengths = None
    if draw(st.booleans()):
        lengths = sorted(draw(st.lists(st.integers(1, T), min_size=B, max_size=B)), reverse=True)
    return dict(mode=draw(st.sampled_from(["RNN", "LSTM", "GRU"])), B=B, T=T,
                I=draw(st.integers(1, 5)), H=draw(st.integers(1, 5)), lengths=lengths,
                nonlinearity=draw(st.sampled_from(["tanh", "relu"])),
                options=dict(num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
                             batch_first=draw(st.booleans()), bias=draw(st.booleans())))


def build_pair(config, dtype, fused):
    mode, options = config["mode"], dict(config["options"])
    if mode == "RNN":
        options["nonlinearity"] = config["nonlinearity"]
    theirs = getattr(torch.nn, mode)(config["I"], config["H"], **options).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, mode)(config["I"], config["H"], fused=fused, **options).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def run_torch(theirs, x, h0, c0, config):
    xt = torch.tensor(x, requires_grad=True)
    state = [torch.tensor(s, requires_grad=True) for s in (h0, c0) if s is not None]
    inputs = xt
    if config["lengths"] is not None:
        inputs = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(config["lengths"]), batch_first=config["options"]["batch_first"])
    out, final = theirs(inputs, tuple(state) if len(state) == 2 else state[0])
    if config["lengths"] is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=config["options"]["batch_first"], total_length=config["T"])
    return xt, state, out, final


def loss_weights(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(config=oracle_configs())
def test_layers_match_pytorch(config, dtype, fused):
    ours, theirs = build_pair(config, dtype, fused)
    B, T, I, H = config["B"], config["T"], config["I"], config["H"]
    rng = np.random.default_rng(B + 7 * T)
    LD = ours.num_layers * ours.num_directions
    x = rng.standard_normal((B, T, I) if config["options"]["batch_first"] else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((LD, B, H)).astype(dtype)
    c0 = rng.standard_normal((LD, B, H)).astype(dtype) if config["mode"] == "LSTM" else None

    xt, state_t, out_t, final_t = run_torch(theirs, x, h0, c0, config)
    x_ours = tr.Tensor(x, requires_grad=True)
    state_ours = [tr.Tensor(s, requires_grad=True) for s in (h0, c0) if s is not None]
    out, final = ours(x_ours, tuple(state_ours) if c0 is not None else state_ours[0],
                      lengths=config["lengths"])

    finals_ours = final if c0 is not None else (final,)
    finals_t = final_t if c0 is not None else (final_t,)
    w_out = loss_weights(out.shape, 1).astype(dtype)
    w_final = [loss_weights(f.shape, 2 + k).astype(dtype) for k, f in enumerate(finals_ours)]
    loss = (out * tr.Tensor(w_out)).sum()
    loss_t = (out_t * torch.tensor(w_out)).sum()
    for f, ft, w in zip(finals_ours, finals_t, w_final):
        loss = loss + (f * tr.Tensor(w)).sum()
        loss_t = loss_t + (ft * torch.tensor(w)).sum()
    loss.backward()
    loss_t.backward()

    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), **tol, err_msg="output")
    for k, (f, ft) in enumerate(zip(finals_ours, finals_t)):
        np.testing.assert_allclose(f.data, ft.detach().numpy(), **tol, err_msg=f"final state {k}")
    np.testing.assert_allclose(x_ours.grad, xt.grad.numpy(), **tol, err_msg="dL/dx")
    for k, (s, st_) in enumerate(zip(state_ours, state_t)):
        np.testing.assert_allclose(s.grad, st_.grad.numpy(), **tol, err_msg=f"dL/d initial state {k}")
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), **tol, err_msg=f"dL/d{name}")


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_pytorch(name, fused):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(3, 5).double()
    ours = getattr(nn, name)(3, 5, fused=fused).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3))
    xt, xo = torch.tensor(x, requires_grad=True), tr.Tensor(x, requires_grad=True)
    out_t, out = theirs(xt), ours(xo)
    if name == "LSTMCell":
        out_t, out = out_t[0] * 2 + out_t[1], out[0] * 2 + out[1]
    out_t.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for n, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, n).grad, p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_losses_match_pytorch():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3, 7))
    target = rng.integers(0, 7, size=(5, 3))
    target[0, 1] = target[4, 2] = -100
    ours, theirs = tr.Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    for reduction in ["mean", "sum"]:
        ours.grad, theirs.grad = None, None
        loss = nn.cross_entropy(ours, target, reduction=reduction)
        loss_t = torch.nn.functional.cross_entropy(theirs.reshape(-1, 7), torch.tensor(target).reshape(-1),
                                                   reduction=reduction)
        loss.backward()
        loss_t.backward()
        assert loss.item() == pytest.approx(loss_t.item(), rel=1e-12)
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)

    x, y = rng.standard_normal((4, 3)) * 30, rng.random((4, 3))
    xo, xt = tr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    nn.bce_with_logits(xo, y).backward()
    loss_t = torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor(y))
    loss_t.backward()
    assert nn.bce_with_logits(xo, y).item() == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)

    xo.grad = None
    xt.grad = None
    nn.mse_loss(xo, y, reduction="sum").backward()
    torch.nn.functional.mse_loss(xt, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-12)


# --------------------------------------------------------------------------
# LSTM with projections (proj_size)
# --------------------------------------------------------------------------

PROJ_CONFIGS = [dict(num_layers=1), dict(num_layers=2), dict(num_layers=3),
                dict(num_layers=2, bidirectional=True), dict(num_layers=1, bias=False),
                dict(num_layers=3, bidirectional=True, bias=False, batch_first=True)]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("options", PROJ_CONFIGS)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_lstm_proj_size_matches_pytorch(options, fused, with_lengths):
    """float64: outputs, final states and every gradient agree with torch.nn.LSTM(proj_size=P)."""
    torch.manual_seed(0)
    T, B, I, H, P = 5, 3, 4, 6, 3
    theirs = torch.nn.LSTM(I, H, proj_size=P, **options).double()
    ours = nn.LSTM(I, H, proj_size=P, fused=fused, **options).to(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    LD = ours.num_layers * ours.num_directions
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I) if options.get("batch_first") else (T, B, I))
    h0, c0 = rng.standard_normal((LD, B, P)), rng.standard_normal((LD, B, H))
    config = dict(lengths=[5, 3, 1] if with_lengths else None, options=dict(options, batch_first=
                  options.get("batch_first", False)), T=T)
    xt, state_t, out_t, (h_t, c_t) = run_torch(theirs, x, h0, c0, config)
    xo, h0o, c0o = (tr.Tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (h_n, c_n) = ours(xo, (h0o, c0o), lengths=config["lengths"])
    assert out.shape == tuple(out_t.shape) and h_n.shape == (LD, B, P) and c_n.shape == (LD, B, H)
    weights = [loss_weights(o.shape, k) for k, o in enumerate((out, h_n, c_n))]
    sum((o * tr.Tensor(w)).sum() for o, w in zip((out, h_n, c_n), weights)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip((out_t, h_t, c_t), weights)).backward()
    tol = dict(rtol=1e-10, atol=1e-12)
    for name, a, b in [("output", out.data, out_t), ("h_n", h_n.data, h_t), ("c_n", c_n.data, c_t),
                       ("dL/dx", xo.grad, xt.grad), ("dL/dh0", h0o.grad, state_t[0].grad),
                       ("dL/dc0", c0o.grad, state_t[1].grad)]:
        np.testing.assert_allclose(a, b.detach().numpy(), **tol, err_msg=name)
    torch_params = dict(theirs.named_parameters())
    assert sorted(name for name, _ in ours.named_parameters()) == sorted(torch_params)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), **tol, err_msg=f"dL/d{name}")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("fused", FUSED)
def test_lstm_proj_size_float32_state_dict_loads(fused):
    """A float32 PyTorch state dict (the usual kind) loads into a float32 layer; outputs agree."""
    torch.manual_seed(1)
    theirs = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    ours = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, fused=fused)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    out_t, (h_t, c_t) = theirs(torch.tensor(x))
    out, (h_n, c_n) = ours(tr.Tensor(x))
    assert out.dtype == np.float32
    for a, b in [(out, out_t), (h_n, h_t), (c_n, c_t)]:
        np.testing.assert_allclose(a.data, b.detach().numpy(), **TOLERANCE[np.float32])
