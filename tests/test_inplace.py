"""In-place safety: backward refuses values that changed after forward.

An optimizer step between building a graph and backpropagating through it
would otherwise give a silently wrong gradient (the saved arrays are the
parameters' own memory). The expected gradients here are written out by hand
or recomputed on a freshly built graph, never read from the code under test.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn


def _weight_and_input(seed=0):
    rng = np.random.default_rng(seed)
    W = tr.Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    x = tr.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    return W, x


def test_step_between_two_losses_is_refused_naming_the_op():
    W, x = _weight_and_input()
    opt = tr.optim.SGD([W], lr=0.1)
    loss1 = (x @ W).sum()
    loss2 = ((x @ W) ** 2).sum()
    loss1.backward()
    opt.step()
    with pytest.raises(RuntimeError) as err:
        loss2.backward()
    message = str(err.value)
    assert "MatMul" in message and "input 1 of shape (3, 3)" in message
    assert "now at version 1" in message and "opt.step()" in message


def test_backward_before_step_gives_the_gradient_of_the_old_weights():
    W, x = _weight_and_input()
    W_old = W.data.copy()
    opt = tr.optim.SGD([W], lr=0.1)
    loss = ((x @ W) ** 2).sum()
    loss.backward()
    opt.step()
    # d/dx sum((x W)^2) = 2 (x W) W^T, with the W of the forward pass
    expected = 2 * (x.data @ W_old) @ W_old.T
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_error_names_the_time_step_of_an_unrolled_rnn():
    tr.manual_seed(0)
    cell = nn.RNNCell(2, 3)
    opt = tr.optim.Adam(cell.parameters(), lr=0.01)
    xs = tr.randn(4, 1, 2)
    h = tr.zeros(1, 3)
    losses = []
    for t in range(4):
        with tr.time_step(t):
            h = cell(xs[t], h)
            losses.append((h * h).sum())
    losses[0].backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=r"time step 3\).*changed in place"):
        losses[3].backward()


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_layer_after_step_is_refused(fused):
    tr.manual_seed(0)
    layer = nn.LSTM(2, 3, fused=fused)
    opt = tr.optim.SGD(layer.parameters(), lr=0.1)
    x = tr.randn(5, 1, 2)
    out, _ = layer(x)
    loss_a, loss_b = out.sum(), (out * out).sum()
    loss_a.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="changed in place after the forward pass"):
        loss_b.backward()


def test_load_state_dict_bumps_the_version():
    tr.manual_seed(0)
    model = nn.Linear(3, 2)
    x = tr.randn(4, 3)
    loss = model(x).sum()
    model.load_state_dict({k: np.zeros_like(v) for k, v in model.state_dict().items()})
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_a_normal_training_loop_is_unaffected():
    """zero_grad, forward, backward, step: every step builds a new graph, so no error,
    and the loss of a linear least-squares problem goes down."""
    tr.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = tr.optim.SGD(model.parameters(), lr=0.1)
    x = tr.randn(16, 3)
    y = tr.Tensor(x.data @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32))
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert all(p._version == 20 for p in model.parameters())


def test_writing_into_data_is_caught_by_detect_anomaly():
    W, x = _weight_and_input()
    with tr.detect_anomaly():
        loss = ((x @ W) ** 2).sum()
        W.data[0, 0] += 1.0          # a direct NumPy write: no version bump
        with pytest.raises(RuntimeError, match=r"detect_anomaly: backward through MatMul.*saved array"):
            loss.backward()


def test_writing_into_data_unseen_outside_anomaly_mode_documented_limit():
    """Without detect_anomaly a direct write is not seen (documented): the gradient
    uses the new values. This pins the documented behaviour down."""
    W, x = _weight_and_input()
    loss = (x @ W).sum()
    W.data[:] = 0.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))


def test_detect_anomaly_passes_when_nothing_changed():
    W, x = _weight_and_input()
    with tr.detect_anomaly():
        loss = ((x @ W).tanh() ** 2).sum()
        loss.backward()
    assert x.grad.shape == (2, 3) and np.all(np.isfinite(x.grad))
