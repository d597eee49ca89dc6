"""LSTM with projections (proj_size) and the reset_after=False GRU: kernels, fused ops, layers, Keras.

PyTorch is the oracle for proj_size (test_torch_oracle.py); here: numba vs the
reference, gradchecks of the fused ops (float64, central differences), fused vs
composite layers, argument errors, and Keras' GRU of both kinds against the
Keras equations written out below in NumPy.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import fused, io, nn
from tinygrad_rnn.kernels import cpu, reference

BACKENDS = ["numpy", "numba"]


def tensors(rng, *shapes, dtype=np.float64):
    return [tr.Tensor((0.5 * rng.standard_normal(s)).astype(dtype), requires_grad=True) for s in shapes]


def lstm_proj_inputs(T=3, B=2, I=2, H=4, P=2, seed=0, dtype=np.float64):
    """x, h0 (B, P), c0 (B, H), W_ih, W_hh (4H, P), b_ih, b_hh, W_hr (P, H)."""
    return tensors(np.random.default_rng(seed), (T, B, I), (B, P), (B, H), (4 * H, I), (4 * H, P),
                   (4 * H,), (4 * H,), (P, H), dtype=dtype)


def gru_inputs(T=3, B=2, I=2, H=3, seed=0, dtype=np.float64):
    return tensors(np.random.default_rng(seed), (T, B, I), (B, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,),
                   dtype=dtype)


def flat(*outputs):
    return tr.concat([o.reshape(-1) for o in outputs])


# --------------------------------------------------------------------------
# Kernels: numba vs reference
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [None, np.array([4, 2, 1])])
@pytest.mark.parametrize("kernel", ["lstm_projected_seq", "gru_reset_before_seq"])
def test_numba_matches_reference(kernel, dtype, lengths):
    if kernel == "lstm_projected_seq":
        inputs = [t.data for t in lstm_proj_inputs(T=4, B=3, I=3, H=5, P=3, seed=1, dtype=dtype)]
        grads_in = 3
    else:
        inputs = [t.data for t in gru_inputs(T=4, B=3, I=3, H=5, seed=1, dtype=dtype)]
        grads_in = 2
    results = []
    for k in (cpu, reference):
        *outputs, saved = getattr(k, kernel + "_forward")(*inputs, lengths=lengths)
        rng = np.random.default_rng(2)
        d_outputs = [rng.standard_normal(o.shape).astype(dtype) for o in outputs[:grads_in]]
        results.append(outputs + list(getattr(k, kernel + "_backward")(*d_outputs, saved)))
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for k, (a, b) in enumerate(zip(*results)):
        assert a.dtype == dtype, f"result {k}"
        np.testing.assert_allclose(a, b, err_msg=f"result {k}", **tolerance)


# --------------------------------------------------------------------------
# Fused ops: gradchecks
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths", [None, np.array([3, 1])])
def test_lstm_projected_sequence_gradcheck(backend, lengths):
    with tr.backend(backend):
        tr.gradcheck(lambda x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr: flat(*fused.lstm_sequence(
            x, h, c, W_ih, W_hh, b_ih, b_hh, lengths=lengths, W_hr=W_hr)), lstm_proj_inputs())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths", [None, np.array([3, 1])])
def test_gru_reset_before_sequence_gradcheck(backend, lengths):
    with tr.backend(backend):
        tr.gradcheck(lambda *a: flat(*fused.gru_sequence(*a, lengths=lengths, reset_after=False)), gru_inputs())


@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_reset_before_cell_gradcheck(backend):
    x, h, *weights = gru_inputs(T=1)
    with tr.backend(backend):
        tr.gradcheck(lambda *a: fused.gru_cell(*a, reset_after=False), [x[0], h, *weights])


def test_proj_shapes_are_checked():
    x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr = lstm_proj_inputs()
    with pytest.raises(ValueError, match=r"lstm_sequence: W_hr has shape \(4, 2\).*H=4.*\(P, H\) = \(P, 4\)"):
        fused.lstm_sequence(x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr=W_hr.T)
    with pytest.raises(ValueError, match=r"lstm_sequence: h0 has shape \(2, 4\).*expected \(B, P\) = \(2, 2\)"):
        fused.lstm_sequence(x, c, c, W_ih, W_hh, b_ih, b_hh, W_hr=W_hr)


# --------------------------------------------------------------------------
# Layers: fused vs composite, argument errors
# --------------------------------------------------------------------------

def forward_backward(layer, x, lengths):
    for p in [x, *layer.parameters()]:
        p.zero_grad()
    output, state = layer(x, lengths=lengths)
    finals = list(state) if isinstance(state, tuple) else [state]
    rng = np.random.default_rng(5)
    loss = sum((o * tr.Tensor(rng.standard_normal(o.shape))).sum() for o in [output, *finals])
    loss.backward()
    return [o.data for o in [output, *finals]] + [x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda **o: nn.LSTM(2, 4, proj_size=3, **o),
                                  lambda **o: nn.GRU(2, 4, reset_after=False, **o)], ids=["lstm_proj", "gru_v1"])
@pytest.mark.parametrize("options", [dict(num_layers=2), dict(bidirectional=True, num_layers=2),
                                     dict(bidirectional=True, merge="sum", bias=False)])
def test_fused_layer_matches_composite(backend, make, options):
    tr.manual_seed(0)
    layer = make(**options).to(np.float64)
    x = tr.Tensor(np.random.default_rng(1).standard_normal((4, 3, 2)), requires_grad=True)
    results = []
    for is_fused in (True, False):
        layer.fused = is_fused
        with tr.backend(backend):
            results.append(forward_backward(layer, x, np.array([4, 2, 1])))
    for k, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"result {k}")


def test_proj_size_parameters_and_shapes():
    layer = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {name: p.shape for name, p in layer.named_parameters()}
    assert shapes["weight_hh_l0"] == (20, 2) and shapes["weight_hr_l0_reverse"] == (2, 5)
    assert shapes["weight_ih_l1"] == (20, 4)                # the layer below gives 2P features
    out, (h_n, c_n) = layer(tr.Tensor(np.zeros((6, 4, 3), np.float32)))
    assert out.shape == (6, 4, 4) and h_n.shape == (4, 4, 2) and c_n.shape == (4, 4, 5)
    with pytest.raises(ValueError, match=r"h0 of shape \(num_layers\*num_directions, B, P\) = \(4, 4, 2\)"):
        layer(tr.Tensor(np.zeros((6, 4, 3), np.float32)), (c_n, c_n))


@pytest.mark.parametrize("proj_size,match", [(5, "smaller than hidden_size"), (7, "smaller than hidden_size"),
                                             (-1, "positive integer or zero"), (True, "positive integer"),
                                             (2.0, "positive integer")])
def test_proj_size_errors(proj_size, match):
    with pytest.raises(ValueError, match=f"LSTM: proj_size.*{match}"):
        nn.LSTM(3, 5, proj_size=proj_size)


@pytest.mark.parametrize("Layer", [nn.RNN, nn.GRU])
def test_proj_size_only_for_lstm(Layer):
    with pytest.raises(ValueError, match=f"{Layer.__name__}: proj_size is only supported by LSTM"):
        Layer(3, 5, proj_size=2)
    assert Layer(3, 5, proj_size=0).hidden_size == 5


def test_reset_after_must_be_bool():
    with pytest.raises(TypeError, match="GRU: reset_after should be of type bool"):
        nn.GRU(3, 5, reset_after="False")


@pytest.mark.parametrize("is_fused", [True, False])
def test_gru_cell_reset_after_false_matches_layer(is_fused):
    """GRUCell(reset_after=False) is one step of GRU(reset_after=False) with the same weights."""
    layer = nn.GRU(3, 4, reset_after=False, fused=False).to(np.float64)
    cell = nn.GRUCell(3, 4, reset_after=False, fused=is_fused).to(np.float64)
    cell.load_state_dict({name[:-3]: p.data for name, p in layer.named_parameters()})
    x = np.random.default_rng(0).standard_normal((1, 2, 3))
    out, _ = layer(tr.Tensor(x))
    np.testing.assert_allclose(cell(tr.Tensor(x[0])).data, out.data[0], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------
# Keras' GRU, both kinds: convert_weights and Keras' own equations in NumPy
# --------------------------------------------------------------------------

def keras_gru(x, kernel, recurrent_kernel, bias, reset_after):
    """Keras' GRU from zero state, gates z, r, h:  x (T, B, I) -> outputs (T, B, H).

    reset_after=True:  bias (2, 3H);  hh = tanh(x W_h + b_xh + r * (h U_h + b_hh))
    reset_after=False: bias (3H,);    hh = tanh(x W_h + b_h + (r * h) U_h)
    h' = z * h + (1 - z) * hh
    """
    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    H = recurrent_kernel.shape[0]
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * H))
    U_z, U_r, U_h = np.split(recurrent_kernel, 3, axis=1)
    b_z, b_r, b_h = np.split(recurrent_bias, 3)
    h, outputs = np.zeros((x.shape[1], H)), []
    for x_t in x:
        x_z, x_r, x_h = np.split(x_t @ kernel + input_bias, 3, axis=1)
        z = sigmoid(x_z + h @ U_z + b_z)
        r = sigmoid(x_r + h @ U_r + b_r)
        hh = np.tanh(x_h + r * (h @ U_h + b_h)) if reset_after else np.tanh(x_h + (r * h) @ U_h)
        h = z * h + (1 - z) * hh
        outputs.append(h)
    return np.stack(outputs)


@pytest.mark.parametrize("is_fused", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_both_kinds(reset_after, is_fused):
    I, H = 3, 4
    rng = np.random.default_rng(7)
    kernel, recurrent = rng.standard_normal((I, 3 * H)), 0.5 * rng.standard_normal((H, 3 * H))
    bias = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,))
    layer = nn.GRU(I, H, reset_after=reset_after, fused=is_fused).to(np.float64)
    layer.load_state_dict(io.convert_weights([kernel, recurrent, bias], "keras"))
    x = rng.standard_normal((5, 2, I))
    out, _ = layer(tr.Tensor(x))
    np.testing.assert_allclose(out.data, keras_gru(x, kernel, recurrent, bias, reset_after), rtol=1e-12,
                               atol=1e-14)


def test_keras_gru_bias_shape_error():
    H = 4
    with pytest.raises(ValueError, match=r"Keras GRU bias must have shape \(2, 12\).*or \(12,\)"):
        io.convert_weights([np.ones((3, 3 * H)), np.ones((H, 3 * H)), np.ones(5)], "keras")
