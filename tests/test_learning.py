"""Learning tests: an LSTM solves the adding problem; the synthetic tasks are what they claim.

The adding problem's trivial answer (always 1.0) scores MSE ~ 0.167, so an
MSE below 0.05 means the network has learned to find and add the two marked
values across the whole sequence. The default test (T = 50) stops as soon as
it gets there; the slow one (T = 100, MSE < 0.01) is run with `pytest -m slow`.
"""
import time

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import adding_problem, copy_task


class AddingModel(nn.Module):
    """LSTM over the sequence, a linear read-out of its last output: x (T, B, 2) -> (B, 1)."""

    def __init__(self, hidden_size):
        self.lstm = nn.LSTM(2, hidden_size, fused=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[-1])


def train_adding(T, target_mse, max_steps, hidden_size=16, batch_size=64, lr=0.01, check_every=50):
    """Adam + clip_grad_norm_ until the validation MSE is below target_mse; returns (mse, steps, seconds)."""
    tr.manual_seed(0)
    model = AddingModel(hidden_size)
    params = model.parameters()
    opt = optim.Adam(params, lr=lr)
    x_val, y_val = (tr.tensor(a) for a in adding_problem(500, T, seed=10_000))
    start = time.perf_counter()
    mse = float("inf")
    for step in range(1, max_steps + 1):
        x, y = adding_problem(batch_size, T, seed=step)
        loss = nn.mse_loss(model(tr.tensor(x)), tr.tensor(y))
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % check_every == 0:
            with tr.no_grad():
                mse = nn.mse_loss(model(x_val), y_val).item()
            if mse < target_mse:
                break
    return mse, step, time.perf_counter() - start


def test_lstm_learns_the_adding_problem_T50():
    mse, steps, seconds = train_adding(T=50, target_mse=0.05, max_steps=2000)
    print(f"adding problem T=50: validation MSE {mse:.4f} after {steps} steps, {seconds:.1f} s")
    assert mse < 0.05, f"MSE {mse:.4f} after {steps} steps (baseline 0.167)"


@pytest.mark.slow
def test_lstm_learns_the_adding_problem_T100_to_high_precision():
    mse, steps, seconds = train_adding(T=100, target_mse=0.01, max_steps=6000)
    print(f"adding problem T=100: validation MSE {mse:.4f} after {steps} steps, {seconds:.1f} s")
    assert mse < 0.01, f"MSE {mse:.4f} after {steps} steps (baseline 0.167)"


# --------------------------------------------------------------------------
# The generators themselves
# --------------------------------------------------------------------------

def test_adding_problem_shapes_markers_targets_and_baseline():
    x, y = adding_problem(20_000, 30, seed=1)
    assert x.shape == (30, 20_000, 2) and x.dtype == np.float32
    assert y.shape == (20_000, 1) and y.dtype == np.float32
    markers = x[:, :, 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers[:15].sum(axis=0) == 1) and np.all(markers[15:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=0), rtol=1e-6)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.005)   # the "always 1.0" baseline


def test_generators_are_seeded():
    for make in (lambda s: adding_problem(4, 10, seed=s), lambda s: copy_task(4, 5, seed=s)):
        a, b, c = make(3), make(3), make(4)
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
        assert not np.array_equal(a[0], c[0])


def test_copy_task_layout():
    T, delay, n_symbols = 5, 3, 6
    x, y = copy_task(7, T, n_symbols=n_symbols, delay=delay, seed=0)
    blank, go = n_symbols, n_symbols + 1
    assert x.shape == y.shape == (T + delay + T, 7) and x.dtype == y.dtype == np.int64
    assert np.all(x[:T] < n_symbols)
    assert np.all(x[T:T + delay - 1] == blank) and np.all(x[T + delay - 1] == go) and np.all(x[T + delay:] == blank)
    assert np.all(y[:T + delay] == blank)
    np.testing.assert_array_equal(y[T + delay:], x[:T])


@pytest.mark.parametrize("call, message", [
    (lambda: adding_problem(0, 10), "n must be a positive integer"),
    (lambda: adding_problem(4, 1), "T must be at least 2"),
    (lambda: copy_task(4, 5, delay=0), "delay must be a positive integer"),
])
def test_generator_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()
