"""Reverse-mode automatic differentiation: the whole engine in one file.

Every differentiable operation is a ``Function`` subclass with two static
methods that sit side by side::

    forward(ctx, *arrays, **params) -> array       # compute the value
    backward(ctx, grad) -> (grad_input, ...)       # local chain rule

``Function.apply`` runs ``forward`` on the inputs' NumPy arrays and, when a
gradient is needed, remembers *how* the output was made: the ``Context``
holds the function, the parent tensors and whatever ``forward`` saved.
Those contexts, linked through their parents, are the computation graph.

For a recurrent network the graph is the *unrolled* network: the same weight
tensor is a parent of a node at every time step. Backpropagation through time
therefore needs nothing special: ``backward`` visits the graph in reverse
topological order and *adds* the gradient a shared weight receives from each
step, which is exactly dL/dW = sum_t dL_t/dW.
"""
import itertools
import weakref
from contextlib import contextmanager

import numpy as np

from .tensor import Tensor, check_float_inputs


class _State:
    """Global switches read on every op (kept in one place so they are easy to find)."""

    grad_enabled = True     # False inside `no_grad()`: no graph is recorded
    anomaly = False         # True inside `detect_anomaly()`: check for NaN/Inf
    time_step = None        # set by `time_step(t)`: stored on each node for viz


_creation_counter = itertools.count()


class AnomalyError(FloatingPointError):
    """Raised by `detect_anomaly` where the first NaN or Inf appears."""


class Context:
    """What one node of the graph remembers for its backward pass.

    `forward` may store anything else it needs on the context too (ctx.axis,
    ctx.shapes...): those go to the instance's __dict__.
    """

    __slots__ = ("fn", "parents", "saved", "step", "creation_number", "freed", "outputs", "__dict__")

    def __init__(self, fn, parents):
        self.fn = fn                  # the Function subclass that made the output
        self.parents = parents        # input tensors, in `forward` argument order
        self.saved = ()               # arrays `forward` keeps for `backward`
        self.step = _State.time_step  # time step that created the node, or None
        self.creation_number = next(_creation_counter)  # orders the graph for backward
        self.freed = False
        self.outputs = None           # for an op with several outputs: (weakref, shape, dtype) each

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @property
    def needs_input_grad(self):
        """One bool per input: does its gradient matter? (backward may skip the others)"""
        return tuple([p.requires_grad for p in self.parents])

    def release(self):
        """Drop saved arrays and parents (after backward without retain_graph)."""
        self.saved = ()
        self.parents = ()
        self.outputs = None
        self.freed = True

    def describe(self):
        return self.fn.__name__ + ("" if self.step is None else f" (time step {self.step})")


class Function:
    """Base class of every differentiable op; subclasses define forward/backward.

    Most ops have one output. An op may return a tuple of arrays instead (a
    whole LSTM sequence gives out, h_n and c_n): `apply` then returns a tuple
    of Tensors, and `backward` receives a tuple with one gradient per output
    (zeros for an output that nothing used).
    """

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors `inputs` (all float, one dtype); record the node."""
        check_float_inputs(cls, inputs)
        needs_grad = False  # a plain loop: for one to three inputs, faster than any(...)
        if _State.grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    needs_grad = True
                    break
        ctx = Context(cls, inputs if needs_grad else ())
        try:
            out = cls.forward(ctx, *[t.data for t in inputs], **params)
        except ValueError as err:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ValueError(f"{cls.__name__}: cannot apply to input shapes {shapes}: {err}") from None
        if _State.anomaly:
            _check_forward(ctx, inputs, out)
        if not isinstance(out, tuple):
            return Tensor._wrap(out, needs_grad, ctx if needs_grad else None)
        results = tuple(Tensor._wrap(o, needs_grad, ctx if needs_grad else None) for o in out)
        if needs_grad:  # weak references: the outputs own the node, not the other way round
            ctx.outputs = tuple((weakref.ref(r), r.shape, r.dtype) for r in results)
        return results


def _check_forward(ctx, inputs, out):
    """Blame the right place: an input that is already NaN/Inf came from data or a leaf
    (an op that made it would have been caught), otherwise this op made it."""
    for k, t in enumerate(inputs):
        _check_finite(t.data, f"input {k} of {ctx.describe()} (shape {t.shape}) already contains "
                              f"{{bad}}: it comes from data or a leaf tensor, not from an op")
    for o in out if isinstance(out, tuple) else (out,):
        _check_finite(o, f"{ctx.describe()} produced {{bad}} in its forward output")


def _check_finite(array, message):
    if not np.all(np.isfinite(array)):
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise AnomalyError("detect_anomaly: " + message.format(bad=bad))


# --------------------------------------------------------------------------
# Context managers
# --------------------------------------------------------------------------

@contextmanager
def no_grad():
    """Run ops without recording the graph (evaluation, sampling, optimizer steps)."""
    previous, _State.grad_enabled = _State.grad_enabled, False
    try:
        yield
    finally:
        _State.grad_enabled = previous


@contextmanager
def detect_anomaly():
    """Raise `AnomalyError` naming the op (and time step) where NaN/Inf first appears."""
    previous, _State.anomaly = _State.anomaly, True
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        _State.anomaly = previous


@contextmanager
def time_step(t):
    """Tag every node created inside with time step `t` (shown by viz and anomaly errors)."""
    previous, _State.time_step = _State.time_step, t
    try:
        yield
    finally:
        _State.time_step = previous


def is_grad_enabled():
    return _State.grad_enabled


def is_anomaly_enabled():
    """True inside `detect_anomaly()` (ops that check their own arrays read it)."""
    return _State.anomaly


# --------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------

def topological_order(root, include_constants=False):
    """Every tensor `root` depends on, each after the tensors it was computed from.

    No clever search is needed for the order: an op's output is always created
    after its inputs, so sorting the graph's nodes by creation number
    (``Context.creation_number``) is a topological order; leaves (weights, inputs) have
    no parents and come first. The walk that finds the graph uses a stack, not
    recursion: an unrolled graph over 10,000 steps is deeper than Python's
    recursion limit. Only tensors that require grad are collected unless
    `include_constants` (viz draws inputs such as x_t too; backward has no use
    for them).
    """
    seen, stack = {root: None}, [root]   # a dict, not a set: it keeps a stable order
    while stack:
        ctx = stack.pop()._ctx
        if ctx is not None:
            for parent in ctx.parents:
                if parent not in seen and (include_constants or parent.requires_grad):
                    seen[parent] = None
                    stack.append(parent)
    leaves = [t for t in seen if t._ctx is None]
    return leaves + sorted((t for t in seen if t._ctx is not None), key=_creation_index)


def _creation_index(tensor):
    return tensor._ctx.creation_number


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into `.grad` of every leaf that requires it."""
    if root._ctx is not None and root._ctx.freed:
        raise RuntimeError(_freed_message(root._ctx))
    grads = {root: grad}   # Tensor keeps identity hashing (it defines no __eq__)
    check_finite = _State.anomaly  # read once: the flag cannot change during backward
    for tensor in reversed(topological_order(root)):
        g = grads.pop(tensor, None)
        if g is None:
            continue
        ctx = tensor._ctx
        if ctx is None or tensor._retains_grad:
            _accumulate_grad(tensor, g)
        if ctx is None:
            continue
        if ctx.freed:
            raise RuntimeError(_freed_message(ctx))
        if ctx.outputs is not None:
            g = _output_grads(ctx, tensor, g, grads)
        parent_grads = ctx.fn.backward(ctx, g)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        for parent, pg in zip(ctx.parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            if check_finite:
                _check_finite(pg, f"{ctx.describe()} produced {{bad}} in its backward pass")
            grads[parent] = pg if parent not in grads else grads[parent] + pg
        if not retain_graph:
            ctx.release()


def _accumulate_grad(tensor, g):
    tensor.grad = g.copy() if tensor.grad is None else tensor.grad + g


def _output_grads(ctx, tensor, g, grads):
    """The gradients of every output of a several-output node, as one tuple.

    All users of all outputs were created after the node, so by the time the
    first output is reached in reverse creation order every output's gradient
    is complete: take them all now (the node runs its backward once), with
    zeros for outputs that nothing used.
    """
    result = []
    for ref, shape, dtype in ctx.outputs:
        out = ref()
        if out is tensor:
            result.append(g)
            continue
        g_out = None if out is None else grads.pop(out, None)
        if g_out is not None and out._retains_grad:
            _accumulate_grad(out, g_out)
        result.append(np.zeros(shape, dtype) if g_out is None else g_out)
    return tuple(result)


def _freed_message(ctx):
    return (f"backward through {ctx.fn.__name__} a second time: its saved values were freed "
            "after the first backward. Pass retain_graph=True to the first .backward() call "
            "if you need to backpropagate through the same graph twice.")
