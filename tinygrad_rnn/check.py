"""Grading helper: test a student's NumPy RNN/LSTM/GRU code against the engine.

Each ``check_*`` function calls the student's functions on random shapes and
random values (float64, seeded), computes the same quantities with the
engine (the composite cells of ``tinygrad_rnn.nn.cells`` and backward()),
and prints a report that says *what* is wrong — which output, which gate,
which parameter, which time step — and by how much, not only pass/fail.
It returns a `CheckReport` whose ``.passed`` a test or autograder can assert.

    import tinygrad_rnn as tr
    report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward)
    assert report.passed

The functions a student writes (shapes: N batch, D input size, H hidden
size, T time steps; "cache" is anything the forward pass wants to hand to
the backward pass; a forward may also return its outputs without a cache
when no backward is checked):

Vanilla RNN step          h_next = tanh(x Wx + h_prev Wh + b)
    rnn_step_forward(x, h_prev, Wx, Wh, b) -> (h_next, cache)
        x (N, D), h_prev (N, H), Wx (D, H), Wh (H, H), b (H,)  ->  h_next (N, H)
    rnn_step_backward(dh_next, cache) -> (dx, dh_prev, dWx, dWh, db)

LSTM step                 a = x Wx + h_prev Wh + b, split into 4 blocks of H columns
    lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b) -> (h_next, c_next, cache)
        Wx (D, 4H), Wh (H, 4H), b (4H,);  blocks in `gate_order` ("ifgo" as in
        PyTorch and this engine; "ifog" as in CS231n)
        i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
        c_next = f * c_prev + i * g;   h_next = o * tanh(c_next)
    lstm_step_backward(dh_next, dc_next, cache) -> (dx, dh_prev, dc_prev, dWx, dWh, db)

GRU step (PyTorch's equations, gates r, z, n; the reset gate multiplies
the hidden part *after* its bias, so there are two biases)
    gru_step_forward(x, h_prev, Wx, Wh, bx, bh) -> h_next  (or (h_next, cache))
        Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,)
        r = sigmoid(x Wx_r + bx_r + h_prev Wh_r + bh_r)
        z = sigmoid(x Wx_z + bx_z + h_prev Wh_z + bh_z)
        n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))
        h_next = (1 - z) * n + z * h_prev

Whole-sequence vanilla RNN (BPTT)
    rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)
        x (N, T, D), h0 (N, H)  ->  h (N, T, H), all hidden states
    rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)
        dh (N, T, H) is the upstream gradient dL/dh_t of the loss at each step
        *alone*; the backward pass must add the gradient arriving from step t+1.

Comparisons use |got - expected| <= atol + rtol * |expected| with float64
tolerances (atol=1e-6, rtol=1e-5 by default).
"""
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from . import functions as F
from .kernels.reference import sigmoid
from .nn.cells import gru_step, lstm_step, rnn_step
from .tensor import Tensor

GATE_NAMES = {"i": "i (input gate)", "f": "f (forget gate)", "g": "g (candidate)",
              "o": "o (output gate)", "r": "r (reset gate)", "z": "z (update gate)", "n": "n (candidate)"}


@dataclass
class CheckReport:
    """What one check found: ``passed`` and the printed lines."""

    title: str
    lines: list = field(default_factory=list)
    failures: list = field(default_factory=list)   # (trial, quantity, part) of each wrong piece

    @property
    def passed(self):
        return not self.failures

    def __str__(self):
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failures)} wrong pieces)"
        return "\n".join([f"{self.title}: {verdict}"] + self.lines)


# --------------------------------------------------------------------------
# Comparing arrays piece by piece
# --------------------------------------------------------------------------


def _compare(report, trial, name, got, expected, parts=None, axis=-1, atol=1e-6, rtol=1e-5):
    """Compare `got` with `expected`; with `parts` (labels), compare each slice along `axis`.

    Adds one line per wrong piece (where and by how much) and one summary line
    per quantity, and records failures in the report.
    """
    got = np.asarray(got, dtype=float) if got is not None else None
    if got is None or got.shape != expected.shape:
        shape = "nothing" if got is None else f"shape {got.shape}"
        report.lines.append(f"  {name:<26} WRONG SHAPE: got {shape}, expected {expected.shape}")
        report.failures.append((trial, name, "shape"))
        return
    if parts is None:
        pieces = [(None, got, expected)]
    else:
        pieces = list(zip(parts, np.split(got, len(parts), axis=axis), np.split(expected, len(parts), axis=axis)))
    wrong = []
    for label, g, e in pieces:
        error = np.abs(g - e)
        excess = error - (atol + rtol * np.abs(e))
        if g.size == 0 or np.all(excess <= 0):
            continue
        k = np.unravel_index(np.argmax(excess), excess.shape)
        where = name if label is None else f"{name} {label}"
        report.lines.append(f"  {where:<26} WRONG: max abs error {error.max():.3g}; at index {tuple(map(int, k))} "
                            f"expected {e[k]:.6g}, got {g[k]:.6g}")
        report.failures.append((trial, name, label))
        wrong.append(label)
    if not wrong:
        report.lines.append(f"  {name:<26} ok (max abs error {np.abs(got - expected).max(initial=0):.1e})")
    elif parts is not None and len(wrong) < len(parts):
        right = [p for p in parts if p not in wrong]
        report.lines.append(f"  {name:<26} correct for: {', '.join(right)}")


def _unpack(result, count, what):
    """Split a student function's return value into `count` outputs (+ cache, if any)."""
    if count == 1 and not isinstance(result, tuple):
        return (result,), None
    if not isinstance(result, tuple) or len(result) not in (count, count + 1):
        raise TypeError(f"{what} should return {count} array(s), optionally followed by a cache; "
                        f"got {type(result).__name__}"
                        + (f" of length {len(result)}" if isinstance(result, tuple) else ""))
    return result[:count], (result[count] if len(result) > count else None)


def _leaves(arrays):
    return [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]


def _grads(leaves):
    return [np.zeros_like(t.data) if t.grad is None else t.grad for t in leaves]


def _trial_shapes(rng, with_time=False):
    N, D, H = (int(n) for n in rng.integers(1, 5, size=3))
    T = int(rng.integers(1, 6))
    return (N, T, D, H) if with_time else (N, D, H)


def _random(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _finish(report, verbose):
    if verbose:
        print(report)
    return report


# --------------------------------------------------------------------------
# Vanilla RNN step
# --------------------------------------------------------------------------


def _rnn_reference(x, h_prev, Wx, Wh, b, dh_next):
    """Engine values: h_next and the gradients of sum(h_next * dh_next)."""
    leaves = _leaves([x, h_prev, Wx, Wh, b])
    xt, ht, Wxt, Wht, bt = leaves
    h_next = rnn_step(xt, ht, Wxt.T, Wht.T, bt, None)
    (h_next * Tensor(dh_next)).sum().backward()
    return h_next.data, _grads(leaves)


def check_rnn_step(forward, backward=None, trials=3, seed=0, atol=1e-6, rtol=1e-5, verbose=True):
    """Check rnn_step_forward (and rnn_step_backward if given) on `trials` random shapes.

    See the module docstring for the signatures. Returns a `CheckReport`.
    """
    rng = np.random.default_rng(seed)
    report = CheckReport("check_rnn_step")
    for trial in range(trials):
        N, D, H = _trial_shapes(rng)
        x, h_prev = _random(rng, N, D), _random(rng, N, H)
        Wx, Wh, b = _random(rng, D, H, scale=0.5), _random(rng, H, H, scale=0.5), _random(rng, H, scale=0.5)
        dh_next = _random(rng, N, H)
        h_ref, grads_ref = _rnn_reference(x, h_prev, Wx, Wh, b, dh_next)
        report.lines.append(f"trial {trial}: N={N} D={D} H={H}")
        (h_next,), cache = _unpack(forward(x.copy(), h_prev.copy(), Wx.copy(), Wh.copy(), b.copy()), 1,
                                   "rnn_step_forward")
        _compare(report, trial, "h_next", h_next, h_ref, atol=atol, rtol=rtol)
        if backward is not None:
            got = _unpack(backward(dh_next.copy(), cache), 5, "rnn_step_backward")[0]
            for name, g, e in zip(("dx", "dh_prev", "dWx", "dWh", "db"), got, grads_ref):
                _compare(report, trial, name, g, e, atol=atol, rtol=rtol)
    return _finish(report, verbose)


# --------------------------------------------------------------------------
# LSTM step
# --------------------------------------------------------------------------

ENGINE_LSTM_ORDER = "ifgo"


def _check_gate_order(gate_order, gates):
    if sorted(gate_order) != sorted(gates):
        raise ValueError(f"gate_order must be a permutation of {gates!r}, got {gate_order!r}")


def _to_engine_order(W, gate_order, axis):
    """Reorder the gate blocks of W (a Tensor) from `gate_order` to i, f, g, o."""
    blocks = dict(zip(gate_order, F.split(W, 4, axis=axis)))
    return F.concat([blocks[k] for k in ENGINE_LSTM_ORDER], axis=axis)


def _lstm_reference(arrays, gate_order, dh_next, dc_next):
    """Engine values (h_next, c_next) and gradients of sum(h_next dh_next + c_next dc_next)."""
    leaves = _leaves(arrays)
    xt, ht, ct, Wxt, Wht, bt = leaves
    W_ih = _to_engine_order(Wxt, gate_order, axis=1).T
    W_hh = _to_engine_order(Wht, gate_order, axis=1).T
    h_next, c_next = lstm_step(xt, ht, ct, W_ih, W_hh, _to_engine_order(bt, gate_order, axis=0), None)
    ((h_next * Tensor(dh_next)).sum() + (c_next * Tensor(dc_next)).sum()).backward()
    return (h_next.data, c_next.data), _grads(leaves)


def _gate_order_hint(report, outputs, arrays, gate_order):
    """If the student's outputs match another gate order, say which one."""
    for order in ("".join(p) for p in permutations(gate_order)):
        if order == gate_order:
            continue
        (h_ref, c_ref), _ = _lstm_reference(arrays, order, *[np.zeros_like(o) for o in outputs])
        if all(np.allclose(g, e) for g, e in zip(outputs, (h_ref, c_ref))):
            report.lines.append(f"  hint: your outputs match the engine when the blocks of Wx, Wh, b are read "
                                f"in the order {','.join(order)}; this check expects gate_order="
                                f"{gate_order!r} (pass gate_order={order!r} if that is your layout)")
            return


def check_lstm_step(forward, backward=None, gate_order="ifgo", trials=3, seed=0, atol=1e-6, rtol=1e-5,
                    verbose=True):
    """Check lstm_step_forward (and lstm_step_backward if given) on random shapes.

    Weight and bias gradients are compared gate by gate, so a wrong forget-gate
    derivative is reported as "dWx gate f (forget gate) WRONG" while the
    other gates are listed as correct. Returns a `CheckReport`.
    """
    _check_gate_order(gate_order, ENGINE_LSTM_ORDER)
    gate_labels = [f"gate {GATE_NAMES[k]}" for k in gate_order]
    rng = np.random.default_rng(seed)
    report = CheckReport(f"check_lstm_step (gate order {','.join(gate_order)})")
    for trial in range(trials):
        N, D, H = _trial_shapes(rng)
        arrays = [_random(rng, N, D), _random(rng, N, H), _random(rng, N, H),
                  _random(rng, D, 4 * H, scale=0.5), _random(rng, H, 4 * H, scale=0.5),
                  _random(rng, 4 * H, scale=0.5)]
        dh_next, dc_next = _random(rng, N, H), _random(rng, N, H)
        (h_ref, c_ref), grads_ref = _lstm_reference(arrays, gate_order, dh_next, dc_next)
        report.lines.append(f"trial {trial}: N={N} D={D} H={H}")
        failures_before = len(report.failures)
        outputs, cache = _unpack(forward(*[a.copy() for a in arrays]), 2, "lstm_step_forward")
        _compare(report, trial, "h_next", outputs[0], h_ref, atol=atol, rtol=rtol)
        _compare(report, trial, "c_next", outputs[1], c_ref, atol=atol, rtol=rtol)
        if len(report.failures) > failures_before and all(np.shape(o) == (N, H) for o in outputs):
            _gate_order_hint(report, outputs, arrays, gate_order)
        if backward is not None:
            got = _unpack(backward(dh_next.copy(), dc_next.copy(), cache), 6, "lstm_step_backward")[0]
            names = ("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db")
            for name, g, e in zip(names, got, grads_ref):
                parts = gate_labels if name in ("dWx", "dWh", "db") else None
                _compare(report, trial, name, g, e, parts=parts, atol=atol, rtol=rtol)
    _summarize_gates(report, gate_labels)
    return _finish(report, verbose)


def _summarize_gates(report, gate_labels):
    wrong = [label for label in gate_labels if any(part == label for _, _, part in report.failures)]
    if wrong:
        report.lines.append("gradient wrong through: " + ", ".join(wrong)
                            + " — check the derivative of that gate in your backward pass")


# --------------------------------------------------------------------------
# GRU step
# --------------------------------------------------------------------------


def _gru_reference(x, h_prev, Wx, Wh, bx, bh):
    leaves = _leaves([x, h_prev, Wx, Wh, bx, bh])
    xt, ht, Wxt, Wht, bxt, bht = leaves
    return gru_step(xt, ht, Wxt.T, Wht.T, bxt, bht).data


def _gru_variants(x, h_prev, Wx, Wh, bx, bh):
    """Outputs of common GRU variants, to recognise which one a student wrote."""
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ Wh + bh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    Wh_n, bh_n = np.split(Wh, 3, axis=1)[2], np.split(bh, 3)[2]
    n_reset_first = np.tanh(xn + (r * h_prev) @ Wh_n + bh_n)
    return {
        "the update gate swapped: h_next = z * n + (1 - z) * h_prev; this check uses "
        "h_next = (1 - z) * n + z * h_prev (PyTorch)": z * n + (1 - z) * h_prev,
        "the reset gate applied before the matrix product, (r * h_prev) Wh_n (Cho et al. 2014); "
        "this check uses r * (h_prev Wh_n + bh_n) (PyTorch, cuDNN)": (1 - z) * n_reset_first + z * h_prev,
    }


def check_gru_step(forward, trials=3, seed=0, atol=1e-6, rtol=1e-5, verbose=True):
    """Check gru_step_forward on random shapes; names a known variant if the student wrote one."""
    rng = np.random.default_rng(seed)
    report = CheckReport("check_gru_step")
    for trial in range(trials):
        N, D, H = _trial_shapes(rng)
        arrays = [_random(rng, N, D), _random(rng, N, H), _random(rng, D, 3 * H, scale=0.5),
                  _random(rng, H, 3 * H, scale=0.5), _random(rng, 3 * H, scale=0.5), _random(rng, 3 * H, scale=0.5)]
        h_ref = _gru_reference(*arrays)
        report.lines.append(f"trial {trial}: N={N} D={D} H={H}")
        (h_next,), _ = _unpack(forward(*[a.copy() for a in arrays]), 1, "gru_step_forward")
        failures_before = len(report.failures)
        _compare(report, trial, "h_next", h_next, h_ref, atol=atol, rtol=rtol)
        if len(report.failures) > failures_before and np.shape(h_next) == h_ref.shape:
            for description, variant in _gru_variants(*arrays).items():
                if np.allclose(h_next, variant):
                    report.lines.append(f"  hint: your output matches {description}")
    return _finish(report, verbose)


# --------------------------------------------------------------------------
# Whole-sequence vanilla RNN: BPTT
# --------------------------------------------------------------------------


def _rnn_sequence_reference(x, h0, Wx, Wh, b, dh):
    """Engine: all hidden states (N, T, H) and the gradients of sum_t sum(h_t * dh_t)."""
    leaves = _leaves([x, h0, Wx, Wh, b])
    xt, h, Wxt, Wht, bt = leaves
    hs = []
    for t in range(x.shape[1]):
        h = rnn_step(xt[:, t], h, Wxt.T, Wht.T, bt, None)
        hs.append(h)
    h_all = F.stack(hs, axis=1)
    (h_all * Tensor(dh)).sum().backward()
    return h_all.data, _grads(leaves)


def check_rnn_sequence(forward, backward=None, trials=3, seed=0, atol=1e-6, rtol=1e-5, verbose=True):
    """Check rnn_forward (and rnn_backward, i.e. BPTT, if given) on random shapes.

    Hidden states h and input gradients dx are compared time step by time
    step, so the report names the steps that are wrong (a backward pass that
    forgets the gradient arriving from step t+1 is right only at the last step).
    """
    rng = np.random.default_rng(seed)
    report = CheckReport("check_rnn_sequence")
    for trial in range(trials):
        N, T, D, H = _trial_shapes(rng, with_time=True)
        T = max(T, 3)
        arrays = [_random(rng, N, T, D), _random(rng, N, H), _random(rng, D, H, scale=0.5),
                  _random(rng, H, H, scale=0.5), _random(rng, H, scale=0.5)]
        dh = _random(rng, N, T, H)
        h_ref, grads_ref = _rnn_sequence_reference(*arrays, dh)
        steps = [f"t={t}" for t in range(T)]
        report.lines.append(f"trial {trial}: N={N} T={T} D={D} H={H}")
        (h,), cache = _unpack(forward(*[a.copy() for a in arrays]), 1, "rnn_forward")
        _compare(report, trial, "h", h, h_ref, parts=steps, axis=1, atol=atol, rtol=rtol)
        if backward is not None:
            got = _unpack(backward(dh.copy(), cache), 5, "rnn_backward")[0]
            for name, g, e in zip(("dx", "dh0", "dWx", "dWh", "db"), got, grads_ref):
                parts = steps if name == "dx" else None
                _compare(report, trial, name, g, e, parts=parts, axis=1, atol=atol, rtol=rtol)
    return _finish(report, verbose)


__all__ = ["CheckReport", "check_gru_step", "check_lstm_step", "check_rnn_sequence", "check_rnn_step"]
