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

The ~120 lines after the imports are the engine: ``Context``,
``Function.apply``, ``topological_order`` (the graph as a list, in the order
``backward`` visits it reversed; viz draws it) and ``backward``. Everything
else is a hook the engine calls in one line: queueing a tensor for backward,
checks that backward may use a node (freed graph, inputs changed in place),
``detect_anomaly``'s NaN/Inf checks, gradient assembly for an op with several
outputs, and the garbage-collector pause.

Garbage collection. A graph is many small Python objects (per op a Tensor,
a Context and a tuple of parents). Python's cyclic collector looks at new
objects in a young pass, looks at the survivors again in a middle pass
(generation 1) after every tenth young pass, and makes a full pass over all
live objects (generation 2) each time their number has grown by a quarter.
A growing graph survives every pass: the middle passes walk each node a
second time, and the full passes walk the whole graph again and again, so
the cost per op would rise with T. The graph needs no cyclic collection (it
has no reference cycles: a node refers to its several outputs weakly), so
from the first recorded op until ``backward`` returns or that op's node is
dropped the engine postpones the middle and full passes, and it switches
the collector off during ``backward``. The user's settings come back on
every exit path (errors and Ctrl-C too), a collector the user switched off
stays off, and the young passes run throughout: a cycle that user code
makes and drops meanwhile is still freed at once, one that outlives a young
pass when the graph is gone.
"""
import gc
import heapq
import itertools
import weakref
import zlib
from contextlib import contextmanager

import numpy as np

from .tensor import Tensor, check_float_inputs


class Context:
    """What one node of the graph remembers for its backward pass (`forward` may
    store more on it too: ctx.axis, ctx.shapes...)."""

    __slots__ = ("fn", "parents", "saved", "step", "creation_number", "freed",
                 "outputs", "checksums", "__dict__", "__weakref__")

    def __init__(self, fn, parents):
        self.fn = fn                  # the Function subclass that made the output
        self.parents = parents        # input tensors, in `forward` argument order
        self.saved = ()               # arrays `forward` keeps for `backward`
        self.step = _State.time_step  # time step that created the node, or None
        self.creation_number = next(_creation_counter)  # orders the graph for backward
        self.freed = False            # True once backward has released what the node kept
        self.outputs = None           # for an op with several outputs: (weakref, shape, dtype) each
        self.checksums = None         # of the saved arrays, under detect_anomaly only

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @property
    def needs_input_grad(self):
        """One bool per input: does its gradient matter? (backward may skip the others)"""
        return tuple([p.requires_grad for p in self.parents])


class Function:
    """Base class of every differentiable op; subclasses define forward/backward.
    An op with several outputs (an LSTM sequence: out, h_n, c_n) returns a tuple
    of arrays; its `backward` then receives one gradient per output."""

    moves_elements = False   # True: the op only moves elements, so it takes any dtype
    new_grads = False        # True: backward returns new arrays that share no memory with each other
                             # or anything else, so a leaf may keep one as its .grad (no copy)

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
        needs_grad = _State.grad_enabled and _any_requires_grad(inputs)
        ctx = Context(cls, inputs if needs_grad else ())
        out = _run_forward(ctx, inputs, params)
        if not needs_grad:
            ctx = None
        elif _Collector.user_old_thresholds is None:
            _pause_old_collections(ctx)
        if isinstance(out, tuple):
            return _wrap_outputs(ctx, out)
        return Tensor._wrap(out, needs_grad, ctx)


def topological_order(root, include_constants=False):
    """Every tensor `root` depends on, each after the tensors it was computed from.

    An op's output is created after its inputs, so sorting by creation number is
    a topological order; leaves come first. A stack, not recursion: an unrolled
    graph of 10,000 steps is deeper than Python's recursion limit. Constants
    (inputs such as x_t) only with `include_constants` (viz draws them).
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
    return leaves + sorted((t for t in seen if t._ctx is not None), key=_creation_number)


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into `.grad` of every leaf that requires it.

    The nodes are visited newest first, which is reverse topological order:
    every user of a tensor was created after it, so when a tensor's turn comes
    all of its gradient has arrived. The tensors waiting for their turn sit in
    a heap keyed by creation number, so the walk finds the order as it goes,
    with no pass over the whole graph before it.
    """
    with _collector_off():
        if _State.anomaly:
            _check_finite(grad, "the gradient passed to backward() contains {bad}")
        grads = {root: grad}   # keyed by tensor: Tensors hash by identity
        waiting, leaves = [], {}   # leaves: leaf -> may it keep its gradient array? (see _accumulate_grad)
        _wait_for_grad(root, waiting, leaves, owned=False)
        while waiting:
            tensor = heapq.heappop(waiting)[-1]
            g = grads.pop(tensor, None)
            if g is None:   # a sibling output took it (see _output_grads)
                continue
            ctx = tensor._ctx
            if tensor._retains_grad:
                _accumulate_grad(tensor, g)
            _check_usable(ctx)
            if ctx.outputs is not None:
                g = _output_grads(ctx, tensor, g, grads)
            parent_grads = _as_tuple(ctx.fn.backward(ctx, g))
            if _State.anomaly:
                _check_backward(ctx, parent_grads)
            for parent, pg in zip(ctx.parents, parent_grads):
                if pg is not None and parent.requires_grad:
                    if parent in grads:
                        grads[parent] = grads[parent] + pg
                    else:
                        grads[parent] = pg
                        _wait_for_grad(parent, waiting, leaves, ctx.fn.new_grads)
            if not retain_graph:
                _release(ctx)
        for leaf, owned in leaves.items():
            _accumulate_grad(leaf, grads.pop(leaf), owned)


# --------------------------------------------------------------------------
# Switches read by the engine
# --------------------------------------------------------------------------

class _State:
    """Global switches read on every op (kept in one place so they are easy to find)."""

    grad_enabled = True     # False inside `no_grad()`: no graph is recorded
    anomaly = False         # True inside `detect_anomaly()`: check for NaN/Inf
    time_step = None        # set by `time_step(t)`: stored on each node for viz
    last_change = -1        # creation number `bump_version` gave the latest in-place change


_creation_counter = itertools.count()


def _creation_number(tensor):
    return tensor._ctx.creation_number


def _describe(ctx):
    """The op's name and, when tagged, its time step: 'Tanh (time step 3)'."""
    return ctx.fn.__name__ + ("" if ctx.step is None else f" (time step {ctx.step})")



# --------------------------------------------------------------------------
# Hooks of Function.apply: the forward call, several outputs
# --------------------------------------------------------------------------

def _any_requires_grad(inputs):
    """Does any input require grad? Then the output does too, and the node is recorded."""
    for t in inputs:
        if t.requires_grad:
            return True
    return False


def _run_forward(ctx, inputs, params):
    """`ctx.fn.forward` on the inputs' arrays; a shape error names the op and the shapes."""
    try:
        out = ctx.fn.forward(ctx, *[t.data for t in inputs], **params)
    except ValueError as err:
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise ValueError(f"{ctx.fn.__name__}: cannot apply to input shapes {shapes}: {err}") from None
    if _State.anomaly:
        _check_forward(ctx, inputs, out)
    return out


def _wrap_outputs(ctx, arrays):
    """One Tensor per output array. The node refers to its outputs weakly: the
    outputs own the node, not the other way round."""
    results = tuple([Tensor._wrap(a, ctx is not None, ctx) for a in arrays])
    if ctx is not None:
        ctx.outputs = tuple([(weakref.ref(r), r.shape, r.dtype) for r in results])
    return results


# --------------------------------------------------------------------------
# Hooks of backward: may the node be used, several outputs, accumulation
# --------------------------------------------------------------------------

def _wait_for_grad(tensor, waiting, leaves, owned):
    """Queue a tensor that has received its first gradient: a leaf collects its
    gradient at the end (`owned`: the array was made for it alone); an op's output
    waits in the heap `waiting`, newest first (the id breaks ties between outputs
    of one node, which share a number)."""
    if tensor._ctx is None:
        leaves[tensor] = owned
    else:
        heapq.heappush(waiting, (-tensor._ctx.creation_number, id(tensor), tensor))


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _accumulate_grad(tensor, g, owned=False):
    """tensor.grad += g. A first gradient is copied, since the array may be shared (Add's
    backward gives one g to both of its inputs), unless it is `owned`: made for this tensor
    alone by a ``new_grads`` op, as a fused LSTM's dx and dW are. PyTorch likewise keeps a
    gradient that nothing else refers to. The result is always an ndarray: NumPy's arithmetic
    on 0-d arrays gives scalars, which in-place code (clip_grad_norm_'s g *= scale) cannot change."""
    if tensor.grad is not None:
        g = tensor.grad + g
    elif not owned:
        g = g.copy()
    tensor.grad = np.asarray(g)


def _release(ctx):
    """Drop what the node kept for backward (after backward without retain_graph)."""
    ctx.saved = ctx.parents = ()
    ctx.checksums = ctx.outputs = None
    ctx.freed = True


def _check_usable(ctx):
    """Backward through a node needs what forward saved, still there and unchanged.

    Backward uses arrays saved at forward time, often the inputs' own memory
    (MatMul keeps W itself). If `opt.step()` updated W in between, the
    gradient would be computed with the new W: silently wrong. Every in-place
    change the library makes goes through `bump_version`, which numbers it
    from the same counter as the nodes: an input changed after this node was
    built has a later number than the node. Writing into `.data`
    with NumPy directly bumps nothing and cannot be seen here; under
    `detect_anomaly()` a checksum of every saved array catches it too.
    """
    if ctx.freed:
        raise RuntimeError(_freed_message(ctx))
    if _State.last_change > ctx.creation_number:   # something changed in place since the node was built
        for k, parent in enumerate(ctx.parents):
            if parent._changed_at > ctx.creation_number:
                raise RuntimeError(_stale_message(ctx, k, parent))
    if ctx.checksums is not None:
        _check_checksums(ctx)


def _freed_message(ctx):
    return (f"backward through {ctx.fn.__name__} a second time: its saved values were freed "
            "after the first backward. Pass retain_graph=True to the first .backward() call "
            "if you need to backpropagate through the same graph twice.")


def _stale_message(ctx, k, parent):
    kind = " (a leaf, e.g. a parameter)" if parent._ctx is None else ""
    return (f"backward through {_describe(ctx)}: input {k} of shape {parent.shape}{kind} was "
            f"changed in place after the forward pass (it is now at version {parent._version}), "
            "so the values saved for backward are stale. Build the graph again after "
            "opt.step(), or call backward before step.")


def _check_checksums(ctx):
    for k, (array, checksum) in enumerate(zip(ctx.saved, ctx.checksums)):
        if _checksum(array) != checksum:
            raise RuntimeError(
                f"detect_anomaly: backward through {_describe(ctx)}: saved array {k} of shape "
                f"{array.shape} was changed after the forward pass (written into .data directly?), "
                "so the gradient would be wrong. Change tensors only between backward and the next "
                "forward.")


def _checksum(array):
    """A cheap fingerprint of an array's bytes (None for what is not an array)."""
    if not isinstance(array, np.ndarray):
        return None
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


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


# --------------------------------------------------------------------------
# detect_anomaly's checks
# --------------------------------------------------------------------------

class AnomalyError(FloatingPointError):
    """Raised by `detect_anomaly` where the first NaN or Inf appears."""


def _check_forward(ctx, inputs, out):
    """Blame the right place: an input that is already NaN/Inf came from data or a leaf
    (an op that made it would have been caught), otherwise this op made it. Also
    fingerprint the saved arrays, so backward can tell if they were overwritten."""
    for k, t in enumerate(inputs):
        _check_finite(t.data, f"input {k} of {_describe(ctx)} (shape {t.shape}) already contains "
                              f"{{bad}}: it comes from data or a leaf tensor, not from an op")
    for o in _as_tuple(out):
        _check_finite(o, f"{_describe(ctx)} produced {{bad}} in its forward output")
    if ctx.parents:
        ctx.checksums = [_checksum(a) for a in ctx.saved]


def _check_backward(ctx, parent_grads):
    for parent, pg in zip(ctx.parents, parent_grads):
        if pg is not None and parent.requires_grad:
            _check_finite(pg, f"{_describe(ctx)} produced {{bad}} in its backward pass (the gradient of "
                              f"its input of shape {np.shape(pg)})")


def _check_finite(array, message):
    """Raise AnomalyError with `message` if `array` holds NaN/Inf, saying where the first one is."""
    finite = np.isfinite(array)
    if not np.all(finite):
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        bad = "NaN" if np.isnan(np.asarray(array)[first]) else "Inf"
        where = f"; first at index {list(first)}" if first else ""
        raise AnomalyError("detect_anomaly: " + message.format(bad=bad) + where)


# --------------------------------------------------------------------------
# The garbage-collector pause (see the module docstring)
# --------------------------------------------------------------------------

_NEVER = 2**30   # a threshold that is never reached


class _Collector:
    """The pause in progress: the user's thresholds for generations 1 and 2, and
    what ends the pause if the graph is dropped without a backward (a `weakref.finalize`)."""

    user_old_thresholds = None   # None: no pause in progress
    end_when_dropped = None


def _pause_old_collections(ctx):
    """Postpone the collector's passes over older objects while the graph that `ctx` starts is alive."""
    young, middle, full = gc.get_threshold()
    _Collector.user_old_thresholds = middle, full
    gc.set_threshold(young, _NEVER, _NEVER)
    _Collector.end_when_dropped = weakref.finalize(ctx, _resume_old_collections)
    _Collector.end_when_dropped.atexit = False


def _resume_old_collections():
    """Give the user back their thresholds for generations 1 and 2 (unless they changed them meanwhile).

    A collection can run inside this function and drop the paused graph, calling
    it again: so the pause is taken out of `_Collector` before anything else."""
    user_old, _Collector.user_old_thresholds = _Collector.user_old_thresholds, None
    finalizer, _Collector.end_when_dropped = _Collector.end_when_dropped, None
    if finalizer is not None:
        finalizer.detach()
    if user_old is None:
        return
    young, middle, full = gc.get_threshold()
    if (middle, full) == (_NEVER, _NEVER):
        gc.set_threshold(young, *user_old)


@contextmanager
def _collector_off():
    """The collector off while backward walks and frees the graph; then the user's settings back."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        _resume_old_collections()


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
    """Raise `AnomalyError` naming the op (and time step) where NaN/Inf first appears.

    Also checksums every array saved for backward, so a direct NumPy write
    into a tensor's `.data` between forward and backward (invisible to the
    version counter) is reported instead of giving a wrong gradient.
    """
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


def bump_version(tensor):
    """Record that the library changed `tensor.data` in place (an optimizer step,
    load_state_dict): backward then refuses the graph nodes built before it that
    use `tensor`. `tensor._version` counts its changes, as in PyTorch."""
    tensor._version += 1
    tensor._changed_at = _State.last_change = next(_creation_counter)


def is_grad_enabled():
    return _State.grad_enabled


def is_anomaly_enabled():
    """True inside `detect_anomaly()` (ops that check their own arrays read it)."""
    return _State.anomaly
