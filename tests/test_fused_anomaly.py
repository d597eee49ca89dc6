"""detect_anomaly on the fused path: the error names the time step and batch row (and the layer's
direction) of the first NaN/Inf — in the input, in the forward output and in backward."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import fused, nn


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("Layer", [nn.LSTM, nn.GRU, nn.RNN])
def test_nan_in_the_input(backend, Layer):
    layer = Layer(2, 3, num_layers=2).to(np.float64)
    x = np.ones((5, 3, 2))
    x[3, 2, 1] = np.nan
    with tr.backend(backend), tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=rf"{Layer.__name__[:3]}.*Sequence \(layer 0, forward direction\) "
                                                  r"input x already contains NaN at time step 3, batch row 2"):
            layer(tr.Tensor(x))


def test_reverse_direction_reports_the_original_step():
    """The reverse direction reads x backwards within each length: its step 0 of row 1 (length 2)
    is the sequence's step 1."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2))
    x[0, 1, 0] = np.inf
    weights = [tr.Tensor(rng.standard_normal(s)) for s in ((9, 2), (9, 3), (9,), (9,))]
    with tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=r"\(layer 1, reverse direction\) input x already contains "
                                                  r"Inf at time step 1, batch row 1"):
            fused.gru_sequence(tr.Tensor(x), tr.Tensor(np.zeros((2, 3))), *weights, lengths=np.array([3, 2]),
                               where=(1, True))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_inf_produced_in_the_forward_output(backend):
    """relu RNN with huge recurrent weights: h grows by ~1e300 a step until it overflows."""
    T, B, I, H = 6, 2, 1, 2
    layer = nn.RNN(I, H, nonlinearity="relu").to(np.float64)
    layer.weight_ih_l0.data[:] = 1
    layer.weight_hh_l0.data[:] = 1e300
    layer.bias_ih_l0.data[:] = layer.bias_hh_l0.data[:] = 0
    x = np.ones((T, B, I))
    x[:, 1] = 2
    h, first = np.zeros((B, H)), None                   # where does a plain NumPy loop overflow first?
    with np.errstate(over="ignore"):
        for t in range(T):
            h = np.maximum(x[t] @ np.ones((H, I)).T + h @ np.full((H, H), 1e300).T, 0)
            if first is None and not np.isfinite(h).all():
                first = (t, int(np.nonzero(~np.isfinite(h).all(axis=1))[0][0]))
    assert first is not None
    with tr.backend(backend), tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=rf"RNNSequence \(layer 0, forward direction\) produced Inf "
                                                  rf"in its output at time step {first[0]}, batch row {first[1]}"):
            layer(tr.Tensor(x))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_non_finite_gradient_in_backward(backend):
    """A loss weight of 1e300 on out[2, 1] times W_ih = 1e10 overflows dL/dx at step 2, row 1
    only (W_hh is tiny, so earlier steps get a finite gradient)."""
    T, B, I, H = 4, 2, 2, 3
    layer = nn.RNN(I, H).to(np.float64)
    layer.weight_ih_l0.data[:] = 1e10
    layer.weight_hh_l0.data[:] = 1e-20
    layer.bias_ih_l0.data[:] = layer.bias_hh_l0.data[:] = 0
    x = 1e-12 * np.random.default_rng(1).standard_normal((T, B, I))     # pre-activations ~0.01
    w = np.ones((T, B, H))
    w[2, 1] = 1e300

    def run():
        x_t = tr.Tensor(x, requires_grad=True)
        out, _ = layer(x_t)
        (out * tr.Tensor(w)).sum().backward()
        return x_t.grad

    with np.errstate(all="ignore"), tr.backend(backend):
        grad = run()
    bad = ~np.isfinite(grad).all(axis=2)
    assert bad[2, 1] and bad.sum() == 1
    with tr.backend(backend), tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=r"RNNSequence \(layer 0, forward direction\) produced "
                                                  r"(NaN|Inf) in the gradient of its input x in backward at "
                                                  r"time step 2, batch row 1"):
            run()


def test_cell_step_names_the_batch_row():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2))
    x[2, 0] = np.nan
    with tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=r"LSTMStep input x already contains NaN, batch row 2"):
            nn.LSTMCell(2, 4, fused=True).to(np.float64)(tr.Tensor(x))
