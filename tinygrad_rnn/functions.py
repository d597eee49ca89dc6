"""Differentiable primitive ops, one ``Function`` per op.

Each class reads like a row of a derivative table: ``forward`` computes the
value from NumPy arrays, ``backward`` turns the gradient of the output ``g``
into gradients of the inputs (the local chain rule), using what ``forward``
saved in ``ctx``. Nothing here knows about graphs: ``Function.apply`` in
``autograd.py`` does the bookkeeping.

Broadcasting: NumPy may stretch an input to the output's shape (a bias of
shape (H,) added to a batch (B, H)). Each copy of the stretched value
contributed to the output, so its gradient is the *sum* over the stretched
axes: ``unbroadcast`` does that sum.
"""
import math

import numpy as np

from .autograd import Function
from .kernels import reference
from .tensor import Tensor, axis_of


def unbroadcast(grad, shape):
    """Sum `grad` over the axes NumPy broadcast, so it has `shape` again."""
    if grad.shape == shape:
        return grad
    if grad.size == math.prod(shape):   # broadcasting only added axes of length 1 (a batch of one): no sum
        return grad.reshape(shape)
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return np.add.reduce(grad, axis=axes, keepdims=True).reshape(shape)


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _repeated(grad, shape):
    """`grad`, whose axes are those of `shape` or of length 1 (or none: a 0-d grad), repeated to
    `shape` without a copy: a read-only view that steps 0 bytes along the repeated axes, so a
    reduction's gradient costs nothing however big its input. np.broadcast_to makes the same
    view through a general iterator; this builds it directly from the strides."""
    if not grad.flags.c_contiguous:
        grad = grad.copy()
    strides = (0,) * len(shape) if grad.ndim == 0 else tuple(
        0 if n == 1 else step for n, step in zip(grad.shape, grad.strides))
    view = np.ndarray(shape, grad.dtype, grad, 0, strides)
    view.flags.writeable = False
    return view


def _expand_reduced(grad, axis, keepdims, ndim):
    """Re-insert the axes a reduction removed, so `grad` broadcasts to the input (the single
    value of a reduction over all axes broadcasts as it is)."""
    if keepdims or axis is None or ndim == 0:
        return grad
    return np.expand_dims(grad, _normalize_axes(axis, ndim))


# --------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------

class Add(Function):
    """c = a + b;   dc/da = 1, dc/db = 1"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.shapes
        return unbroadcast(g, a_shape), unbroadcast(g, b_shape)


class Sub(Function):
    """c = a - b;   dc/da = 1, dc/db = -1"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.shapes
        return unbroadcast(g, a_shape), unbroadcast(-g, b_shape)


class Mul(Function):
    """c = a * b;   dc/da = b, dc/db = a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)


class Div(Function):
    """c = a / b;   dc/da = 1/b, dc/db = -a/b^2"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return unbroadcast(g / b, a.shape), unbroadcast(-g * a / (b * b), b.shape)


class Neg(Function):
    """c = -a;   dc/da = -1"""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class PowScalar(Function):
    """c = a ** p for a constant p;   dc/da = p a^(p-1)"""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        p = ctx.exponent
        return g * p * a ** (p - 1)


class Pow(Function):
    """c = a ** b (a > 0 for db);   dc/da = b a^(b-1),  dc/db = c log a"""

    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved
        return (unbroadcast(g * b * a ** (b - 1), a.shape),
                unbroadcast(g * out * np.log(a), b.shape))


def _matmul_shape_rule(a, b):
    if a.ndim == 0 or b.ndim == 0:
        return "MatMul needs tensors with at least one dimension; use * for scalars"
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner_b:
        return (f"inner dimensions differ: A{a.shape} @ B{b.shape} needs "
                f"A.shape[-1] ({a.shape[-1]}) == B.shape[-2] ({inner_b})")
    return f"batch dimensions of A{a.shape} and B{b.shape} do not broadcast"


class MatMul(Function):
    """C = A @ B;   dL/dA = G @ B^T,  dL/dB = A^T @ G  (batched like np.matmul).

    Matrices (2-D A and B, the common case) are multiplied with ``ndarray.dot``:
    the same product as ``@``, which is a generalized ufunc whose dispatch costs
    as much again as multiplying the small matrices of one time step.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return a.dot(b) if a.ndim == b.ndim == 2 else a @ b
        except ValueError:  # NumPy refused: say which rule the shapes break
            raise ValueError(_matmul_shape_rule(a, b)) from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        if a.ndim == b.ndim == 2:  # the common case, without the bookkeeping below
            needs_a, needs_b = ctx.needs_input_grad   # x_t @ W: no product for the data x_t
            return (g.dot(b.T) if needs_a else None), (a.T.dot(g) if needs_b else None)
        # View vectors as matrices: a (K,) -> (1, K), b (K,) -> (K, 1).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g  # restore the axes the vector cases dropped (b's first: a 1-D @ 1-D g is 0-d)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


# --------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------

class Exp(Function):
    """c = e^a;   dc/da = c"""

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out


class Log(Function):
    """c = log a;   dc/da = 1/a"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / a


class Tanh(Function):
    """c = tanh a;   dc/da = 1 - c^2"""

    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * (1 - out * out)


class Sigmoid(Function):
    """c = 1 / (1 + e^-a);   dc/da = c (1 - c)"""

    @staticmethod
    def forward(ctx, a):
        out = reference.sigmoid(a)  # one pass, and e^-a never overflows in it
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out * (1 - out)


class ReLU(Function):
    """c = max(a, 0);   dc/da = 1 where a > 0, else 0"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return np.maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        (positive,) = ctx.saved
        return g * positive


class Abs(Function):
    """c = |a|;   dc/da = sign(a)"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * np.sign(a)


class Sqrt(Function):
    """c = sqrt a;   dc/da = 1 / (2c)"""

    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g / (2 * out)


class Clip(Function):
    """c = min(max(a, low), high);   dc/da = 1 inside [low, high], else 0"""

    @staticmethod
    def forward(ctx, a, low, high):
        ctx.save_for_backward((a >= (-np.inf if low is None else low))
                              & (a <= (np.inf if high is None else high)))
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved
        return g * inside


# --------------------------------------------------------------------------
# Reductions and normalisers
# --------------------------------------------------------------------------

class Sum(Function):
    """c = sum_i a_i;   dc/da_i = 1 (the gradient is copied back to every summand)"""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(np.add.reduce(a, axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return _repeated(_expand_reduced(g, ctx.axis, ctx.keepdims, len(ctx.shape)), ctx.shape)


class Mean(Function):
    """c = (1/n) sum_i a_i;   dc/da_i = 1/n"""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.count = a.size // out.size if out.size else 1  # n, the number of averaged values
        return out

    @staticmethod
    def backward(ctx, g):
        return _repeated(_expand_reduced(g / ctx.count, ctx.axis, ctx.keepdims, len(ctx.shape)), ctx.shape)


class Max(Function):
    """c = max_i a_i;   dc/da_i = 1 for the maximum (shared equally between ties)"""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        out = a.max(axis=axis, keepdims=True)
        is_max = a == out
        ctx.save_for_backward(is_max / is_max.sum(axis=axis, keepdims=True).astype(a.dtype))
        ctx.axis, ctx.keepdims = axis, keepdims
        return out if keepdims else np.asarray(out.squeeze(axis=axis))

    @staticmethod
    def backward(ctx, g):
        (share,) = ctx.saved
        return _expand_reduced(g, ctx.axis, ctx.keepdims, share.ndim) * share


class LogSumExp(Function):
    """c = log sum_i e^{a_i} (computed as m + log sum e^{a_i - m});   dc/da_i = softmax(a)_i"""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        m = a.max(axis=axis, keepdims=True)
        out = m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        return out if keepdims else np.asarray(out.squeeze(axis=axis))

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved
        return _expand_reduced(g, ctx.axis, ctx.keepdims, a.ndim) * np.exp(a - out)


class Softmax(Function):
    """s_i = e^{a_i} / sum_j e^{a_j};   dL/da = s * (g - sum_j g_j s_j)"""

    @staticmethod
    def forward(ctx, a, axis):
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """l_i = a_i - logsumexp(a);   dL/da = g - softmax(a) * sum_j g_j"""

    @staticmethod
    def forward(ctx, a, axis):
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g - np.exp(out) * g.sum(axis=ctx.axis, keepdims=True)


# --------------------------------------------------------------------------
# Shape and indexing (gradients are routed back, never changed)
# --------------------------------------------------------------------------

class Clone(Function):
    """c = a, in new memory;   dc/da = 1"""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    """c = a converted to another floating dtype;   the gradient is converted back"""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class Reshape(Function):
    """c = a with another shape (same elements, same order);   the gradient is g reshaped back"""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    """Reorder axes; the gradient is permuted back with the inverse permutation."""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a, axes):
        axes = tuple(reversed(range(a.ndim))) if axes is None else axes
        if sorted(ax % max(a.ndim, 1) for ax in axes) != list(range(a.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {a.ndim} axes")
        ctx.inverse = tuple(np.argsort([ax % a.ndim for ax in axes]))
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


def plain_index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (list, np.ndarray)) for i in parts)


def index_array(a, index):
    """a[index] as NumPy does it, with an IndexError that gives the tensor's shape."""
    try:
        return a[index]
    except IndexError as err:
        raise IndexError(f"Index: {err} (tensor shape {a.shape})") from None


class Index(Function):
    """c = a[index] (slices, ints, integer arrays);   the gradient is scattered back.

    With integer arrays the same element may be picked twice (an embedding
    lookup of a repeated word), so the scatter must *add*: np.add.at.
    """

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a, index):
        index = plain_index(index)
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return index_array(a, index)

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_advanced(ctx.index):
            np.add.at(grad, ctx.index, g)
        else:
            grad[ctx.index] = g
        return grad


class Concat(Function):
    """c = [a_1, a_2, ...] along `axis`;   each input gets its slice of g"""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, *arrays, axis):
        out = np.concatenate(arrays, axis=axis)
        ctx.axis = axis % out.ndim
        ctx.sizes = [a.shape[axis] for a in arrays]
        return out

    @staticmethod
    def backward(ctx, g):
        return pieces(g, ctx.sizes, ctx.axis)


class Split(Function):
    """c_1, c_2, ... = consecutive pieces of a along `axis`, of the given sizes;   a's gradient
    joins the pieces' gradients again (zeros for a piece nothing used)

    One node for all the pieces (as PyTorch's split): a node per piece would scatter each
    piece's gradient into zeros of a's whole shape and add them up."""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a, sizes, axis):
        ctx.axis = axis % a.ndim
        return pieces(a, sizes, ctx.axis)

    @staticmethod
    def backward(ctx, grads):
        return np.concatenate(grads, axis=ctx.axis)


def pieces(array, sizes, axis):
    """Views of consecutive pieces of `array` along `axis` (>= 0), of the given sizes."""
    before = (slice(None),) * axis   # the axes in front of `axis`, taken whole
    views, start = [], 0
    for size in sizes:
        views.append(array[before + (slice(start, start + size),)])
        start += size
    return tuple(views)


class Unbind(Function):
    """c_0, c_1, ... = a's slices at 0, 1, ... along `axis` (that axis removed), one output each;
    a's gradient stacks their gradients g_0, g_1, ... on that axis (zeros for a slice nothing used)

    What ``for row in x`` and ``x.unbind(dim)`` give. One node for all the slices, where
    taking x[t] one by one makes a node per slice, each scattering its gradient into an
    array of a's whole shape: T rows of a (T, B, H) output would cost T times T B H."""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        before = (slice(None),) * axis
        return tuple([a[before + (k, ...)] for k in range(a.shape[axis])])   # arrays, 0-d for a 1-d a

    @staticmethod
    def backward(ctx, grads):
        # np.array stacks arrays of one shape on a new first axis, without np.stack's Python per array
        return np.moveaxis(np.array(grads), 0, ctx.axis)


class Stack(Function):
    """c = stack(a_1, a_2, ...) on a new `axis`;   input k gets g's k-th slice"""

    moves_elements = True   # any dtype (see check_float_inputs)

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.axis, 0))


class Where(Function):
    """c = a where condition else b;   g goes to a where true, to b where false"""

    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        ctx.shapes = a.shape, b.shape
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.shapes
        zero = np.zeros((), dtype=g.dtype)
        return (unbroadcast(np.where(ctx.condition, g, zero), a_shape),
                unbroadcast(np.where(ctx.condition, zero, g), b_shape))


# --------------------------------------------------------------------------
# Multi-input helpers (the Tensor methods cover the single-input ops)
# --------------------------------------------------------------------------

def _tensor_list(op, tensors):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


def concat(tensors, axis=None, *, dim=None):
    """Join tensors along an existing axis (`axis` or PyTorch's `dim`, default 0).

    (B, H1) and (B, H2) joined on axis 1 -> (B, H1 + H2)
    """
    tensors = _tensor_list("concat", tensors)
    return Concat.apply(*tensors, axis=axis_of("concat", axis, dim, default=0))


cat = concat   # PyTorch's name


def stack(tensors, axis=None, *, dim=None):
    """Join tensors of one shape along a new axis (`axis` or `dim`, default 0):
    T tensors h_t (B, H) -> (T, B, H)."""
    tensors = _tensor_list("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return Stack.apply(*tensors, axis=axis_of("stack", axis, dim, default=0))


def split(x, sections, axis=None, *, dim=None):
    """Split `x` along an axis; returns a list of Tensors.

    `sections` a list: the sizes of the pieces (they must add up to the axis length).
    `sections` an int: its meaning follows the keyword, as in each library:
      - with `axis` (or positionally, NumPy's np.split): the number of equal pieces;
      - with `dim` (PyTorch's torch.split): the size of each piece, the last
        one smaller if the length is not a multiple.
    x (B, 12): split(x, 3, axis=1) -> three (B, 4);  split(x, 3, dim=1) -> four (B, 3).
    """
    pytorch = dim is not None
    axis = axis_of("split", axis, dim, default=0)
    length = x.shape[axis]
    if isinstance(sections, (int, np.integer)) and pytorch:
        if sections <= 0:
            raise ValueError(f"split: the piece size must be a positive integer, got {sections}")
        sizes = [min(sections, length - start) for start in range(0, length, sections)] or [0]
    elif isinstance(sections, (int, np.integer)):
        if sections <= 0 or length % sections:
            raise ValueError(f"split: axis {axis} of shape {x.shape} cannot be cut into "
                             f"{sections} equal pieces")
        sizes = [length // sections] * sections
    else:
        sizes = list(sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} "
                             f"of shape {x.shape} has length {length}")
    return list(Split.apply(x, sizes=sizes, axis=axis))


def chunk(x, chunks, axis=None, *, dim=None):
    """PyTorch's chunk: `x` cut along an axis into `chunks` pieces of ceil(length / chunks)
    each, the last one smaller (so there may be fewer pieces).
    gates (B, 4H): i, f, g, o = chunk(gates, 4, dim=1) -> four (B, H)."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    axis = axis_of("chunk", axis, dim, default=0)
    return split(x, max(1, -(-x.shape[axis] // chunks)), dim=axis)


def unbind(x, axis=None, *, dim=None):
    """The slices of `x` along an axis (default 0), that axis removed, as a tuple; one graph
    node for all of them (`Unbind`). out (T, B, H): unbind(out) -> T tensors (B, H)."""
    axis = axis_of("unbind", axis, dim, default=0)
    if not -x.ndim <= axis < x.ndim:
        raise IndexError(f"unbind: axis {axis} is out of range for a tensor of shape {x.shape}")
    return Unbind.apply(x, axis=axis % x.ndim)


def where(condition, a, b):
    """Elementwise choice: a where `condition` is true, else b (condition is not differentiated)."""
    condition = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    if isinstance(a, Tensor):
        b = a._operand(b, "where")
    elif isinstance(b, Tensor):
        a = b._operand(a, "where")
    else:
        a, b = Tensor(a), Tensor(b)
    return Where.apply(a, b, condition=condition)


# --------------------------------------------------------------------------
# Module-level forms of the Tensor methods (PyTorch's torch.tanh(x), ...)
# --------------------------------------------------------------------------

def exp(x):
    """e^x elementwise, same shape as x."""
    return Exp.apply(x)


def log(x):
    """Natural logarithm elementwise, same shape as x."""
    return Log.apply(x)


def tanh(x):
    """tanh elementwise, same shape as x."""
    return Tanh.apply(x)


def sigmoid(x):
    """1 / (1 + e^-x) elementwise, same shape as x."""
    return Sigmoid.apply(x)


def relu(x):
    """max(x, 0) elementwise, same shape as x."""
    return ReLU.apply(x)


def softmax(x, axis=None, *, dim=None):
    """Softmax along `axis` or `dim` (default -1, the last); same shape as x."""
    return x.softmax(axis, dim=dim)


def log_softmax(x, axis=None, *, dim=None):
    """log(softmax(x)) along `axis` or `dim` (default -1), computed stably; same shape as x."""
    return x.log_softmax(axis, dim=dim)
