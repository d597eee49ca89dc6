"""Grading helper: test a student's NumPy RNN/LSTM/GRU code against the engine and name the cause.

Each ``check_*`` function calls the student's functions on random shapes and
random values (float64, seeded; N, D, H distinct and at least 2, so a
transposed matrix never fits by accident), computes the same quantities
with the engine (the composite cells of ``tinygrad_rnn.nn.cells`` and
backward()), and returns a `CheckReport`. The report's ``finding`` is *the*
cause, decided in this order:

1. layout: the gate blocks in another order, a transposed weight, PyTorch
   shapes instead of CS231n shapes (the finding says which layout it saw and
   the argument to pass);
2. forward: which output, which gate, which time step;
3. backward: which gradient, which gate's derivative, which time step, and
   whether the error is in the local derivative of a step or in the gradient
   carried from step t+1.

The lines after it give the numbers (what was wrong where, and by how much).
To name a cause a check reruns the student's functions on changed problems:
a gate saturated (its bias moved by +-40, so its sigmoid is 0 or 1 to
machine precision and the other gates can be told apart), c_prev = 0, a
loss at the last step only, a one-step sequence.

    import tinygrad_rnn as tr
    report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward, gate_order="ifog")
    assert report.passed, report

The functions a student writes, in CS231n's layout (shapes: N batch, D input
size, H hidden size, T time steps; "cache" is anything the forward pass
hands to the backward pass; a forward checked without its backward may
return its outputs alone):

Vanilla RNN step          h_next = tanh(x Wx + h_prev Wh + b)
    rnn_step_forward(x, h_prev, Wx, Wh, b) -> (h_next, cache)
        x (N, D), h_prev (N, H), Wx (D, H), Wh (H, H), b (H,)  ->  h_next (N, H)
    rnn_step_backward(dh_next, cache) -> (dx, dh_prev, dWx, dWh, db)

Whole-sequence vanilla RNN (BPTT)
    rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)       x (N, T, D) -> h (N, T, H)
    rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)
        dh (N, T, H) is dL/dh_t of the loss at step t *alone*; the backward
        pass must add the gradient arriving from step t+1.

LSTM step                 a = x Wx + h_prev Wh + b, split into 4 blocks of H columns
    lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b) -> (h_next, c_next, cache)
        Wx (D, 4H), Wh (H, 4H), b (4H,);  blocks in `gate_order` ("ifgo" as in
        PyTorch and this engine, the default; "ifog" as in CS231n)
        i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
        c_next = f * c_prev + i * g;   h_next = o * tanh(c_next)
    lstm_step_backward(dh_next, dc_next, cache) -> (dx, dh_prev, dc_prev, dWx, dWh, db)

Whole-sequence LSTM (c0 = 0, as in CS231n)
    lstm_forward(x, h0, Wx, Wh, b) -> (h, cache)
    lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)

GRU step (PyTorch's equations, gates r, z, n; the reset gate multiplies
the hidden part *after* its bias, so there are two biases)
    gru_step_forward(x, h_prev, Wx, Wh, bx, bh) -> (h_next, cache)
        Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,)
        r = sigmoid(x Wx_r + bx_r + h_prev Wh_r + bh_r)
        z = sigmoid(x Wx_z + bx_z + h_prev Wh_z + bh_z)
        n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))
        h_next = (1 - z) * n + z * h_prev
    gru_step_backward(dh_next, cache) -> (dx, dh_prev, dWx, dWh, dbx, dbh)

Truncated BPTT: ``check_truncated_bptt(rnn_forward, backward, k)`` checks a
backward pass that cuts the gradient every k steps (chunks 0..k-1, k..2k-1,
...) and reports which steps each loss reached.

``layout="pytorch"`` checks functions that take PyTorch-shaped weights
instead: Wx (G*H, D), Wh (G*H, H), used as x Wx^T.

Comparisons use |got - expected| <= atol + rtol * |expected| with float64
tolerances (atol=1e-6, rtol=1e-5 by default).
"""
import linecache
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path

import numpy as np

from . import functions as F
from .kernels.reference import sigmoid
from .nn.cells import gru_step, lstm_step, rnn_step
from .tensor import Tensor

GATE_NAMES = {"i": "i (input gate)", "f": "f (forget gate)", "g": "g (candidate)",
              "o": "o (output gate)", "r": "r (reset gate)", "z": "z (update gate)", "n": "n (candidate)"}
ENGINE_ORDER = {"rnn": "", "lstm": "ifgo", "gru": "rzn"}
LAYOUTS = ("cs231n", "pytorch")


@dataclass
class CheckReport:
    """What one check found: ``passed``, the cause (``finding``) and the detail lines."""

    title: str
    lines: list = field(default_factory=list)
    failures: list = field(default_factory=list)   # (trial, quantity, part) of each wrong piece
    findings: list = field(default_factory=list)   # the cause (a check stops at the first trial with one)

    @property
    def passed(self):
        return not self.failures and not self.findings

    @property
    def finding(self):
        """The first cause found (None when the check passed)."""
        if self.findings:
            return self.findings[0]
        return None if self.passed else "wrong values: " + ", ".join(sorted({str(n) for _, n, _ in self.failures}))

    def add_finding(self, text):
        if text not in self.findings:
            self.findings.append(text)

    def __str__(self):
        if self.passed:
            return f"{self.title}: PASSED\n" + "\n".join(self.lines)
        return "\n".join([f"{self.title}: FAILED", f"finding: {self.finding}", "details:"] + self.lines)


class StudentError(Exception):
    """The student's function raised, is missing, or returned the wrong kind of value."""


# --------------------------------------------------------------------------
# Comparing arrays piece by piece
# --------------------------------------------------------------------------


def _as_array(value):
    """`value` as a float array, or None when it is missing or not numbers."""
    try:
        return None if value is None else np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _close(got, expected, atol=1e-6, rtol=1e-5):
    got = _as_array(got)
    return got is not None and got.shape == expected.shape and bool(
        np.all(np.abs(got - expected) <= atol + rtol * np.abs(expected)))


def _compare(report, trial, name, got, expected, parts=None, axis=-1, atol=1e-6, rtol=1e-5):
    """Compare `got` with `expected`; with `parts` (labels), compare each slice along `axis`.

    Adds one line per wrong piece (where and by how much), records failures
    in the report, and returns the labels of the wrong pieces ("shape" for a
    wrong shape, None for a wrong whole array).
    """
    got = _as_array(got)
    if got is None or got.shape != expected.shape:
        shape = "nothing" if got is None else f"shape {got.shape}"
        report.lines.append(f"  {name:<26} WRONG SHAPE: got {shape}, expected {expected.shape}")
        report.failures.append((trial, name, "shape"))
        return ["shape"]
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
    return wrong


# --------------------------------------------------------------------------
# Calling the student's code
# --------------------------------------------------------------------------


def _call(fn, what, *args):
    """fn(*args) on copies of the arrays; any exception becomes a StudentError naming `what`."""
    if fn is None:
        raise StudentError(f"{what} is missing")
    try:
        return fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    except NotImplementedError as err:
        raise StudentError(f"{what} is not implemented yet ({err or 'raise NotImplementedError'})") from err
    except Exception as err:   # the student's bug, reported, never a crash of the check
        raise StudentError(f"{what} raised {type(err).__name__}: {err} ({_where(err)})") from err


_LIBRARIES = tuple(str(Path(module.__file__).parent) + os.sep for module in (np, sys.modules[__package__]))


def _where(err):
    """The student's line that raised, and the shapes of the arrays it names.

    The innermost frame outside NumPy and this package: a wrong shape passed
    to np.hstack is reported at the student's np.hstack line, not in NumPy.
    """
    frames = list(traceback.walk_tb(err.__traceback__))
    frame, lineno = ([f for f in frames if not f[0].f_code.co_filename.startswith(_LIBRARIES)] or frames)[-1]
    line = linecache.getline(frame.f_code.co_filename, lineno).strip()
    names = dict.fromkeys(re.findall(r"[A-Za-z_]\w*", line))
    shapes = [f"{n} has shape {frame.f_locals[n].shape}" for n in names
              if isinstance(frame.f_locals.get(n), np.ndarray)]
    return f"line {lineno}, in {frame.f_code.co_name}" + (f": {line}" if line else "") + \
        (f"; there {', '.join(shapes)}" if shapes else "")


def _unpack(result, count, what):
    """Split a student function's return value into `count` outputs and the cache (or None)."""
    if count == 1 and not isinstance(result, tuple):
        return (result,), None
    if not isinstance(result, tuple) or len(result) not in (count, count + 1):
        length = f" of length {len(result)}" if isinstance(result, tuple) else ""
        raise StudentError(f"{what} should return {count} array(s), optionally followed by a cache; "
                           f"got {type(result).__name__}{length}")
    return result[:count], (result[count] if len(result) > count else None)


def _to_student(arrays, layout):
    """The arrays as the student's functions take them: weights transposed for layout="pytorch"."""
    if layout == "cs231n":
        return dict(arrays)
    return {k: (v.T.copy() if k in ("Wx", "Wh") else v) for k, v in arrays.items()}


def _from_student(grads, layout):
    if layout == "cs231n":
        return grads
    return {k: (_as_array(v).T if k in ("dWx", "dWh") and _as_array(v) is not None else v) for k, v in grads.items()}


# --------------------------------------------------------------------------
# The engine's values
# --------------------------------------------------------------------------


def _to_engine_order(W, gate_order, cell, axis):
    """Reorder the gate blocks of W (a Tensor) from `gate_order` to the engine's order."""
    if cell == "rnn" or gate_order == ENGINE_ORDER[cell]:
        return W
    blocks = dict(zip(gate_order, F.split(W, len(gate_order), axis=axis)))
    return F.concat([blocks[k] for k in ENGINE_ORDER[cell]], axis=axis)


def _engine(cell, arrays, gate_order, dh=None, dc_last=None, chunk=None, transpose_Wh=False):
    """The engine's forward values and the gradients of sum_t h_t dh_t (+ c_T dc_last).

    arrays: x (N, T, D), h0 (N, H), c0 (N, H) for the LSTM, Wx (D, G*H),
    Wh (H, G*H), b (G*H,), bh (G*H,) for the GRU; blocks in `gate_order`.
    Every step gets its own copy of each weight and an (N, G*H) copy of each
    bias, so the gradient of that copy is step t's contribution (and the
    bias copy's gradient is da_t, the pre-activation gradient).
    chunk: cut the gradient between steps every `chunk` steps (truncated BPTT).
    Returns {"h": (N, T, H), "c": (N, T, H) or None, "grads": {...}, "steps": {...}}.
    """
    x = Tensor(arrays["x"], requires_grad=True)
    N, T, _ = x.shape
    h = h0 = Tensor(arrays["h0"], requires_grad=True)
    c = c0 = Tensor(arrays["c0"], requires_grad=True) if cell == "lstm" else None
    names = ["Wx", "Wh", "b"] + (["bh"] if cell == "gru" else [])
    steps = {name: [] for name in names}
    hs, cs = [], []
    for t in range(T):
        if chunk and t and t % chunk == 0:
            h, c = h.detach(), (c.detach() if c is not None else None)
        for name in names:
            value = arrays[name].T if name == "Wh" and transpose_Wh else arrays[name]
            if name.startswith("b"):
                value = np.broadcast_to(value, (N, value.shape[0]))
            steps[name].append(Tensor(value.copy(), requires_grad=True))
        Wx, Wh, b = (_to_engine_order(steps[k][t], gate_order, cell, axis=1) for k in ("Wx", "Wh", "b"))
        if cell == "rnn":
            h = rnn_step(x[:, t], h, Wx.T, Wh.T, b, None)
        elif cell == "lstm":
            h, c = lstm_step(x[:, t], h, c, Wx.T, Wh.T, b, None)
        else:
            bh = _to_engine_order(steps["bh"][t], gate_order, cell, axis=1)
            h = gru_step(x[:, t], h, Wx.T, Wh.T, b, bh)
        hs.append(h)
        cs.append(c)
    h_all = F.stack(hs, axis=1)
    c_all = F.stack(cs, axis=1) if cell == "lstm" else None
    result = {"h": h_all.data, "c": None if c_all is None else c_all.data}
    if dh is None:
        return result
    loss = (h_all * Tensor(dh)).sum()
    if dc_last is not None:
        loss = loss + (c * Tensor(dc_last)).sum()
    loss.backward()

    def grad(t):
        return np.zeros_like(t.data) if t.grad is None else t.grad

    per_step = {name: np.stack([grad(p) for p in steps[name]]) for name in names}   # (T, ...)
    result["steps"] = per_step
    result["grads"] = {"dx": grad(x), "dh0": grad(h0), "dWx": per_step["Wx"].sum(0), "dWh": per_step["Wh"].sum(0),
                       "db": per_step["b"].sum((0, 1))}
    if cell == "lstm":
        result["grads"]["dc0"] = grad(c0)
    if cell == "gru":
        result["grads"]["dbh"] = per_step["bh"].sum((0, 1))
    return result


# --------------------------------------------------------------------------
# Random problems
# --------------------------------------------------------------------------


def _trial_shapes(rng):
    """N, T, D, H: N, D, H distinct and >= 2 (a transposed matrix never fits), T >= 3."""
    N, D, H = (int(n) for n in rng.choice(np.arange(2, 7), size=3, replace=False))
    return N, int(rng.integers(3, 6)), D, H


def _problem(rng, cell, T=None):
    N, T_random, D, H = _trial_shapes(rng)
    T = T or T_random
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    arrays = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
              "Wx": 0.5 * rng.standard_normal((D, G * H)), "Wh": 0.5 * rng.standard_normal((H, G * H)),
              "b": 0.5 * rng.standard_normal(G * H)}
    if cell == "lstm":
        arrays["c0"] = rng.standard_normal((N, H))
    if cell == "gru":
        arrays["bh"] = 0.5 * rng.standard_normal(G * H)
    return arrays, rng.standard_normal((N, T, H)), rng.standard_normal((N, H))


# --------------------------------------------------------------------------
# One check: forward, then backward, trial after trial
# --------------------------------------------------------------------------


@dataclass
class _Task:
    """How to call one pair of student functions and compare them with the engine."""

    title: str
    cell: str
    sequence: bool                 # whole sequence (x (N, T, D)) or one step
    forward: object
    backward: object
    forward_name: str
    backward_name: str
    gate_order: str
    layout: str

    @property
    def outputs(self):
        if self.sequence:
            return ["h"]
        return ["h_next", "c_next"] if self.cell == "lstm" else ["h_next"]

    @property
    def gradients(self):
        if self.sequence:
            return ["dx", "dh0", "dWx", "dWh", "db"]
        return {"rnn": ["dx", "dh_prev", "dWx", "dWh", "db"],
                "lstm": ["dx", "dh_prev", "dc_prev", "dWx", "dWh", "db"],
                "gru": ["dx", "dh_prev", "dWx", "dWh", "dbx", "dbh"]}[self.cell]

    def student_inputs(self, arrays, layout=None):
        """The forward's arguments {name in the signature: array}, as the student's function takes them."""
        a = _to_student(arrays, layout or self.layout)
        if self.sequence:
            return {"x": a["x"], "h0": a["h0"], "Wx": a["Wx"], "Wh": a["Wh"], "b": a["b"]}
        inputs = {"x": a["x"][:, 0], "h_prev": a["h0"]}
        if self.cell == "lstm":
            inputs["c_prev"] = a["c0"]
        inputs.update(Wx=a["Wx"], Wh=a["Wh"])
        if self.cell == "gru":
            inputs.update(bx=a["b"], bh=a["bh"])
        else:
            inputs["b"] = a["b"]
        return inputs

    def run_forward(self, arrays, layout=None):
        """The student's outputs {name: array} (engine shapes: (N, T, H)) and the cache."""
        args = self.student_inputs(arrays, layout).values()
        outputs, cache = _unpack(_call(self.forward, self.forward_name, *args), len(self.outputs), self.forward_name)
        return dict(zip(self.outputs, outputs)), cache

    def expected_outputs(self, ref):
        if self.sequence:
            return {"h": ref["h"]}
        expected = {"h_next": ref["h"][:, 0]}
        if self.cell == "lstm":
            expected["c_next"] = ref["c"][:, 0]
        return expected

    def run_backward(self, cache, dh, dc_last):
        if self.sequence:
            args = [dh, cache]
        else:
            args = [dh[:, 0]] + ([dc_last] if self.cell == "lstm" else []) + [cache]
        got = _unpack(_call(self.backward, self.backward_name, *args), len(self.gradients), self.backward_name)[0]
        return _from_student(dict(zip(self.gradients, got)), self.layout)

    def expected_grads(self, ref):
        g = ref["grads"]
        if self.sequence:
            return {k: g[k] for k in self.gradients}
        renamed = {"dx": g["dx"][:, 0], "dh_prev": g["dh0"], "dc_prev": g.get("dc0"), "dWx": g["dWx"],
                   "dWh": g["dWh"], "db": g["db"], "dbx": g["db"], "dbh": g.get("dbh")}
        return {k: renamed[k] for k in self.gradients}


def _run_check(task, trials, seed, atol, rtol, verbose):
    _check_gate_order(task.gate_order, task.cell)
    if task.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {task.layout!r}")
    rng = np.random.default_rng(seed)
    report = CheckReport(task.title)
    for trial in range(trials):
        arrays, dh, dc_last = _problem(rng, task.cell, T=None if task.sequence else 1)
        if task.sequence and task.cell == "lstm":
            arrays["c0"] = np.zeros_like(arrays["h0"])       # CS231n's lstm_forward starts from c0 = 0
        N, T, D, H = arrays["x"].shape + (arrays["h0"].shape[1],)
        report.lines.append(f"trial {trial}: N={N} D={D} H={H}" + (f" T={T}" if task.sequence else ""))
        try:
            _check_trial(report, task, trial, arrays, dh, dc_last, atol, rtol)
        except StudentError as err:
            report.add_finding(str(err))
            report.lines.append(f"  {err}")
        if report.findings:
            break                     # the cause is found: more trials would only repeat it
    if verbose:
        print(report)
    return report


def _check_trial(report, task, trial, arrays, dh, dc_last, atol, rtol):
    """Forward, then backward, on one random problem; adds the finding (if any) to the report."""
    dc_last = dc_last if task.cell == "lstm" and not task.sequence else None
    # the engine's gradients only when there is a student backward to compare them with
    ref = _engine(task.cell, arrays, task.gate_order, dh if task.backward else None, dc_last)
    try:
        outputs, cache = task.run_forward(arrays)
    except StudentError as err:
        layout = _find_layout(task, arrays)
        if layout:
            report.add_finding(layout)
            report.lines.append(f"  {layout}")
            return
        shapes = ", ".join(f"{k} {v.shape}" for k, v in task.student_inputs(arrays).items())
        if "broadcast" in str(err) and task.cell != "rnn":
            H = arrays["h0"].shape[1]
            raise StudentError(f"{err}; the inputs were {shapes}: check the gate slices of a: each gate's block is "
                               f"H = {H} columns wide, a[:, k*H:(k+1)*H]") from err
        if "matmul" in str(err) or "shape" in str(err):
            raise StudentError(f"{err}; the inputs were {shapes}: check which product uses a transposed "
                               f"matrix") from err
        raise err
    expected = task.expected_outputs(ref)
    steps = [f"t={t}" for t in range(arrays["x"].shape[1])] if task.sequence else None
    wrong = [name for name in task.outputs
             if _compare(report, trial, name, outputs[name], expected[name], parts=steps, axis=1,
                         atol=atol, rtol=rtol)]
    if wrong:
        report.add_finding(_find_layout(task, arrays) or _forward_finding(task, arrays, outputs, expected, wrong))
        return
    if task.backward is None:
        return
    got = task.run_backward(cache, dh, dc_last)
    expected = task.expected_grads(ref)
    gate_labels = [f"gate {GATE_NAMES[k]}" for k in task.gate_order]
    wrong = {}
    for name in task.gradients:
        parts = gate_labels if name in ("dWx", "dWh", "db", "dbx", "dbh") and task.cell != "rnn" else (
            steps if name == "dx" else None)
        bad = _compare(report, trial, name, got[name], expected[name], parts=parts, axis=1 if name == "dx" else -1,
                       atol=atol, rtol=rtol)
        if bad:
            wrong[name] = bad
    if wrong:
        report.add_finding(_backward_finding(task, arrays, dh, dc_last, ref, got, expected, wrong))


def _check_gate_order(gate_order, cell):
    gates = ENGINE_ORDER[cell]
    if cell != "rnn" and sorted(gate_order) != sorted(gates):
        raise ValueError(f"gate_order must be a permutation of {gates!r}, got {gate_order!r}")


# --------------------------------------------------------------------------
# 1. Layout
# --------------------------------------------------------------------------


def _find_layout(task, arrays):
    """A finding naming the layout the student's forward matches, or None."""
    orders = ["".join(p) for p in permutations(task.gate_order)] if task.cell != "rnn" else [""]
    square = arrays["Wh"].shape[0] == arrays["Wh"].shape[1]
    outputs = {}
    for layout in (task.layout,) + tuple(k for k in LAYOUTS if k != task.layout):
        try:
            outputs[layout] = task.run_forward(arrays, layout)[0]
        except StudentError:
            continue
    for layout, got in outputs.items():
        for order in orders:
            for transposed in (False, True) if square else (False,):
                if (layout, order, transposed) == (task.layout, task.gate_order, False):
                    continue
                ref = _engine(task.cell, arrays, order, transpose_Wh=transposed)
                if all(_close(got[k], e) for k, e in task.expected_outputs(ref).items()):
                    return _layout_message(task, layout, order, transposed)
    return None


def _layout_message(task, layout, order, transposed):
    G = len(task.gate_order) or 1
    GH = f"{G}H" if G > 1 else "H"
    if transposed:
        return ("layout: your forward uses Wh transposed (h_prev @ Wh.T); Wh has shape (H, H) and the product is "
                "h_prev @ Wh (a bug, not a layout to pass)")
    parts = []
    if layout != task.layout:
        shapes = f"PyTorch shapes Wx ({GH}, D), Wh ({GH}, H), used as x @ Wx.T" if layout == "pytorch" else \
            f"CS231n shapes Wx (D, {GH}), Wh (H, {GH}), used as x @ Wx"
        parts.append((f"your functions take {shapes}", f"layout={layout!r}"))
    if order != task.gate_order:
        name = " (CS231n's order)" if order == "ifog" else " (PyTorch's order)" if order == ENGINE_ORDER[task.cell] \
            else ""
        parts.append((f"your gate blocks are in the order {','.join(order)}{name}, not {','.join(task.gate_order)}",
                      f"gate_order={order!r}"))
    return ("layout: " + "; ".join(p for p, _ in parts) + ". If that is your layout, pass "
            + ", ".join(a for _, a in parts) + " to the check")


# --------------------------------------------------------------------------
# 2. Forward
# --------------------------------------------------------------------------


def _forward_finding(task, arrays, outputs, expected, wrong):
    """Which output, which gate, which time step is wrong in the forward pass."""
    name = wrong[0]
    got = _as_array(outputs[name])
    if got is None or got.shape != expected[name].shape:
        return f"forward: {name} has shape {None if got is None else got.shape}, expected {expected[name].shape}"
    if task.sequence:
        return _forward_time_finding(task, arrays, got, expected[name])
    if task.cell == "gru":
        for description, variant in _gru_variants(arrays, task.gate_order).items():
            if _close(got, variant):
                return f"forward: h_next is wrong: you wrote {description}"
        return _gru_gate_probe(task, arrays)
    if task.cell == "lstm":
        return _lstm_gate_probe(task, arrays, wrong)
    x, h_prev, Wx, Wh, b = arrays["x"][:, 0], arrays["h0"], arrays["Wx"], arrays["Wh"], arrays["b"]
    a = x @ Wx + h_prev @ Wh + b
    variants = {"left out the bias b": np.tanh(x @ Wx + h_prev @ Wh), "left out h_prev @ Wh": np.tanh(x @ Wx + b),
                "left out x @ Wx": np.tanh(h_prev @ Wh + b), "used relu instead of tanh": np.maximum(a, 0),
                "used sigmoid instead of tanh": sigmoid(a), "left out the tanh": a}
    for mistake, variant in variants.items():
        if _close(got, variant):
            return f"forward: h_next is wrong: you {mistake}; h_next = tanh(x @ Wx + h_prev @ Wh + b)"
    return "forward: h_next is wrong: check h_next = tanh(x @ Wx + h_prev @ Wh + b)"


def _forward_time_finding(task, arrays, got, expected):
    bad = [t for t in range(got.shape[1]) if not _close(got[:, t], expected[:, t])]
    first = bad[0]
    T = got.shape[1]
    if _close(got[:, 0], arrays["h0"]) and _close(got[:, 1:], expected[:, :-1]):
        return (f"forward: h is shifted by one time step: h[:, t] holds the hidden state of step t-1 (h[:, 0] is "
                f"h0); store h_t after computing step t (checked {T} steps)")
    starts = {"ignores h0 (starts from zeros)": dict(arrays, h0=np.zeros_like(arrays["h0"]))}
    if task.cell == "lstm":
        starts["starts from c0 = h0; lstm_forward starts from c0 = 0"] = dict(arrays, c0=arrays["h0"])
    for mistake, start in starts.items():
        if _close(got, _engine(task.cell, start, task.gate_order)["h"]):
            return f"forward: h is wrong from time step t=0 on: your forward {mistake} (checked {T} steps)"
    text = f"forward: h is wrong from time step t={first} on (checked {T} steps)"
    if np.all(got[:, first] == 0):
        text += f"; h[:, {first}] is all zeros: was step {first} computed? (does your time loop start at t = 0?)"
    elif first == 0:
        text += "; the first step must start from h0"
    return text


def _saturated(task, arrays, gate, value):
    """`arrays` with gate `gate`'s bias pushed so far (+-40) that sigmoid of its pre-activation is `value` (0 or 1)."""
    H = arrays["h0"].shape[1]
    k = task.gate_order.index(gate)
    b = arrays["b"].copy()
    b[k * H:(k + 1) * H] += 40.0 if value else -40.0
    return dict(arrays, b=b)


def _forward_right(task, arrays, output=None):
    """Whether the student's forward gives the engine's outputs (or just `output`) on `arrays`."""
    try:
        got = task.run_forward(arrays)[0]
    except StudentError:
        return False
    ref = _engine(task.cell, arrays, task.gate_order)
    return all(_close(got[k], e) for k, e in task.expected_outputs(ref).items() if output in (None, k))


def _lstm_gate_probe(task, arrays, wrong):
    """Find the wrong LSTM gate: drop c_prev, then saturate gate i or gate o.

    With c_prev = 0, c_next = i * g (gate f plays no part); with i = 1,
    c_next = f * c_prev + g; with i = 0, c_next = f * c_prev; with o = 1,
    h_next = tanh(c_next); with o = 0, h_next = 0.
    """
    if "c_next" not in wrong:
        if _forward_right(task, _saturated(task, arrays, "o", 1), "h_next"):
            return ("forward: h_next is wrong while c_next is right, and right when gate o is saturated at 1: "
                    "gate o (output gate) is wrong: o = sigmoid(a_o)")
        if not _forward_right(task, _saturated(task, arrays, "o", 0), "h_next"):
            return ("forward: h_next is wrong while c_next is right: gate o (output gate) does not follow its block "
                    "of a (with a_o very negative, o must be 0 and h_next 0): o = sigmoid(a_o)")
        return ("forward: h_next is wrong while c_next is right, and gate o (output gate) is right too: check the "
                "tanh in h_next = o * tanh(c_next)")
    if _forward_right(task, dict(arrays, c0=np.zeros_like(arrays["c0"])), "c_next") or \
            _forward_right(task, _saturated(task, arrays, "f", 0), "c_next"):
        return ("forward: c_next is wrong only in the term f * c_prev (right when c_prev = 0 or gate f is "
                "saturated at 0): check gate f (forget gate) and that it multiplies c_prev")
    if _forward_right(task, _saturated(task, arrays, "i", 1), "c_next"):
        return ("forward: c_next is wrong, and right when gate i is saturated at 1: gate i (input gate) is wrong: "
                "i = sigmoid(a_i)")
    if not _forward_right(task, _saturated(task, arrays, "i", 0), "c_next"):
        return ("forward: c_next is wrong: gate i (input gate) does not follow its block of a (with a_i very "
                "negative, i must be 0 and c_next = f * c_prev): i = sigmoid(a_i)")
    return ("forward: c_next is wrong: gate g (candidate) is wrong (c_next is right when i = 0, wrong when i = 1 "
            "and c_next = f * c_prev + g): g = tanh(a_g)")


def _gru_gate_probe(task, arrays):
    """Find the wrong GRU gate by saturating the others.

    With z = 1, h_next = h_prev whatever n is; with z = 0, h_next = n; with
    z = 0 and r = 1, n = tanh(x Wx_n + bx_n + h_prev Wh_n + bh_n); with z = 0
    and r = 0, n = tanh(x Wx_n + bx_n). Each probe that goes wrong names a
    gate.
    """
    if not _forward_right(task, _saturated(task, arrays, "z", 1)):
        return ("forward: gate z (update gate) mixes wrongly: with z = 1 h_next must be h_prev; "
                "h_next = (1 - z) * n + z * h_prev")
    if _forward_right(task, _saturated(task, arrays, "z", 0)):
        return ("forward: gate z (update gate) is wrong: h_next is right whenever z is 0 or 1, so n is right "
                "and z itself is not: z = sigmoid(x Wx_z + bx_z + h_prev Wh_z + bh_z)")
    n_only = _saturated(task, arrays, "z", 0)
    r_open, r_shut = _forward_right(task, _saturated(task, n_only, "r", 1)), \
        _forward_right(task, _saturated(task, n_only, "r", 0))
    if r_open and r_shut:
        return ("forward: gate r (reset gate) is used wrongly: n is right when r is 0 or 1 and wrong in between; "
                "r multiplies (h_prev Wh_n + bh_n) once: n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))")
    if r_open:
        return ("forward: gate r (reset gate) is not applied: with r = 0 the candidate must be n = tanh(x Wx_n + "
                "bx_n), yours still uses h_prev; n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))")
    return ("forward: gate n (candidate) is wrong even with r = 1 and z = 0 (h_next = n): "
            "n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))")


def _gru_variants(arrays, gate_order):
    """Outputs of common GRU mistakes, to recognise which one a student wrote."""
    x, h_prev = arrays["x"][:, 0], arrays["h0"]
    blocks_x = dict(zip(gate_order, np.split(x @ arrays["Wx"] + arrays["b"], 3, axis=1)))
    blocks_h = dict(zip(gate_order, np.split(h_prev @ arrays["Wh"] + arrays["bh"], 3, axis=1)))
    r, z = sigmoid(blocks_x["r"] + blocks_h["r"]), sigmoid(blocks_x["z"] + blocks_h["z"])
    n = np.tanh(blocks_x["n"] + r * blocks_h["n"])
    k = gate_order.index("n")
    Wh_n, bh_n = np.split(arrays["Wh"], 3, axis=1)[k], np.split(arrays["bh"], 3)[k]
    n_reset_first = np.tanh(blocks_x["n"] + (r * h_prev) @ Wh_n + bh_n)
    return {
        "the update gate swapped, h_next = z * n + (1 - z) * h_prev (gate z (update gate)); this check uses "
        "h_next = (1 - z) * n + z * h_prev (PyTorch)": z * n + (1 - z) * h_prev,
        "gate r (reset gate) applied before the matrix product, (r * h_prev) @ Wh_n (Cho et al. 2014); "
        "this check uses r * (h_prev @ Wh_n + bh_n) (PyTorch, cuDNN)": (1 - z) * n_reset_first + z * h_prev,
    }


# --------------------------------------------------------------------------
# 3. Backward
# --------------------------------------------------------------------------


def _backward_finding(task, arrays, dh, dc_last, ref, got, expected, wrong):
    """Which gradient, which gate's derivative, which time step; local or carried."""
    for finder in (_shape_or_transpose, _permuted_gates, _flipped_sign, _not_summed, _h_instead_of_h_prev,
                   _only_dh0):
        text = finder(task, ref, got, expected, wrong)
        if text:
            return text
    probes = []               # each re-runs the student's code on a changed problem
    if task.sequence:
        probes += [lambda: _input_of_another_step(task, arrays, ref, got, wrong),
                   lambda: _caches_out_of_order(task, arrays, dh, expected),
                   lambda: _local_or_carried(task, arrays, dh), lambda: _one_step_sequence(task, arrays, dh)]
    if task.cell == "lstm" and not task.sequence:
        probes.append(lambda: _lstm_cell_path(task, arrays, dh, dc_last))
    if task.cell == "gru":
        probes.append(lambda: _gru_reset_probe(task, arrays, dh, wrong))
    for probe in probes:
        try:
            text = probe()
        except StudentError:  # the student's code fails on the probe's problem (e.g. T = 1): not the cause sought
            continue
        if text:
            return text
    return _gradient_finding(task, wrong)


def _only_dh0(task, ref, got, expected, wrong):
    """A sequence's dh0 wrong while everything else is right: returned from the wrong place."""
    if not task.sequence or list(wrong) != ["dh0"]:
        return None
    dh0 = _as_array(got["dh0"])
    what = ("dh0 is the gradient that step 0 sends back to h0, the dh_prev of step 0 (the last one the loop "
            "over t = T-1..0 computes)")
    if dh0 is not None and not np.any(dh0):
        return f"backward: dh0 is zero while every other gradient is right: {what}"
    return f"backward: dh0 is wrong while every other gradient is right (returned from the wrong step?): {what}"


def _wrong_gates(task, arrays, dh, dc_last=None):
    """The gates whose bias gradient (the sum of their da) the student gets wrong on `arrays`."""
    ref = _engine(task.cell, arrays, task.gate_order, dh, dc_last)
    got = task.run_backward(task.run_forward(arrays)[1], dh, dc_last)
    expected = task.expected_grads(ref)
    names = [n for n in ("db", "dbx", "dbh", "dWx", "dWh") if n in expected]
    return {k for n in names for k, g, e in _gate_blocks(task, got[n], expected[n]) if not _close(g, e)}


def _gru_reset_probe(task, arrays, dh, wrong):
    """GRU: da_r = da_n * (h_prev Wh_n + bh_n) * r (1 - r) flows through n's derivative, so a wrong n makes r wrong.

    With gate r saturated at 1, r (1 - r) = 0 and r's gradient vanishes: if
    gate n is still wrong, its own local derivative is the cause.
    """
    labels = {label for labels in wrong.values() for label in labels if label}
    if not {f"gate {GATE_NAMES['r']}", f"gate {GATE_NAMES['n']}"} <= labels:
        return None
    gates = _wrong_gates(task, _saturated(task, arrays, "r", 1), dh)
    if gates == {"n"}:
        return ("backward: the local derivative of gate n (candidate) is wrong (r's gradient goes through "
                "n's, so it is wrong too; with r saturated at 1 only gate n is wrong): da_n = dn * (1 - n^2)")
    if not gates:
        return ("backward: the local derivative of gate r (reset gate) is wrong (right when r is saturated at 1): "
                "da_r = da_n * (h_prev Wh_n + bh_n) * r * (1 - r)")
    return None


def _shape_or_transpose(task, ref, got, expected, wrong):
    for name in wrong:
        g = _as_array(got[name])
        if g is not None and g.ndim == 2 and g.T.shape == expected[name].shape and _close(g.T, expected[name]):
            formula = {"dWx": "x.T @ da", "dWh": "h_prev.T @ da"}.get(name, "")
            return f"backward: {name} is transposed" + (f" (it is {formula}, shape {expected[name].shape})"
                                                        if formula else "")
        if "shape" in wrong[name]:
            return f"backward: {name} has shape {None if g is None else g.shape}, expected {expected[name].shape}"
    return None


def _permuted_gates(task, ref, got, expected, wrong):
    if task.cell == "rnn" or not {"dWx", "dWh"} & set(wrong):
        return None
    names = [n for n in ("dWx", "dWh", "db", "dbx", "dbh") if n in got]
    for order in ("".join(p) for p in permutations(task.gate_order)):
        if order == task.gate_order:
            continue
        position = [order.index(k) for k in task.gate_order]
        if all(_close(np.concatenate([np.split(_as_array(got[n]), len(order), axis=-1)[p]
                                      for p in position], axis=-1), expected[n]) for n in names):
            return (f"backward: your gate derivatives are stacked in the order {','.join(order)} while your forward "
                    f"reads the blocks as {','.join(task.gate_order)}: concatenate da in the forward's order")
    return None


def _flipped_sign(task, ref, got, expected, wrong):
    if all(got[n] is not None and _close(-_as_array(got[n]), expected[n]) for n in wrong):
        return ("backward: " + ", ".join(wrong) + " have the wrong sign: check the sign of the local derivative "
                + ("(tanh'(a) = 1 - tanh(a)^2)" if task.cell == "rnn" else "of each gate"))
    return None


def _not_summed(task, ref, got, expected, wrong):
    """dW holding the contributions of some time steps only."""
    if not task.sequence:
        return None
    T = ref["steps"]["Wx"].shape[0]
    for name, key in (("dWh", "Wh"), ("dWx", "Wx"), ("db", "b")):
        if name not in wrong:
            continue
        per_step = ref["steps"][key] if key != "b" else ref["steps"]["b"].sum(1)
        for first in range(T):
            for last in range(first, T):
                if (first, last) != (0, T - 1) and _close(got[name], per_step[first:last + 1].sum(0)):
                    span = f"step t={first}" if first == last else f"steps t={first}..{last}"
                    if (first, last) == (1, T - 1):
                        return (f"backward: {name} misses the contribution of step t=0 (does your loop stop "
                                f"before t = 0?); {name} is the sum over every step t=0..{T - 1}")
                    return (f"backward: {name} is not summed over time: it holds the contribution of {span} only; "
                            f"{name} is the sum over every step t=0..{T - 1}")
    return None


def _h_instead_of_h_prev(task, ref, got, expected, wrong):
    if "dWh" not in wrong or task.cell == "gru":
        return None
    h = ref["h"]                                                     # (N, T, H)
    da = ref["steps"]["b"]                                           # (T, N, G*H)
    guess = sum(h[:, t].T @ da[t] for t in range(da.shape[0]))
    if _close(got["dWh"], guess):
        return ("backward: dWh uses the new hidden state h_t instead of h_prev: dWh = h_prev.T @ da"
                + (" summed over t, with h_prev = h_{t-1} (h0 at t=0)" if task.sequence else ""))
    return None


def _input_of_another_step(task, arrays, ref, got, wrong):
    """dWx or dWh pairing da_t with the input of step t-1 or t+1 instead of step t."""
    da = ref["steps"]["b"]                                           # (T, N, G*H)
    T = da.shape[0]
    h_prev = [arrays["h0"]] + [ref["h"][:, t] for t in range(T - 1)]
    inputs = {"dWx": ("x", [arrays["x"][:, t] for t in range(T)]), "dWh": ("h_prev", h_prev)}
    for name in ("dWx", "dWh"):
        if name not in wrong:
            continue
        symbol, values = inputs[name]
        for shift in (-1, 1):
            for ends, index in (("wrapping around", lambda t: (t + shift) % T),
                                ("clamped at the ends", lambda t: min(max(t + shift, 0), T - 1))):
                guess = sum(values[index(t)].T @ da[t] for t in range(T))
                if _close(got[name], guess):
                    return (f"backward: {name} pairs da of step t with {symbol} of step t{shift:+d} ({ends}); "
                            f"{name} = sum over t of {symbol}_t.T @ da_t, both of the same step t")
    return None


def _caches_out_of_order(task, arrays, dh, expected):
    """A list of per-step caches stored in one time order and read in another (e.g. caches.insert(0, cache))."""
    cache = task.run_forward(arrays)[1]
    if not isinstance(cache, list) or len(cache) != arrays["x"].shape[1]:
        return None
    orders = {"in reverse time order": cache[::-1], "shifted by one step": cache[1:] + cache[:1],
              "shifted by one step the other way": cache[-1:] + cache[:-1]}
    for order, reordered in orders.items():
        got = task.run_backward(reordered, dh, None)
        if all(_close(got[n], expected[n]) for n in task.gradients):
            return (f"backward: your backward reads the per-step caches {order} from the way your forward stores "
                    f"them: cache[t] must be step t's cache (append them in time order t = 0..T-1)")
    return None


def _local_or_carried(task, arrays, dh):
    """Seed the loss at the last step only: a wrong last step is a local error, wrong earlier steps a carried one."""
    T = dh.shape[1]
    last_only = np.zeros_like(dh)
    last_only[:, -1] = dh[:, -1]
    ref = _engine(task.cell, arrays, task.gate_order, last_only)
    cache = task.run_forward(arrays)[1]
    got = task.run_backward(cache, last_only, None)
    expected = task.expected_grads(ref)
    dx = _as_array(got["dx"])
    if dx is None or dx.shape != expected["dx"].shape:
        return None
    if not _close(dx[:, -1], expected["dx"][:, -1]):
        return None                     # a local error: named gate by gate below
    late = [t for t in range(T - 1) if not _close(dx[:, t], expected["dx"][:, t])]
    if late:
        carried = "dh_prev and dc_prev" if task.cell == "lstm" else "dh_prev"
        return (f"backward: the gradient carried from step t+1 is wrong: with a loss at the last step only, dx is "
                f"right at t={T - 1} and wrong at t={','.join(map(str, late))}; every step's local derivative is "
                f"right. Add the {carried} of step t+1 to the upstream gradient of step t")
    return None


def _one_step_sequence(task, arrays, dh):
    """A local error in a sequence, located on a sequence of one step (no carried gradient to blur it)."""
    short = dict(arrays, x=arrays["x"][:, :1])
    ref = _engine(task.cell, short, task.gate_order, dh[:, :1])
    got = task.run_backward(task.run_forward(short)[1], dh[:, :1], None)
    expected = task.expected_grads(ref)
    wrong = [n for n in task.gradients if not _close(got[n], expected[n])]
    if not wrong:
        return None
    if task.cell == "rnn":
        return ("backward: the local derivative of one step is wrong (a one-step sequence already gets "
                f"{', '.join(wrong)} wrong): check da = dh * (1 - h_t^2)")
    gates = {k for k, g, e in _gate_blocks(task, got["db"], expected["db"]) if not _close(g, e)}
    if task.cell == "lstm" and {"i", "g"} <= gates <= {"i", "f", "g"}:      # f's gradient is 0 at t=0 (c0 = 0)
        return ("backward: the gradient reaching c through h = o * tanh(c) is missing or wrong (on a one-step "
                "sequence the gates that take dc, i and g, are wrong and gate o is right): "
                "dc = dc_next + dh * o * (1 - tanh(c)^2)")
    if gates:
        names = ", ".join(f"gate {GATE_NAMES[k]}" for k in task.gate_order if k in gates)
        return f"backward: the local derivative of {names} is wrong (seen on a one-step sequence)"
    return f"backward: {', '.join(wrong)} wrong on a one-step sequence (a local error in each step)"


def _lstm_cell_path(task, arrays, dh, dc_last):
    """LSTM step: probe with dc_next alone and with dh_next alone to find the broken path."""
    found = {}
    for probe, (h_seed, c_seed) in {"dc": (np.zeros_like(dh), dc_last),
                                    "dh": (dh, np.zeros_like(dc_last))}.items():
        ref = _engine("lstm", arrays, task.gate_order, h_seed, c_seed)
        got = task.run_backward(task.run_forward(arrays)[1], h_seed, c_seed)
        expected = task.expected_grads(ref)
        found[probe] = {n for n in expected if not _close(got[n], expected[n])}
        found[probe + "_gates"] = {k for k, blocks, e in _gate_blocks(task, got["db"], expected["db"])
                                   if not _close(blocks, e)}
    if found["dc"] and not found["dh"]:
        return ("backward: the gradient arriving through dc_next is lost or wrong (with dh_next = 0 your gradients "
                "are wrong, with dc_next = 0 they are right): dc = dc_next + dh_next * o * (1 - tanh(c_next)^2)")
    if not found["dc"] and found["dh"]:
        gates = found["dh_gates"]
        if "o" not in gates and gates == set(task.gate_order) - {"o"}:
            return ("backward: dc_prev is wrong while every gate derivative is right: the gradient reaching c "
                    "through h = o * tanh(c) is missing or wrong; dc = dc_next + dh_next * o * (1 - tanh(c_next)^2)")
        if gates == {"o"}:
            return "backward: the derivative of gate o (output gate) is wrong (do = dh_next * tanh(c_next))"
    return None


def _gate_blocks(task, got, expected):
    got = _as_array(got)
    if got is None or got.shape != expected.shape:
        return [(k, got, expected) for k in task.gate_order]
    return list(zip(task.gate_order, np.split(got, len(task.gate_order), axis=-1),
                    np.split(expected, len(task.gate_order), axis=-1)))


def _gradient_finding(task, wrong):
    """The fallback: name the wrong gradients and the gates whose local derivative is wrong."""
    gates = []
    for name in ("db", "dbx", "dbh", "dWx", "dWh"):
        for label in wrong.get(name, []):
            if label and label.startswith("gate ") and label not in gates:
                gates.append(label)
    if gates and len(gates) < len(task.gate_order):
        return (f"backward: the local derivative of {', '.join(gates)} is wrong ({', '.join(wrong)} wrong; "
                f"the other gates are right)")
    if task.cell == "rnn" and "db" in wrong:
        return ("backward: the local derivative da = dh * (1 - h_next^2) (tanh') is wrong: db, the sum of da, "
                f"is wrong, and so are {', '.join(n for n in wrong if n != 'db')}")
    steps = sorted({label for labels in wrong.values() for label in labels if label and label.startswith("t=")})
    where = f" at {', '.join(steps)}" if steps else ""
    if len(wrong) == 1 and not steps:
        name = next(iter(wrong))
        return f"backward: {name} is wrong while every other gradient is right" + _FORMULAS.get((task.cell, name), "")
    return f"backward: {', '.join(wrong)} wrong{where}"


_FORMULAS = {
    ("rnn", "dx"): ": dx = da @ Wx.T", ("rnn", "dh_prev"): ": dh_prev = da @ Wh.T",
    ("rnn", "dWx"): ": dWx = x.T @ da", ("rnn", "db"): ": db = da summed over the batch",
    ("lstm", "dc_prev"): ": dc_prev = dc * f, the gradient along the cell state",
    ("lstm", "dh_prev"): ": dh_prev = da @ Wh.T", ("lstm", "dx"): ": dx = da @ Wx.T",
    ("gru", "dh_prev"): ": dh_prev = da_h @ Wh.T + dh_next * z (the direct path through z * h_prev)",
    ("gru", "dx"): ": dx = da_x @ Wx.T",
    ("lstm", "db"): ": db = da summed over the batch", ("lstm", "dWx"): ": dWx = x.T @ da",
    ("gru", "dbx"): ": dbx = da_x summed over the batch", ("gru", "dbh"): ": dbh = da_h summed over the batch",
    ("gru", "dWx"): ": dWx = x.T @ da_x", ("gru", "dWh"): ": dWh = h_prev.T @ da_h",
}


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------


def check_rnn_step(forward, backward=None, layout="cs231n", trials=3, seed=0, atol=1e-6, rtol=1e-5, verbose=True):
    """Check rnn_step_forward (and rnn_step_backward if given); returns a `CheckReport`."""
    task = _Task("check_rnn_step", "rnn", False, forward, backward, "rnn_step_forward", "rnn_step_backward", "",
                 layout)
    return _run_check(task, trials, seed, atol, rtol, verbose)


def check_rnn_sequence(forward, backward=None, layout="cs231n", trials=3, seed=0, atol=1e-6, rtol=1e-5,
                       verbose=True):
    """Check rnn_forward (and rnn_backward, i.e. BPTT, if given); names the wrong time steps."""
    task = _Task("check_rnn_sequence", "rnn", True, forward, backward, "rnn_forward", "rnn_backward", "", layout)
    return _run_check(task, trials, seed, atol, rtol, verbose)


def check_lstm_step(forward, backward=None, gate_order="ifgo", layout="cs231n", trials=3, seed=0, atol=1e-6,
                    rtol=1e-5, verbose=True):
    """Check lstm_step_forward (and lstm_step_backward if given), gate by gate.

    Weight and bias gradients are compared gate by gate, so a wrong forget-gate
    derivative is reported as "dWx gate f (forget gate) WRONG" while the other
    gates are listed as correct. CS231n's blocks are i, f, o, g: pass gate_order="ifog".
    """
    task = _Task(f"check_lstm_step (gate order {','.join(gate_order)})", "lstm", False, forward, backward,
                 "lstm_step_forward", "lstm_step_backward", gate_order, layout)
    return _run_check(task, trials, seed, atol, rtol, verbose)


def check_lstm_sequence(forward, backward=None, gate_order="ifgo", layout="cs231n", trials=3, seed=0, atol=1e-6,
                        rtol=1e-5, verbose=True):
    """Check lstm_forward (and lstm_backward if given) over whole sequences (c0 = 0, as in CS231n)."""
    task = _Task(f"check_lstm_sequence (gate order {','.join(gate_order)})", "lstm", True, forward, backward,
                 "lstm_forward", "lstm_backward", gate_order, layout)
    return _run_check(task, trials, seed, atol, rtol, verbose)


def check_gru_step(forward, backward=None, gate_order="rzn", layout="cs231n", trials=3, seed=0, atol=1e-6,
                   rtol=1e-5, verbose=True):
    """Check gru_step_forward (and gru_step_backward if given); names a known GRU variant if the student wrote one."""
    task = _Task(f"check_gru_step (gate order {','.join(gate_order)})", "gru", False, forward, backward,
                 "gru_step_forward", "gru_step_backward", gate_order, layout)
    return _run_check(task, trials, seed, atol, rtol, verbose)


def check_truncated_bptt(forward, backward, k, trials=3, seed=0, atol=1e-6, rtol=1e-5, verbose=True):
    """Check a truncated BPTT backward pass for the vanilla RNN that cuts the gradient every `k` steps.

    backward(dh, cache) -> (dx, dh0, dWx, dWh, db) like rnn_backward, except
    that no gradient crosses from step t to step t-1 when t is a multiple of
    k: the loss at step s reaches steps k*(s//k) .. s only. There is no cut
    before step 0: dh0 is the gradient the first chunk sends to h0. For each
    loss step s the report lists which steps received gradient (dx[:, t] != 0).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"check_truncated_bptt: k must be a positive int (steps per chunk), got {k!r}")
    rng = np.random.default_rng(seed)
    report = CheckReport(f"check_truncated_bptt (k={k})")
    task = _Task(report.title, "rnn", True, forward, backward, "rnn_forward", "truncated backward", "", "cs231n")
    for trial in range(trials):
        arrays, dh, _ = _problem(rng, "rnn", T=int(rng.integers(k + 2, 2 * k + 4)))
        N, T, D = arrays["x"].shape
        report.lines.append(f"trial {trial}: N={N} D={D} H={arrays['h0'].shape[1]} T={T}")
        try:
            cache = task.run_forward(arrays)[1]
            wrong_reach = []
            for s in range(T):
                seed_s = np.zeros_like(dh)
                seed_s[:, s] = dh[:, s]
                dx = _as_array(task.run_backward(cache, seed_s, None)["dx"])
                if dx is None or dx.shape != arrays["x"].shape:
                    raise StudentError(f"truncated backward: dx has shape {None if dx is None else dx.shape}, "
                                       f"expected {arrays['x'].shape}")
                reached = [t for t in range(T) if np.any(dx[:, t] != 0)]
                expected = list(range(k * (s // k), s + 1))
                if reached != expected:
                    wrong_reach.append(s)
                    report.lines.append(f"  loss at step {s} reached steps {_span(reached)}; expected {_span(expected)}")
                    report.failures.append((trial, "dx", f"reach of step {s}"))
            if wrong_reach:
                report.add_finding(f"truncated BPTT: the gradient reaches the wrong steps (k={k}): the loss at step s "
                                   f"must reach steps k*(s//k)..s; wrong for the losses at steps "
                                   f"{','.join(map(str, wrong_reach))}")
                break
            ref = _engine("rnn", arrays, "", dh, chunk=k)
            got = task.run_backward(cache, dh, None)
            wrong = {n: bad for n in task.gradients
                     if (bad := _compare(report, trial, n, got[n], ref["grads"][n], atol=atol, rtol=rtol))}
            if wrong:
                dh0 = _as_array(got["dh0"])
                if list(wrong) == ["dh0"] and dh0 is not None and not np.any(dh0):
                    report.add_finding(f"truncated BPTT: dh0 is zero: the cuts are between chunks (before steps "
                                       f"t = k, 2k, ...; k={k}), not before step 0, so the first chunk's gradient "
                                       f"reaches h0")
                else:
                    report.add_finding(f"truncated BPTT: the right steps receive gradient but the values of "
                                       f"{', '.join(wrong)} are wrong")
                break
        except StudentError as err:
            report.add_finding(str(err))
            report.lines.append(f"  {err}")
            break
    if verbose:
        print(report)
    return report


def _span(steps):
    if not steps:
        return "none"
    if steps == list(range(steps[0], steps[-1] + 1)):
        return f"{steps[0]}..{steps[-1]}"
    return ",".join(map(str, steps))


__all__ = ["CheckReport", "StudentError", "check_gru_step", "check_lstm_sequence", "check_lstm_step",
           "check_rnn_sequence", "check_rnn_step", "check_truncated_bptt"]
