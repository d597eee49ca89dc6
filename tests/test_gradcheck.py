"""gradcheck itself, and BPTT through RNNs unrolled by hand from primitive ops.

First the checker is checked: it must pass a correct derivative, catch a
wrong one and say where. Then it is pointed at the whole point of the
library: the gradient of a loss summed over time steps, with respect to
weights shared by every step, through an unrolled tanh RNN.
"""
import numpy as np
import pytest
from hypothesis import given

import tinygrad_rnn as tr
from strategies import rnn_configs
from tinygrad_rnn.cli import main as cli_main
from tinygrad_rnn.bptt import unrolled_rnn_loss


class WrongSquare(tr.Function):
    """c = a^2 with a deliberately wrong derivative (a instead of 2a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * a


# --------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------

def test_gradcheck_passes_a_correct_gradient_and_reports_every_input():
    rng = np.random.default_rng(0)
    report = tr.gradcheck(lambda a, b: (a @ b).tanh(), [rng.standard_normal((2, 3)), rng.standard_normal((3, 2))],
                          names=["A", "B"])
    assert report.passed
    assert [check.name for check in report.inputs] == ["A", "B"]
    assert all(check.max_abs_error < 1e-8 for check in report.inputs)
    text = str(report)
    assert text.startswith("gradcheck passed (float64, central differences")
    assert "A " in text and "(3, 2)" in text


def test_gradcheck_catches_a_wrong_gradient_and_points_at_it():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(tr.GradcheckError) as failure:
        tr.gradcheck(lambda a: WrongSquare.apply(a), [x], names=["x"])
    check = failure.value.report.inputs[0]
    assert not check.passed and check.worst_index == (2,)
    np.testing.assert_allclose(check.numeric, 2 * check.analytic, rtol=1e-6)  # 2a versus a
    assert "FAILED" in str(failure.value) and "NO" in str(failure.value)


def test_gradcheck_can_return_a_failing_report_instead_of_raising():
    report = tr.gradcheck(lambda a: WrongSquare.apply(a), [np.array([1.0])], raise_on_failure=False)
    assert not report.passed


def test_gradcheck_works_in_float64_whatever_the_input_dtype():
    seen = []
    tr.gradcheck(lambda a: seen.append(a.dtype) or a.exp(), [np.array([0.1, 0.2], dtype=np.float32)])
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_passes_integer_inputs_through_unchecked():
    table, rows = np.random.default_rng(0).standard_normal((4, 3)), np.array([2, 0, 2])
    report = tr.gradcheck(lambda w, i: w[i], [table, rows], names=["table", "rows"])
    assert [check.name for check in report.inputs] == ["table"]


def test_gradcheck_needs_a_tensor_result():
    with pytest.raises(TypeError, match="fn must return a Tensor, got float"):
        tr.gradcheck(lambda a: 1.0, [np.ones(2)])


# --------------------------------------------------------------------------
# BPTT through a hand-unrolled tanh RNN
# --------------------------------------------------------------------------

def rnn_problem(batch, steps, inputs, hidden, outputs=2, seed=0):
    """Weights [W_xh, W_hh, W_hy, h0] and data (xs, targets) for `unrolled_rnn_loss`."""
    rng = np.random.default_rng(seed)
    weights = [0.5 * rng.standard_normal(shape)
               for shape in [(inputs, hidden), (hidden, hidden), (hidden, outputs), (batch, hidden)]]
    xs = [tr.Tensor(rng.standard_normal((batch, inputs))) for _ in range(steps)]
    targets = [tr.Tensor(rng.standard_normal((batch, outputs))) for _ in range(steps)]
    return weights, xs, targets


def test_three_step_rnn_bptt_matches_finite_differences():
    weights, xs, targets = rnn_problem(batch=2, steps=3, inputs=3, hidden=4)
    report = tr.gradcheck(lambda *w: unrolled_rnn_loss(*w, xs, targets), weights,
                          names=["W_xh", "W_hh", "W_hy", "h0"])
    assert report.passed and len(report.inputs) == 4


@given(config=rnn_configs())
def test_rnn_bptt_for_any_small_config(config):
    batch, steps, inputs, hidden = config
    weights, xs, targets = rnn_problem(batch, steps, inputs, hidden)
    assert tr.gradcheck(lambda *w: unrolled_rnn_loss(*w, xs, targets), weights).passed


def many_to_one_loss(W_xh, W_hh, b, W_hy, xs, labels):
    """Read the whole sequence, classify at the end: cross-entropy of softmax(h_T W_hy)."""
    h = tr.Tensor(np.zeros((xs.shape[1], W_hh.shape[0])))
    for t in range(xs.shape[0]):
        with tr.time_step(t):
            h = (xs[t] @ W_xh + h @ W_hh + b).tanh()
    log_probs = (h @ W_hy).log_softmax(axis=-1)
    return -log_probs[np.arange(len(labels)), labels].mean()


def test_many_to_one_classifier_bptt_matches_finite_differences():
    rng = np.random.default_rng(1)
    xs = tr.Tensor(rng.standard_normal((4, 3, 2)))  # (T, B, I)
    labels = np.array([0, 2, 2])
    weights = [0.5 * rng.standard_normal(shape) for shape in [(2, 5), (5, 5), (5,), (5, 3)]]
    assert tr.gradcheck(lambda *w: many_to_one_loss(*w, xs, labels), weights).passed


def test_rnn_bptt_matches_pytorch():
    torch = pytest.importorskip("torch")
    weights, xs, targets = rnn_problem(batch=2, steps=4, inputs=3, hidden=5)
    ours = [tr.Tensor(w, requires_grad=True) for w in weights]
    unrolled_rnn_loss(*ours, xs, targets).backward()

    W_xh, W_hh, W_hy, h = theirs = [torch.tensor(w, requires_grad=True) for w in weights]
    loss = 0.0
    for x_t, target_t in zip(xs, targets):
        h = torch.tanh(torch.tensor(x_t.data) @ W_xh + h @ W_hh)
        loss = loss + ((h @ W_hy - torch.tensor(target_t.data)) ** 2).mean()
    loss.backward()
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cli_gradcheck_prints_a_passing_table(capsys):
    assert cli_main(["gradcheck", "--steps", "3", "--hidden", "3"]) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "FAILED" not in out
