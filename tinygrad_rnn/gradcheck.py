"""Check analytic gradients against finite differences.

For a function f of tensors x_1..x_k with any output shape, we fix a random
direction v of the output's shape and compare, for every element of every
input, the gradient of the scalar  L = sum(f(x) * v)  computed two ways:

    analytic:  backward() through the graph
    numeric:   (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)   (central difference)

Central differences have error O(eps^2), and float64 keeps the rounding error
near 1e-16 / eps, so eps = 1e-6 gives agreement to about 1e-9 on smooth ops.
An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
"""
from dataclasses import dataclass

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by `gradcheck` when analytic and numeric gradients disagree."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclass
class InputCheck:
    """Comparison for one input: the worst element and its two gradient values."""

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    passed: bool


@dataclass
class GradcheckReport:
    inputs: list
    eps: float
    atol: float
    rtol: float

    @property
    def passed(self):
        return all(check.passed for check in self.inputs)

    def __str__(self):
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"gradcheck {verdict} (float64, central differences, eps={self.eps:g}, "
                 f"atol={self.atol:g}, rtol={self.rtol:g})",
                 f"{'input':<10} {'shape':<14} {'max abs err':>11} {'max rel err':>11} "
                 f"{'worst index':<14} {'analytic':>12} {'numeric':>12}  ok"]
        for c in self.inputs:
            lines.append(f"{c.name:<10} {str(c.shape):<14} {c.max_abs_error:>11.2e} {c.max_rel_error:>11.2e} "
                         f"{str(c.worst_index):<14} {c.analytic:>12.6g} {c.numeric:>12.6g}  "
                         f"{'yes' if c.passed else 'NO'}")
        return "\n".join(lines)


def _as_float64_leaf(x):
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.dtype.kind != "f":
        return x  # integer inputs (indices, labels) are passed through, not checked
    return Tensor(data.astype(np.float64), requires_grad=True)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, names=None, seed=0, raise_on_failure=True):
    """Compare backward() of `fn(*inputs)` with central differences, in float64.

    fn:      callable taking Tensors and returning a Tensor of any shape
    inputs:  list of Tensors/arrays; floating ones are copied to float64 leaves
    names:   optional labels for the report (default "x0", "x1", ...)
    Returns a `GradcheckReport`; raises `GradcheckError` (with the report) on failure.
    """
    _check_tolerances(eps, atol, rtol)
    leaves = [_as_float64_leaf(x) for x in inputs]
    checked = [i for i, x in enumerate(leaves) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check")
    names = list(names) if names is not None else [f"x{i}" for i in range(len(leaves))]

    out = fn(*leaves)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    direction = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(direction)).sum().backward()

    def projected_output():
        with no_grad():
            return float(np.sum(fn(*leaves).data * direction))

    checks = []
    for i in checked:
        leaf = leaves[i]
        analytic = np.zeros_like(leaf.data) if leaf.grad is None else leaf.grad
        numeric = np.zeros_like(leaf.data)
        flat = leaf.data.reshape(-1)  # a view: perturbing it perturbs the input
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            up = projected_output()
            flat[k] = original - eps
            down = projected_output()
            flat[k] = original
            numeric.reshape(-1)[k] = (up - down) / (2 * eps)
        checks.append(_compare(names[i], analytic, numeric, atol, rtol))

    report = GradcheckReport(checks, eps, atol, rtol)
    if raise_on_failure and not report.passed:
        raise GradcheckError(report)
    return report


def _check_tolerances(eps, atol, rtol):
    """eps must be a finite step > 0 (eps = 0 divides by zero); atol, rtol finite and >= 0."""
    for name, value, smallest in (("eps", eps, "> 0"), ("atol", atol, ">= 0"), ("rtol", rtol, ">= 0")):
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not is_number or not np.isfinite(value) or value < 0 or (name == "eps" and value == 0):
            raise ValueError(f"gradcheck: {name} must be a finite number {smallest}, got {value!r}"
                             + ("; 1e-6 suits float64" if name == "eps" else ""))


def _compare(name, analytic, numeric, atol, rtol):
    abs_error = np.abs(analytic - numeric)
    rel_error = abs_error / np.maximum(np.abs(numeric), 1e-12)
    excess = abs_error - (atol + rtol * np.abs(numeric))
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    return InputCheck(
        name=name, shape=analytic.shape,
        max_abs_error=float(abs_error.max(initial=0.0)),
        max_rel_error=float(rel_error.max(initial=0.0)),
        worst_index=tuple(int(k) for k in worst),
        analytic=float(analytic[worst]) if excess.size else 0.0,
        numeric=float(numeric[worst]) if excess.size else 0.0,
        passed=bool(np.all(excess <= 0)),
    )
