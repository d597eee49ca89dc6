"""PyTorch's own RNN tests, ported to this API (the acceptance suite of issue 14).

Sources: PyTorch's test/test_nn.py, test/test_modules.py (the module_inputs and
module_error_inputs of RNN, LSTM, GRU and their cells) and
test/nn/test_packed_sequence.py, with ``lengths=`` in place of a PackedSequence.
Each test names the PyTorch test it follows; the layers run on both paths,
fused=True and fused=False. Where a test compares numbers, torch (CPU) is the
oracle, imported with pytest.importorskip.

Not ported (no counterpart in a CPU-only engine without PackedSequence or
TorchScript): cuDNN and CUDA tests (test_RNN_cpu_vs_cudnn_* compare CPU with
GPU: here they compare with torch on CPU instead; test_cudnn_*, test_rnn_check_device,
test_partial_flat_weights, test_*_grad_and_gradgrad, test_rnn_fused), oneDNN
(test_LSTM_differentiable_backward_using_oneDNN), weight norm
(test_rnn_weight_norm, test_RNN_cudnn_weight_norm), test_modules' test_gradgrad
(the engine has no double backward), test_cpu_gpu_parity, test_memory_format,
test_multiple_device_transfer, test_check_inplace and test_repr (our repr lists
our own options), TorchScript and PackedSequence plumbing (pack_sequence,
sort/unsort indices, .to of a PackedSequence), and the proj_size tests
(test_projections_*: proj_size is not in this tree yet).

Deliberate differences, asserted as such: shape errors are ValueErrors and a
dtype mismatch a TypeError (PyTorch: RuntimeError / ValueError), each naming
the shapes or dtypes and the fix; a layer of hidden_size 0 is allowed (PyTorch
refuses it for layers, allows it for cells); with lengths= the output keeps the
padded length T (pad_packed_sequence's total_length=T).
"""
import copy
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

FUSED = [True, False]
LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
CELLS = {"RNNCell": nn.RNNCell, "LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell}


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


# ---- helpers -------------------------------------------------------------------

def twin(torch, name, *args, fused=True, dtype=np.float32, **kwargs):
    """A torch module and ours with the same configuration, ours loaded from torch's state dict."""
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    if dtype == np.float64:
        theirs = theirs.double()
    ours_kwargs = dict(kwargs, dtype=dtype)
    ours = (LAYERS | CELLS)[name](*args, fused=fused, **ours_kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def as_torch(torch, array, requires_grad=False):
    """A torch tensor holding a copy of `array` (its dtype kept)."""
    return torch.tensor(np.array(array), requires_grad=requires_grad)


def flat(state):
    """The tensors of an output/state structure, in order: h, (h, c) or (out, (h, c)) -> a list."""
    if isinstance(state, (tuple, list)):
        return [t for part in state for t in flat(part)]
    return [state]


def close(ours, theirs, atol=1e-5):
    """Every tensor of `ours` equals the matching one of `theirs` (torch's, or ours) within atol."""
    ours, theirs = flat(ours), flat(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.data if isinstance(a, tr.Tensor) else a,
                                   b.detach().numpy(), rtol=1e-5, atol=atol)


def grads_close(ours, theirs, atol=1e-5):
    """Every parameter gradient of our module equals torch's (by name)."""
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, their_params[name].grad.numpy(), rtol=1e-5, atol=atol,
                                   err_msg=name)


def state_pair(torch, layer, L, B, H, dtype=np.float32):
    """Random (ours, theirs) initial states of shape (L, B, H): h, or (h, c) for an LSTM."""
    parts = [np.random.default_rng(k).standard_normal((L, B, H)).astype(dtype)
             for k in range(2 if layer == "LSTM" else 1)]
    ours = [tr.Tensor(p) for p in parts]
    theirs = [as_torch(torch, p) for p in parts]
    if layer == "LSTM":
        return tuple(ours), tuple(theirs)
    return ours[0], theirs[0]


def randn(*shape, dtype=np.float32, seed=0):
    """A fixed standard-normal NumPy array (the same for ours and torch's)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ================================================================================
# Cells (test_nn.py)
# ================================================================================

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", ["RNNCell", "GRUCell"])
def test_RNN_cell(torch, name, bias, fused):
    """test_RNN_cell: six steps of an RNNCell/GRUCell (10 -> 20) from hx, then backward."""
    theirs, ours = twin(torch, name, 10, 20, bias=bias, fused=fused)
    x, hx = randn(3, 10), randn(3, 20, seed=1)
    h_ours, h_theirs = tr.Tensor(hx), as_torch(torch, hx)
    x_ours, x_theirs = tr.Tensor(x, requires_grad=True), as_torch(torch, x, requires_grad=True)
    for _ in range(6):
        h_ours, h_theirs = ours(x_ours, h_ours), theirs(x_theirs, h_theirs)
    close(h_ours, h_theirs)
    h_ours.sum().backward()
    h_theirs.sum().backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-5, atol=1e-5)
    grads_close(ours, theirs)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("bias", [True, False])
def test_LSTM_cell(torch, bias, fused):
    """test_LSTM_cell: six LSTMCell steps from (hx, cx), backward of (hx + cx).sum()."""
    theirs, ours = twin(torch, "LSTMCell", 10, 20, bias=bias, fused=fused)
    x, hx, cx = randn(3, 10), randn(3, 20, seed=1), randn(3, 20, seed=2)
    state_ours, state_theirs = (tr.Tensor(hx), tr.Tensor(cx)), (as_torch(torch, hx), as_torch(torch, cx))
    for _ in range(6):
        state_ours, state_theirs = ours(tr.Tensor(x), state_ours), theirs(as_torch(torch, x), state_theirs)
    close(state_ours, state_theirs)
    (state_ours[0] + state_ours[1]).sum().backward()
    (state_theirs[0] + state_theirs[1]).sum().backward()
    grads_close(ours, theirs)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(CELLS))
def test_RNN_cell_forward_zero_hidden_size(name, fused):
    """test_RNN_cell_forward_zero_hidden_size: a cell of hidden size 0 gives (3, 0) states."""
    cell = CELLS[name](10, 0, fused=fused)
    x = tr.randn(3, 10)
    hx = tr.zeros(3, 0)
    out = cell(x, (hx, hx) if name == "LSTMCell" else hx)
    for part in flat(out):
        assert part.shape == (3, 0)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(CELLS))
def test_RNN_cell_no_broadcasting(name, fused):
    """test_RNN_cell_no_broadcasting: shapes that would broadcast are refused, naming the shapes."""
    cell = CELLS[name](10, 20, fused=fused)
    cases = [(tr.randn(3, 10), tr.randn(1, 20)),      # hidden batch 1 against input batch 3
             (tr.randn(3, 10), tr.randn(3, 1)),       # hidden size 1 against 20
             (tr.randn(1, 10), tr.randn(3, 20)),      # input batch 1 against hidden batch 3
             (tr.randn(3, 1), tr.randn(3, 20))]       # input size 1 against 10
    for x, h in cases:
        with pytest.raises(ValueError, match=r"expected .*shape"):
            cell(x, (h, h) if name == "LSTMCell" else h)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_error_inputs(name, fused):
    """module_error_inputs_torch_nn_RNN_GRU_Cell / _LSTMCell: wrong input size, wrong hidden size,
    batch mismatch, 3-D input and 3-D hidden are errors that name the shapes."""
    cell = CELLS[name](10, 20, fused=fused)
    good_h = tr.randn(3, 20)
    pack = (lambda h, c=good_h: (h, c)) if name == "LSTMCell" else (lambda h: h)
    with pytest.raises(ValueError, match=r"\(3, 11\)"):
        cell(tr.randn(3, 11), pack(good_h))
    with pytest.raises(ValueError, match=r"\(3, 21\)"):
        cell(tr.randn(3, 10), pack(tr.randn(3, 21)))
    with pytest.raises(ValueError, match=r"\(2, 20\)"):
        cell(tr.randn(3, 10), pack(tr.randn(2, 20)))
    with pytest.raises(ValueError, match=r"\(3, 10, 1\)"):
        cell(tr.randn(3, 10, 1), pack(good_h))
    with pytest.raises(ValueError, match=r"\(3, 20, 1\)"):
        cell(tr.randn(3, 10), pack(tr.randn(3, 20, 1)))
    if name == "LSTMCell":                                  # a bad c with a good h; not a pair
        with pytest.raises(ValueError, match=r"\(3, 21\)"):
            cell(tr.randn(3, 10), (good_h, tr.randn(3, 21)))
        for state in ((good_h,), good_h):
            with pytest.raises(ValueError, match=r"pair \(h, c\)"):
                cell(tr.randn(3, 10), state)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_no_batch_dim(torch, name, fused):
    """test_modules test_forward, no-batch-dim samples of the cells: x (I,), h (H,) -> (H,),
    equal to a batch of one and to torch."""
    theirs, ours = twin(torch, name, 5, 4, fused=fused)
    x, h = randn(5), randn(4, seed=1)
    state_ours = (tr.Tensor(h), tr.Tensor(h)) if name == "LSTMCell" else tr.Tensor(h)
    state_theirs = (as_torch(torch, h), as_torch(torch, h)) if name == "LSTMCell" else as_torch(torch, h)
    out = ours(tr.Tensor(x), state_ours)
    for part in flat(out):
        assert part.shape == (4,)
    close(out, theirs(as_torch(torch, x), state_theirs))
    close(ours(tr.Tensor(x)), theirs(as_torch(torch, x)))          # default state, unbatched
    batched = ours(tr.Tensor(x).unsqueeze(0), tuple(s.unsqueeze(0) for s in flat(state_ours))
                   if name == "LSTMCell" else state_ours.unsqueeze(0))
    for a, b in zip(flat(out), flat(batched)):
        np.testing.assert_array_equal(a.data, b.data[0])


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(CELLS))
def test_cells_in_float64(torch, name, fused):
    """test_modules test_forward in float64 for the cells: dtype=np.float64 agrees with torch's
    double to 1e-12, and so do the input gradients."""
    theirs, ours = twin(torch, name, 3, 4, fused=fused, dtype=np.float64)
    x = randn(2, 3, dtype=np.float64)
    x_ours, x_theirs = tr.Tensor(x, requires_grad=True), as_torch(torch, x, requires_grad=True)
    out_ours, out_theirs = flat(ours(x_ours)), flat(theirs(x_theirs))
    close(out_ours, out_theirs, atol=1e-12)
    sum(o.sum() for o in out_ours).backward()
    sum(o.sum() for o in out_theirs).backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
def test_lstmcell_backward_only_one_output_grad(fused):
    """test_lstmcell_backward_only_one_output_grad: backward from h alone or c alone reaches x."""
    cell = nn.LSTMCell(2, 3, fused=fused, dtype=np.float64)
    for i in range(2):
        x = tr.Tensor(randn(1, 2, dtype=np.float64), requires_grad=True)
        cell(x)[i].sum().backward()
        assert x.grad is not None and np.abs(x.grad).sum() > 0


# ================================================================================
# Layers: numbers against torch (test_nn.py, test_modules.py)
# ================================================================================

LAYER_CONFIGS = [dict(num_layers=n, bidirectional=d, bias=b, batch_first=f)
                 for n, d, b, f in [(1, False, True, False), (2, True, True, False), (3, False, False, True),
                                    (2, True, False, True), (3, True, True, False)]]


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("config", LAYER_CONFIGS,
                         ids=lambda c: "-".join(f"{k}{int(v)}" for k, v in c.items()))
@pytest.mark.parametrize("name", list(LAYERS))
def test_state_dict_from_torch_every_configuration(torch, name, config, fused):
    """test_modules test_save_load / state dicts: torch's state dict of every configuration (1-3
    layers, bidirectional, no bias, batch-first, dropout in eval) loads by name, in torch's key
    order, and the forward agrees to float32 precision with and without an initial state."""
    dropout = 0.3 if config["num_layers"] > 1 else 0.0     # one layer has nothing to drop (it warns)
    theirs, ours = twin(torch, name, 3, 4, dropout=dropout, fused=fused, **config)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.eval(), ours.eval()
    D = 2 if config["bidirectional"] else 1
    x = randn(*((2, 5, 3) if config["batch_first"] else (5, 2, 3)))
    close(ours(tr.Tensor(x)), theirs(as_torch(torch, x)))
    state_ours, state_theirs = state_pair(torch, name, config["num_layers"] * D, 2, 4)
    out_ours, final_ours = ours(tr.Tensor(x), state_ours)
    out_theirs, final_theirs = theirs(as_torch(torch, x), state_theirs)
    close(out_ours, out_theirs)
    close(final_ours, final_theirs)
    for key, value in ours.state_dict().items():           # and back: our arrays are torch's
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy())


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("variable_len", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["RNN_RELU", "RNN_TANH", "LSTM", "GRU"])
def test_RNN_cpu_vs_cudnn_no_dropout(torch, mode, bidirectional, batch_first, variable_len, fused):
    """test_RNN_cpu_vs_cudnn_no_dropout (there CPU against cuDNN; here ours against torch's CPU):
    2 layers, forward and every gradient (input, h0 and parameters), padded batches through
    lengths= against pack_padded_sequence. The batch-first cases also drop the biases and pass
    the lengths as a Tensor (PyTorch's bias and lens_as_tensor options)."""
    name = mode.split("_")[0]
    extra = {"nonlinearity": mode.split("_")[1].lower()} if name == "RNN" else {}
    theirs, ours = twin(torch, name, 10, 6, num_layers=2, bidirectional=bidirectional, fused=fused,
                        batch_first=batch_first, bias=not batch_first, **extra)
    T, B, D = 7, 5, 2 if bidirectional else 1
    x = randn(*((B, T, 10) if batch_first else (T, B, 10)))
    lengths = [7, 5, 5, 2, 1] if variable_len else None
    x_ours, x_theirs = tr.Tensor(x, requires_grad=True), as_torch(torch, x, requires_grad=True)
    state_ours, state_theirs = state_pair(torch, name, 2 * D, B, 6)
    for s in flat(state_ours) + flat(state_theirs):
        s.requires_grad_(True)
    out_ours, final_ours = ours(x_ours, state_ours,
                                lengths=tr.tensor(lengths) if variable_len and batch_first else lengths)
    if variable_len:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x_theirs, torch.tensor(lengths),
                                                         batch_first=batch_first)
        out_theirs, final_theirs = theirs(packed, state_theirs)
        out_theirs = torch.nn.utils.rnn.pad_packed_sequence(out_theirs, batch_first=batch_first,
                                                            total_length=T)[0]
    else:
        out_theirs, final_theirs = theirs(x_theirs, state_theirs)
    close(out_ours, out_theirs)
    close(final_ours, final_theirs)
    weights = randn(*out_ours.shape, seed=3)
    loss_ours = (out_ours * tr.Tensor(weights)).sum() + sum(s.sum() for s in flat(final_ours))
    loss_theirs = (out_theirs * as_torch(torch, weights)).sum() + sum(s.sum() for s in flat(final_theirs))
    loss_ours.backward()
    loss_theirs.backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(flat(state_ours), flat(state_theirs)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-4, atol=1e-5)
    grads_close(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_RNN_cpu_vs_cudnn_with_dropout(torch, name, fused):
    """test_RNN_cpu_vs_cudnn_with_dropout: the one dropout rate that can be compared in training
    is p = 1: every activation between the layers is zeroed, so torch and ours agree."""
    theirs, ours = twin(torch, name, 10, 6, num_layers=2, dropout=1.0, fused=fused)
    theirs.train(), ours.train()
    x = randn(7, 5, 10)
    out_ours, final_ours = ours(tr.Tensor(x))
    out_theirs, final_theirs = theirs(as_torch(torch, x))
    close(out_ours, out_theirs)
    close(final_ours, final_theirs)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    grads_close(ours, theirs)            # layer 0 gets no gradient through the dropped activations


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name, config", [
    (name, config) for name in LAYERS
    for config in [dict(), dict(num_layers=2), dict(bidirectional=True), dict(batch_first=True),
                   dict(bias=False)]] + [("RNN", dict(nonlinearity="relu"))], ids=str)
def test_layer_no_batch_dim(torch, name, config, fused):
    """test_modules test_forward, no-batch-dim samples of RNN/LSTM/GRU: x (T, I) -> output
    (T, D*H), h_n (L*D, H), equal to torch's and to a batch of one."""
    theirs, ours = twin(torch, name, 5, 3, fused=fused, **config)
    x = randn(4, 5)
    out_ours, final_ours = ours(tr.Tensor(x))
    out_theirs, final_theirs = theirs(as_torch(torch, x))
    D = 2 if config.get("bidirectional") else 1
    assert out_ours.shape == (4, D * 3)
    for part in flat(final_ours):
        assert part.shape == (config.get("num_layers", 1) * D, 3)
    close(out_ours, out_theirs)
    close(final_ours, final_theirs)
    L = config.get("num_layers", 1) * D
    state = tuple(tr.Tensor(randn(L, 3, seed=k)) for k in range(2 if name == "LSTM" else 1))
    state_theirs = tuple(as_torch(torch, s.data) for s in state)
    out_ours, _ = ours(tr.Tensor(x), state if name == "LSTM" else state[0])
    out_theirs, _ = theirs(as_torch(torch, x), state_theirs if name == "LSTM" else state_theirs[0])
    close(out_ours, out_theirs)
    batch = tr.Tensor(x).unsqueeze(0 if config.get("batch_first") else 1)   # no_batch_dim_reference_fn
    out_batch, _ = ours(batch)
    np.testing.assert_allclose(ours(tr.Tensor(x))[0].data, out_batch.data.reshape(4, D * 3), rtol=1e-6)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_in_float64(torch, name, fused):
    """test_modules test_forward in float64 (test_variable_sequence runs in double too):
    dtype=np.float64 builds float64 parameters that agree with torch's double to 1e-12."""
    theirs, ours = twin(torch, name, 3, 4, num_layers=2, bidirectional=True, fused=fused, dtype=np.float64)
    assert all(p.dtype == np.float64 for p in ours.parameters())
    x = randn(5, 2, 3, dtype=np.float64)
    out_ours, final_ours = ours(tr.Tensor(x))
    assert out_ours.dtype == np.float64
    out_theirs, final_theirs = theirs(as_torch(torch, x))
    close(out_ours, out_theirs, atol=1e-12)
    close(final_ours, final_theirs, atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS) + list(CELLS))
def test_modules_to(torch, name, fused):
    """test_modules test_to: .double() / .to(np.float64) converts every parameter in place; the
    converted module agrees with torch's .double() to 1e-12."""
    theirs, ours = twin(torch, name, 3, 4, fused=fused)
    assert ours.double() is ours and all(p.dtype == np.float64 for p in ours.parameters())
    theirs = theirs.double()
    x = randn(5, 2, 3, dtype=np.float64) if name in LAYERS else randn(2, 3, dtype=np.float64)
    close(ours(tr.Tensor(x)), theirs(as_torch(torch, x)), atol=1e-6)     # weights were float32
    ours.to(np.float32)
    assert all(p.dtype == np.float32 for p in ours.parameters())


@pytest.mark.parametrize("name", list(LAYERS) + list(CELLS))
def test_reset_parameters_range(name):
    """RNNBase.reset_parameters / RNNCellBase.reset_parameters: every weight and bias is drawn
    from U(-1/sqrt(H), 1/sqrt(H))."""
    H = 64
    model = (LAYERS | CELLS)[name](8, H)
    values = np.concatenate([p.data.ravel() for p in model.parameters()])
    bound = 1 / np.sqrt(H)
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound and abs(values.mean()) < 0.05 * bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.05 * bound              # std of U(-a, a)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_modules_grad(name, fused):
    """test_modules test_grad: central-difference gradient check in float64 of input and h0."""
    model = LAYERS[name](2, 3, num_layers=2, bidirectional=True, fused=fused, dtype=np.float64)
    x, h0 = randn(3, 2, 2, dtype=np.float64), randn(4, 2, 3, dtype=np.float64, seed=1)

    def run(x, h0):
        state = (h0, h0 * 0.5) if name == "LSTM" else h0
        out, final = model(x, state)
        return out.sum(axis=2) + flat(final)[0].sum()

    tr.gradcheck(run, [x, h0])


@pytest.mark.parametrize("fused", FUSED)
def test_modules_non_contiguous_tensors(fused):
    """test_modules test_non_contiguous_tensors: a strided (transposed) input gives the same
    numbers as a contiguous copy."""
    model = nn.LSTM(3, 4, fused=fused)
    base = randn(2, 5, 3)
    strided = base.transpose(1, 0, 2)                       # (5, 2, 3), not C-contiguous
    assert not strided.flags.c_contiguous
    out_strided = model(tr.Tensor(strided))[0].data
    out_copy = model(tr.Tensor(np.ascontiguousarray(strided)))[0].data
    np.testing.assert_array_equal(out_strided, out_copy)


# ================================================================================
# Layers: checks and behaviours (test_nn.py)
# ================================================================================

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_rnn_args_check(name, fused):
    """test_rnn_args_check: wrong input batch, hidden batch, input size, hidden size or
    num_layers*directions of h0 (of h or c for an LSTM) are errors naming the shapes."""
    I, H, L, B, T, bad = 3, 5, 2, 4, 6, 7
    model = LAYERS[name](I, H, L, fused=fused)
    good_x, good_h = (T, B, I), (L, B, H)
    cases = [((T, bad, I), good_h), (good_x, (L, bad, H)), ((T, B, bad), good_h),
             (good_x, (L, B, bad)), (good_x, (bad, B, H))]
    for x_shape, h_shape in cases:
        x = tr.randn(*x_shape)
        states = ([(tr.randn(*h_shape), tr.randn(*good_h)), (tr.randn(*good_h), tr.randn(*h_shape))]
                  if name == "LSTM" else [tr.randn(*h_shape)])
        for state in states:
            with pytest.raises(ValueError, match=r"expected .*shape"):
                model(x, state)


@pytest.mark.parametrize("name", list(LAYERS))
def test_module_error_inputs_RNN_GRU(name):
    """module_error_inputs_torch_nn_RNN_GRU (also used for LSTM here): constructor arguments of
    the wrong type or value, and an input whose dtype differs from the weights'.

    One deliberate difference: a dtype mismatch is a TypeError here (PyTorch: a
    ValueError), with the same advice (convert the input or the model).
    """
    make = LAYERS[name]
    with pytest.raises(ValueError, match="num_layers"):
        make(10, 10, 0)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        make(10, 0, 1)
    for flag in ("bias", "batch_first"):
        for value in (0, 1, "True", "False"):
            with pytest.raises(TypeError, match=f"{flag} should be of type bool"):
                make(3, 5, **{flag: value})
    for size in (0, -1):
        with pytest.raises(ValueError, match="input_size"):
            make(size, 5)
    for size in (3.0, "10"):
        with pytest.raises(TypeError, match="input_size should be of type int"):
            make(size, 5)
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        make(3, 5.0)
    with pytest.raises(TypeError, match="num_layers should be of type int"):
        make(3, 5, 2.0)
    model = make(3, 5)
    with pytest.raises(TypeError, match=r"dtype float64 differs from parameter dtype float32.*\.to\("):
        model(tr.Tensor(randn(2, 4, 3, dtype=np.float64)))


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_rnn_initial_hidden_state(name, fused):
    """test_rnn_initial_hidden_state: h0 = 0 given explicitly equals the default state."""
    model = LAYERS[name](30, 20, 2, fused=fused)
    x = tr.randn(10, 4, 30)
    h = tr.zeros(2, 4, 20)
    out1, final1 = model(x, (h, h) if name == "LSTM" else h)
    out2, final2 = model(x)
    np.testing.assert_array_equal(out1.data, out2.data)
    for a, b in zip(flat(final1), flat(final2)):
        np.testing.assert_array_equal(a.data, b.data)


def test_RNN_nonlinearity():
    """test_RNN_nonlinearity and test_RNN_nonlinearity_passed_as_arg."""
    assert nn.RNN(1, 10).nonlinearity == "tanh"
    assert nn.RNN(1, 10, nonlinearity="relu").nonlinearity == "relu"
    assert nn.RNN(2, 3, 1, "relu").nonlinearity == "relu"          # positional, after num_layers
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(1, 10, nonlinearity="garbage")
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(1, 10, nonlinearity="garbage")


@pytest.mark.parametrize("fused", FUSED)
def test_rnn_retain_variables(fused):
    """test_rnn_retain_variables: backward through one graph five times (retain_graph=True)
    gives the same gradients each time."""
    model = nn.LSTM(10, 20, num_layers=2, fused=fused, dtype=np.float64)
    x = tr.Tensor(randn(5, 6, 10, dtype=np.float64), requires_grad=True)
    out = model(x)[0]
    out.sum().backward(retain_graph=True)
    first = [x.grad.copy()] + [p.grad.copy() for p in model.parameters()]
    for _ in range(4):
        model.zero_grad()
        x.grad = None
        out.sum().backward(retain_graph=True)
        again = [x.grad] + [p.grad for p in model.parameters()]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fused", FUSED)
def test_rnn_backward_to_input_but_not_parameters(fused):
    """test_rnn_backward_to_input_but_not_parameters: frozen weights, the input still gets its
    gradient (and the frozen weights none)."""
    for freeze in ("each", "module"):
        model = nn.LSTM(2, 3, fused=fused)
        if freeze == "each":
            for p in model.parameters():
                p.requires_grad_(False)
        else:
            assert model.requires_grad_(False) is model          # PyTorch's Module.requires_grad_
        assert len(model.parameters()) == 4                       # still parameters
        x = tr.randn(1, 1, 2, requires_grad=True)
        model(x)[0].sum().backward()
        assert x.grad is not None and np.abs(x.grad).sum() > 0
        assert all(p.grad is None for p in model.parameters())


# ---- dropout ---------------------------------------------------------------

def ones_relu_rnn(p, fused):
    """test_RNN_dropout's set-up: RNN(10, 1000, 2, bias=False, relu) with every weight 1."""
    model = nn.RNN(10, 1000, 2, bias=False, dropout=p, nonlinearity="relu", fused=fused)
    for param in model.parameters():
        param.data[...] = 1
    return model


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("p", [0, 0.276, 0.731, 1])
def test_RNN_dropout(p, train, fused):
    """test_RNN_dropout: layer 0 gives 10 per unit; layer 1 sums the kept units, each scaled
    by 1/(1-p): 10000 without dropout, 0 with p = 1, else a multiple of 10/(1-p)."""
    tr.manual_seed(0)
    model = ones_relu_rnn(p, fused).train(train)
    out, h_n = model(tr.ones(1, 1, 10), tr.zeros(2, 1, 1000))
    out = out.data
    if p == 0 or not train:
        np.testing.assert_array_equal(out, 10000)
    elif p == 1:
        np.testing.assert_array_equal(out, 0)
    else:
        assert np.all(out > 0)
        units = out[0] * (1 - p) / 10
        np.testing.assert_allclose(units, np.round(units), atol=1e-2)
    np.testing.assert_array_equal(h_n.data[0], 10)
    np.testing.assert_array_equal(h_n.data[1], out[0])


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("p", [0, 0.1234])
def test_RNN_dropout_state(p, train, fused):
    """test_RNN_dropout_state: in training with p > 0, two forwards draw two masks."""
    tr.manual_seed(0)
    model = ones_relu_rnn(p, fused).train(train)
    x, h = tr.rand(1, 1, 10), tr.zeros(2, 1, 1000)
    out1, h1 = model(x, h)
    out2, h2 = model(x, h)
    same = np.array_equal(out1.data, out2.data) and np.array_equal(h1.data, h2.data)
    assert same == (p == 0 or not train)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("train", [True, False])
def test_RNN_change_dropout(train, fused):
    """test_RNN_change_dropout: rnn.dropout = p after construction takes effect at the next forward."""
    tr.manual_seed(0)
    model = nn.RNN(100, 100, 2, dropout=0, nonlinearity="relu", fused=fused).train(train)
    x = tr.rand(3, 2, 100)
    previous = None
    for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
        model.dropout = p
        out1, h1 = model(x)
        out2, h2 = model(x)
        if p in (0, 1) or not train:
            np.testing.assert_array_equal(out1.data, out2.data)
            np.testing.assert_array_equal(h1.data, h2.data)
        else:
            assert not np.array_equal(out1.data, out2.data)
            assert not np.array_equal(h1.data, h2.data)
        if previous is not None:
            if not train:
                np.testing.assert_array_equal(out1.data, previous)
            elif p not in (0, 1):
                assert not np.array_equal(out1.data, previous)
        previous = out1.data


def test_dropout_checks():
    """RNNBase's checks: dropout must be a number in [0, 1]; dropout with one layer warns
    (nothing lies between layers to drop)."""
    for p in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
            nn.GRU(3, 4, num_layers=2, dropout=p)
    with pytest.warns(UserWarning, match="num_layers"):
        nn.LSTM(3, 4, num_layers=1, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, num_layers=2, dropout=0.5)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS))
def test_modules_train_and_eval_modes_differ(name, fused):
    """test_modules test_if_train_and_eval_modes_differ: without dropout, train and eval agree."""
    model = LAYERS[name](3, 4, num_layers=2, fused=fused)
    x = tr.randn(5, 2, 3)
    train_out = model.train()(x)[0].data
    np.testing.assert_array_equal(train_out, model.eval()(x)[0].data)


# ---- sequence length and batch size zero --------------------------------------------

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_error_RNN_seq_len_zero(name, batch_first, fused):
    """test_error_RNN_seq_len_zero: a sequence of no steps is refused with PyTorch's message."""
    model = LAYERS[name](10, 20, batch_first=batch_first, fused=fused)
    x = tr.zeros(3, 0, 10) if batch_first else tr.zeros(0, 3, 10)
    with pytest.raises(ValueError, match="Expected sequence length to be larger than 0"):
        model(x)


@pytest.mark.parametrize("fused, backend", [(True, "numba"), (False, "numba"),
                                            (True, "numpy")])
@pytest.mark.parametrize("name", list(LAYERS))
def test_RNN_input_size_zero(name, fused, backend):
    """test_RNN_input_size_zero: a batch of size zero gives outputs of shape (5, 0, D*H)
    (also with two bidirectional layers and an explicit h0 of batch 0), on both kernel backends."""
    with tr.backend(backend):
        check_zero_batch(name, fused)


def check_zero_batch(name, fused):
    for options in (dict(), dict(num_layers=2, bidirectional=True)):
        model = LAYERS[name](input_size=3, hidden_size=4, fused=fused, **options)
        D = 2 if options else 1
        x = tr.zeros(5, 0, 3, requires_grad=True)
        out = model(x)[0]
        assert out.shape == (5, 0, 4 * D)
        out.sum().backward()
        assert x.grad.shape == (5, 0, 3)
        h0 = tr.zeros(model.num_layers * D, 0, 4)
        out, final = model(x, (h0, h0) if name == "LSTM" else h0)
        assert out.shape == (5, 0, 4 * D) and flat(final)[0].shape == h0.shape


# ================================================================================
# Variable lengths: lengths= in place of PackedSequence (test_nn.py, test_packed_sequence.py)
# ================================================================================

@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("default_state", [True, False])
@pytest.mark.parametrize("enforce_sorted, lengths", [
    (True, [5]), (False, [5]), (True, [10, 10, 6, 2, 2, 1, 1]), (False, [10, 10, 6, 2, 2, 1, 1]),
    (False, [2, 1, 3, 2, 10, 5, 3])])
def test_variable_sequence(enforce_sorted, lengths, default_state, fused):
    """test_variable_sequence: a padded batch with lengths= equals each sequence run alone
    (padded with zeros), forward and backward, for a 2-layer bidirectional LSTM in float64."""
    B, T = len(lengths), max(lengths)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, fused=fused, dtype=np.float64)
    alone = copy.deepcopy(lstm)
    x_data = randn(T, B, 3, dtype=np.float64)
    state = None if default_state else tuple(randn(4, B, 4, dtype=np.float64, seed=k) for k in (1, 2))

    x_alone = tr.Tensor(x_data, requires_grad=True)
    outs, finals = [], []
    for b, n in enumerate(lengths):
        state_b = None if state is None else tuple(tr.Tensor(s[:, b:b + 1]) for s in state)
        out, final = alone(x_alone[:n, b:b + 1], state_b)
        outs.append(tr.cat([out, tr.zeros(T - n, 1, 8, dtype=np.float64)], dim=0) if n < T else out)
        finals.append(final)
    seq_out = tr.cat(outs, dim=1)
    seq_final = [tr.cat([f[k] for f in finals], dim=1) for k in range(2)]

    x = tr.Tensor(x_data, requires_grad=True)
    out, final = lstm(x, None if state is None else tuple(tr.Tensor(s) for s in state),
                      lengths=lengths, enforce_sorted=enforce_sorted)
    np.testing.assert_allclose(out.data, seq_out.data, atol=1e-12)
    for a, b in zip(final, seq_final):
        np.testing.assert_allclose(a.data, b.data, atol=1e-12)

    seq_out.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(x.grad, x_alone.grad, atol=1e-12)
    for p, q in zip(lstm.parameters(), alone.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("name", list(LAYERS))
def test_lengths_against_pack_padded_sequence(torch, name, enforce_sorted, fused):
    """test_packed_sequence's pack_padded_sequence round trips, through a layer: outputs,
    final states and gradients with lengths= equal torch's with a PackedSequence."""
    lengths = [6, 4, 4, 3, 1] if enforce_sorted else [3, 6, 1, 4, 4]
    theirs, ours = twin(torch, name, 3, 4, num_layers=2, bidirectional=True, batch_first=True, fused=fused)
    x = randn(5, 6, 3)
    x_ours, x_theirs = tr.Tensor(x, requires_grad=True), as_torch(torch, x, requires_grad=True)
    out_ours, final_ours = ours(x_ours, lengths=lengths, enforce_sorted=enforce_sorted)
    rnn_utils = torch.nn.utils.rnn
    packed = rnn_utils.pack_padded_sequence(x_theirs, lengths, batch_first=True,
                                            enforce_sorted=enforce_sorted)
    out_packed, final_theirs = theirs(packed)
    out_theirs, out_lengths = rnn_utils.pad_packed_sequence(out_packed, batch_first=True)
    assert out_lengths.tolist() == lengths
    close(out_ours, out_theirs)
    close(final_ours, final_theirs)
    (out_ours.sum() + flat(final_ours)[0].sum()).backward()
    (out_theirs.sum() + flat(final_theirs)[0].sum()).backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-5, atol=1e-5)
    grads_close(ours, theirs)


@pytest.mark.parametrize("fused", FUSED)
def test_total_length(torch, fused):
    """test_packed_sequence test_total_length: the output keeps the padded length T (as
    pad_packed_sequence with total_length=T), zeros after each sequence's end."""
    theirs, ours = twin(torch, "GRU", 2, 3, fused=fused)
    x, lengths = randn(7, 3, 2), [4, 3, 1]                 # T = 7 > max(lengths)
    out = ours(tr.Tensor(x), lengths=lengths)[0]
    packed = torch.nn.utils.rnn.pack_padded_sequence(as_torch(torch, x), lengths)
    expected = torch.nn.utils.rnn.pad_packed_sequence(theirs(packed)[0], total_length=7)[0]
    assert out.shape == (7, 3, 3)
    close(out, expected)


@pytest.mark.parametrize("fused", FUSED)
def test_wrong_order(fused):
    """test_packed_sequence test_wrong_order: unsorted lengths need enforce_sorted=False."""
    model = nn.LSTM(2, 3, fused=fused)
    x = tr.randn(4, 2, 2)
    with pytest.raises(ValueError, match="enforce_sorted=False"):
        model(x, lengths=[2, 4])
    assert model(x, lengths=[2, 4], enforce_sorted=False)[0].shape == (4, 2, 3)


@pytest.mark.parametrize("fused", FUSED)
def test_bad_lengths(fused):
    """pack_padded_sequence's checks: every length in 1..T, one per sequence."""
    model = nn.GRU(2, 3, fused=fused)
    x = tr.randn(4, 2, 2)
    for lengths in ([4, 0], [5, 1], [4], [4, 2, 1]):
        with pytest.raises(ValueError, match="lengths"):
            model(x, lengths=lengths)


# ================================================================================
# Parameters and state dicts (test_nn.py, test_modules.py)
# ================================================================================

@pytest.mark.parametrize("fused", FUSED)
def test_modules_factory_kwargs(fused):
    """test_modules test_factory_kwargs: dtype= and device= in every constructor."""
    for make in list(LAYERS.values()) + list(CELLS.values()):
        model = make(3, 4, fused=fused, dtype=np.float64, device="cpu")
        assert all(p.dtype == np.float64 for p in model.parameters())
        with pytest.raises(ValueError, match="cpu"):
            make(3, 4, fused=fused, device="cuda")


@pytest.mark.parametrize("fused", FUSED)
def test_frozen_parameters_in_state_dict(torch, fused):
    """A frozen parameter is still a parameter: named_parameters() and state_dict() keep it and a
    full torch state dict loads (torch: Module._parameters holds it whatever requires_grad says)."""
    theirs = torch.nn.LSTM(3, 4, num_layers=2)
    theirs.weight_ih_l0.requires_grad_(False)
    ours = nn.LSTM(3, 4, num_layers=2, fused=fused)
    ours.weight_ih_l0.requires_grad_(False)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = randn(5, 2, 3)
    close(ours(tr.Tensor(x)), theirs(as_torch(torch, x)))
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("fused", FUSED)
def test_load_state_dict(fused):
    """test_nn.py test_load_state_dict (for a layer): strict loading refuses missing or extra
    keys and changes nothing; strict=False loads what fits and returns
    (missing_keys, unexpected_keys) as PyTorch's IncompatibleKeys; a wrong shape is refused."""
    source, target = nn.GRU(3, 4, num_layers=2, fused=fused), nn.GRU(3, 4, num_layers=2, fused=fused)
    before = target.state_dict()
    state = source.state_dict()
    state["extra.weight"] = np.zeros(2, np.float32)
    del state["bias_hh_l1"]
    with pytest.raises(KeyError, match="bias_hh_l1"):
        target.load_state_dict(state)
    for k, v in before.items():
        np.testing.assert_array_equal(target.state_dict()[k], v)
    result = target.load_state_dict(state, strict=False)
    assert result.missing_keys == ["bias_hh_l1"] and result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(target.weight_ih_l0.data, source.weight_ih_l0.data)
    np.testing.assert_array_equal(target.bias_hh_l1.data, before["bias_hh_l1"])
    assert tuple(target.load_state_dict(source.state_dict())) == ([], [])
    with pytest.raises(ValueError, match="shape"):
        target.load_state_dict(dict(source.state_dict(), weight_ih_l0=np.zeros((12, 4), np.float32)))


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("name", list(LAYERS) + list(CELLS))
def test_modules_save_load(tmp_path, name, fused):
    """test_modules test_save_load (torch.save/torch.load there): io.save and io.load(into=...)
    give a module with the same outputs, whichever path it runs on."""
    make = (LAYERS | CELLS)[name]
    options = dict(num_layers=2, bidirectional=True) if name in LAYERS else {}
    model = make(3, 4, fused=fused, **options)
    tr.io.save(model, tmp_path / "model.npz")
    other = make(3, 4, fused=not fused, **options)
    tr.io.load(tmp_path / "model.npz", into=other)
    x = tr.randn(5, 2, 3) if name in LAYERS else tr.randn(2, 3)
    close(other(x), model(x))


def test_module_discovery_names(torch):
    """Module.children / named_modules / modules / named_parameters as in torch, for a model
    built from a layer and a Linear head."""
    class Tagger(nn.Module):
        def __init__(self):
            self.rnn = nn.LSTM(3, 4, num_layers=2)
            self.head = nn.Linear(4, 2)

    class TorchTagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 4, num_layers=2)
            self.head = torch.nn.Linear(4, 2)

    ours, theirs = Tagger(), TorchTagger()
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_load_state_dict_with_tensors(torch):
    """load_state_dict takes our Tensors as well as arrays; torch tensors get a clear message,
    and the fix it names (io.convert_weights) loads them."""
    source, target = nn.GRU(3, 4), nn.GRU(3, 4)
    target.load_state_dict({k: tr.Tensor(v) for k, v in source.state_dict().items()})
    for k, v in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[k], v)
    theirs = torch.nn.GRU(3, 4)
    with pytest.raises(TypeError, match=r"\.numpy\(\).*convert_weights"):
        target.load_state_dict(theirs.state_dict())
    target.load_state_dict(tr.io.convert_weights(theirs.state_dict(), "pytorch"))   # the advised fix
    x = randn(5, 2, 3)
    close(target(tr.Tensor(x)), theirs(as_torch(torch, x)))


def test_clip_grad_norm_like_torch(torch):
    """torch.nn.utils.clip_grad_norm_/clip_grad_value_ at tr.nn.utils, same norm and gradients."""
    for norm_type in (2.0, 1.0, float("inf")):
        theirs, ours = twin(torch, "LSTM", 3, 4)
        x = randn(5, 2, 3)
        ours(tr.Tensor(x))[0].sum().backward()
        theirs(as_torch(torch, x))[0].sum().backward()
        total_ours = tr.nn.utils.clip_grad_norm_(ours.parameters(), 0.5, norm_type=norm_type)
        total_theirs = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, norm_type=norm_type)
        assert float(total_ours) == pytest.approx(float(total_theirs), rel=1e-5)
        grads_close(ours, theirs)
    tr.nn.utils.clip_grad_value_(ours.parameters(), 0.01)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.01)
    grads_close(ours, theirs)


# ================================================================================
# Tensor API names a PyTorch user reaches for (issue 14)
# ================================================================================

def test_dim_keywords(torch):
    """dim= (and keepdim=) where PyTorch uses it, same numbers as torch."""
    x = randn(2, 3, 4)
    t, ours = as_torch(torch, x), tr.Tensor(x)
    pairs = [(ours.log_softmax(dim=1), t.log_softmax(dim=1)),
             (tr.log_softmax(ours, dim=-1), torch.log_softmax(t, dim=-1)),
             (tr.softmax(ours, dim=0), torch.softmax(t, dim=0)),
             (ours.sum(dim=1), t.sum(dim=1)), (ours.mean(dim=2, keepdim=True), t.mean(dim=2, keepdim=True)),
             (ours.max(dim=1)[0], t.max(dim=1)[0]), (tr.cat([ours, ours], dim=2), torch.cat([t, t], dim=2)),
             (tr.concat([ours, ours], dim=0), torch.cat([t, t], dim=0)),
             (tr.stack([ours, ours], dim=1), torch.stack([t, t], dim=1))]
    for a, b in pairs:
        close(a, b, atol=1e-6)
    np.testing.assert_array_equal(ours.max(dim=1)[1].data, t.max(dim=1)[1].numpy())
    for a, b in zip(tr.split(ours, 2, dim=2), torch.split(t, 2, dim=2)):
        close(a, b)
    with pytest.raises(TypeError, match="axis.*dim"):
        ours.sum(axis=1, dim=1)


def test_module_level_functions(torch):
    """tr.sigmoid/tanh/exp/log/relu as torch.*, and on one-element tensors float() and int()."""
    x = randn(3, 4)
    t, ours = as_torch(torch, x), tr.Tensor(x)
    for name in ("sigmoid", "tanh", "exp", "relu"):
        close(getattr(tr, name)(ours), getattr(torch, name)(t), atol=1e-6)
    close(tr.log(tr.exp(ours)), t, atol=1e-5)
    assert float(tr.Tensor([2.5])) == 2.5 and int(tr.Tensor([[3.0]])) == 3
    with pytest.raises(TypeError, match="one-element"):
        float(ours)


def test_tensor_api_names(torch):
    """size(), size(d), numel(), dim(), flatten(), clone(), view(-1)/reshape(-1), transpose(d0, d1),
    permute, unsqueeze, squeeze and contiguous as in torch."""
    x = randn(2, 3, 4)
    t, ours = as_torch(torch, x), tr.Tensor(x, requires_grad=True)
    assert ours.size() == tuple(t.size()) and ours.size(1) == t.size(1) and ours.size(-1) == t.size(-1)
    assert ours.numel() == t.numel() and ours.dim() == t.dim()
    assert ours.flatten().shape == tuple(t.flatten().shape)
    assert ours.flatten(1).shape == tuple(t.flatten(1).shape)
    assert ours.view(-1, 4).shape == tuple(t.view(-1, 4).shape)
    assert ours.reshape(2, -1).shape == tuple(t.reshape(2, -1).shape)
    for dims in ((0, 1), (1, 0), (-1, 0), (2, 1)):                    # PyTorch's swap of two axes
        np.testing.assert_array_equal(ours.transpose(*dims).data, t.transpose(*dims).numpy())
    np.testing.assert_array_equal(ours.permute(2, 0, 1).data, t.permute(2, 0, 1).numpy())
    matrix = tr.Tensor(x[0])
    np.testing.assert_array_equal(matrix.transpose(0, 1).data, x[0].T)  # a swap, not NumPy's no-op
    for d in range(-4, 4):
        assert ours.unsqueeze(d).shape == tuple(t.unsqueeze(d).shape)
    column = tr.Tensor(x[:1, :, :1])                                       # (1, 3, 1)
    assert column.squeeze().shape == (3,) and column.squeeze(0).shape == (3, 1)
    assert column.squeeze(1).shape == (1, 3, 1)                           # not of length 1: kept
    assert ours.contiguous() is ours
    copy_ = ours.clone()
    copy_.sum().backward()                                   # clone is differentiable, as in torch
    np.testing.assert_array_equal(ours.grad, np.ones_like(x))
    assert copy_.data is not ours.data


def test_item_assignment_error():
    """x[0] = y is refused with a message that points to tr.where / tr.cat."""
    x = tr.zeros(3, 4)
    with pytest.raises(TypeError, match=r"tr\.where.*tr\.cat"):
        x[0] = tr.ones(4)


def test_iteration_gives_rows_as_torch(torch):
    """for row in x gives x's rows as in torch (0-d tensors for a 1-d x), one node for all of them,
    and gradients through any of them (a row nothing used gets zeros), as torch's; a 0-d tensor
    cannot be iterated (TypeError in both), where Python's fallback to x[0], x[1]... gave nothing."""
    x = randn(4, 2, 3)
    t, ours = as_torch(torch, x).requires_grad_(), tr.Tensor(x, requires_grad=True)
    rows, torch_rows = list(ours), list(t)
    assert len(rows) == 4 and all(r.shape == (2, 3) for r in rows)
    assert len({id(r._ctx) for r in rows}) == 1                     # one Unbind node
    (rows[3] * rows[1]).sum().backward()
    (torch_rows[3] * torch_rows[1]).sum().backward()
    close(ours.grad, t.grad)
    assert not ours.grad[0].any() and not ours.grad[2].any()
    v = tr.Tensor(np.arange(3.0), requires_grad=True)
    values = list(v)
    assert [r.shape for r in values] == [(), (), ()] and all(isinstance(r.data, np.ndarray) for r in values)
    sum(values, 2).backward()                              # Python's sum over a tensor, as in ADBench's objective
    np.testing.assert_array_equal(v.grad, [1.0, 1.0, 1.0])
    for scalar in (tr.tensor(3.0), torch.tensor(3.0)):
        with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
            list(scalar)
    assert list(tr.zeros(0, 2)) == [] and [r.dtype for r in tr.tensor([1, 2], dtype=np.int64)] == [np.int64] * 2


def test_dtype_of_numbers_as_torch(torch):
    """tr.tensor infers the dtype as torch.tensor does: Python floats and lists give float32, while
    NumPy numbers keep theirs (np.mean's float64 result once became float32, and then clashed
    with the float64 tensors it came from)."""
    for value in (np.float64(0.5), np.float32(0.5), 0.5, [0.5, 1.5], np.int64(3), 3, np.bool_(True),
                  np.arange(3.0)):
        assert tr.tensor(value).dtype == torch.tensor(value).numpy().dtype, repr(value)


def test_chunk_unbind_and_split_methods_as_torch(torch):
    """gates.chunk(4, dim=1), x.unbind(dim), x.split(size, dim) and their module forms: the pieces
    and the gradients through some of them as torch's, each call one graph node."""
    x = randn(3, 10, 2)
    cases = [(lambda a: a.chunk(4, dim=1), lambda t: t.chunk(4, dim=1)),
             (lambda a: a.chunk(3), lambda t: t.chunk(3)),
             (lambda a: tr.chunk(a, 5, dim=1), lambda t: torch.chunk(t, 5, dim=1)),
             (lambda a: a.unbind(1), lambda t: t.unbind(1)),
             (lambda a: tr.unbind(a, dim=-1), lambda t: torch.unbind(t, dim=-1)),
             (lambda a: a.split(4, 1), lambda t: t.split(4, 1)),
             (lambda a: a.split([1, 2], dim=0), lambda t: t.split([1, 2], dim=0))]
    for ours_fn, torch_fn in cases:
        ours, t = tr.Tensor(x, requires_grad=True), as_torch(torch, x).requires_grad_()
        pieces, torch_pieces = ours_fn(ours), torch_fn(t)
        assert len(pieces) == len(torch_pieces) and len({id(p._ctx) for p in pieces}) == 1
        close(list(pieces), list(torch_pieces))
        ((pieces[0] * 2).sum() + (pieces[-1] ** 2).sum()).backward()
        ((torch_pieces[0] * 2).sum() + (torch_pieces[-1] ** 2).sum()).backward()
        close(ours.grad, t.grad)
    with pytest.raises(ValueError, match="chunks must be a positive integer"):
        tr.Tensor(x).chunk(0)
    with pytest.raises(IndexError, match="unbind: axis 3 is out of range"):
        tr.Tensor(x).unbind(3)


def test_membership_as_torch(torch):
    """element in x: any entry equal to a number or a broadcasting tensor, as torch answers it
    (not Python's fallback of comparing with each row, which is ambiguous for a matrix)."""
    x = randn(3, 4)
    x[1, 2] = 0.5
    t, ours = as_torch(torch, x), tr.Tensor(x)
    for element in (0.5, 7, True, x[2, 3]):
        assert (element in ours) == (element in t)
    for row in ([0.5] * 4, x[0].tolist()):
        assert (tr.tensor(row, dtype=np.float64) in ours) == (torch.tensor(row, dtype=torch.float64) in t)
    assert 0.5 in ours and 7 not in ours
    with pytest.raises(TypeError, match="'in' needs a number or a Tensor"):
        None in ours


# --- PyTorch habits: all_weights, flatten_parameters(), hx= ------------------------------------

@pytest.mark.parametrize("name,options", [("LSTM", {}), ("GRU", dict(num_layers=2, bidirectional=True)),
                                          ("RNN", dict(num_layers=2, bias=False)),
                                          ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2))])
def test_all_weights_like_pytorch(name, options):
    """test_nn's use of all_weights: one list per layer and direction, PyTorch's names, order and shapes."""
    torch = pytest.importorskip("torch")
    ours, theirs = LAYERS[name](3, 4, **options), getattr(torch.nn, name)(3, 4, **options)
    names = {id(p): n for n, p in ours.named_parameters()}
    assert [[names[id(w)] for w in ws] for ws in ours.all_weights] == theirs._all_weights
    assert ([[w.shape for w in ws] for ws in ours.all_weights]
            == [[tuple(w.shape) for w in ws] for ws in theirs.all_weights])


def test_flatten_parameters_changes_nothing():
    lstm = nn.LSTM(3, 4, num_layers=2)
    before = [(name, p, p.data.copy()) for name, p in lstm.named_parameters()]
    assert lstm.flatten_parameters() is None
    after = list(lstm.named_parameters())
    assert [name for name, *_ in before] == [name for name, _ in after]
    for (_, p, data), (_, q) in zip(before, after):
        assert p is q and np.array_equal(p.data, data)


def _arrays(result):
    """Every array of a layer's or cell's result: a Tensor, or nested tuples of them."""
    if isinstance(result, tuple):
        return [a for part in result for a in _arrays(part)]
    return [result.data]


@pytest.mark.parametrize("fused", FUSED)
def test_initial_state_as_hx(fused):
    """PyTorch names the initial state hx: lstm(x, hx=(h0, c0)), cell(x, hx=h)."""
    x, h0, c0 = tr.randn(5, 2, 3), tr.randn(1, 2, 4), tr.randn(1, 2, 4)
    x1, h, c = tr.randn(2, 3), tr.randn(2, 4), tr.randn(2, 4)
    cases = [(nn.LSTM(3, 4, fused=fused), x, (h0, c0)), (nn.GRU(3, 4, fused=fused), x, h0),
             (nn.RNNCell(3, 4, fused=fused), x1, h), (nn.GRUCell(3, 4, fused=fused), x1, h),
             (nn.LSTMCell(3, 4, fused=fused), x1, (h, c))]
    for module, inputs, state in cases:
        expected, got = _arrays(module(inputs, state)), _arrays(module(inputs, hx=state))
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(TypeError, match="initial state twice"):
            module(inputs, state, hx=state)
