"""The Tensor: a NumPy array plus what autograd needs to differentiate it.

``t.data`` and ``t.grad`` are plain ``numpy.ndarray`` objects, so a student can
print, slice and plot them at any moment. ``t._ctx`` is the graph node that
produced ``t`` (``None`` for a leaf such as a weight or an input).

Operators (``+ - * / ** @``, indexing, ``.tanh()``, ``.sum()``...) all go
through the ``Function`` classes in ``functions.py``; this file only wires
them up and converts Python numbers and arrays into Tensors.
"""
import numpy as np

DEFAULT_DTYPE = np.float32

_rng = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the single random generator used by randn/rand, init and dropout."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    """The library's random generator (a `numpy.random.Generator`)."""
    return _rng


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    array = np.asarray(data)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} "
                        f"{data!r:.60}; expected numbers, nested lists of numbers or an ndarray")
    return array.astype(DEFAULT_DTYPE) if array.dtype.kind == "f" else array


class Tensor:
    """A differentiable n-dimensional array.

    Tensor(data, requires_grad=False, dtype=None)

    - Python floats and lists become float32 (the library default); NumPy
      arrays keep their dtype, so float64 arrays stay float64 (gradcheck).
    - Integer tensors are allowed (indices, labels) but cannot require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retains_grad", "_version", "__weakref__")
    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self._version = 0   # bumped by every in-place change the library makes (optimizer steps...)
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _wrap(cls, array, requires_grad, ctx):
        """Fast constructor used by Function.apply (no conversion or checks)."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx, t._retains_grad = array, None, requires_grad, ctx, False
        t._version = 0
        return t

    # ---- basic attributes ------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extras = ""
        if self.data.dtype != DEFAULT_DTYPE:
            extras += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extras += f", grad_fn={self._ctx.fn.__name__}"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    def item(self):
        return self.data.item()

    def numpy(self):
        return self.data

    def detach(self):
        """The same values, cut from the graph (truncated BPTT carries state this way)."""
        return Tensor._wrap(self.data, False, None)

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}; create it with dtype=np.float32 or np.float64")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep `.grad` for this non-leaf tensor too (e.g. a hidden state h_t)."""
        self._retains_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor; leaves' `.grad` are *accumulated*."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had "
                               "requires_grad=True, or it was computed under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be omitted only for a single-element tensor, "
                                   f"this one has shape {self.shape}; reduce it first "
                                   f"(e.g. loss.sum().backward()) or pass grad= of shape {self.shape}")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")
        autograd.backward(self, grad, retain_graph)

    # ---- arithmetic --------------------------------------------------------
    def _operand(self, other, op):
        """Turn the other side of a binary op into a Tensor of our dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, int, float, np.number)):
            return Tensor._wrap(np.asarray(other, dtype=self.data.dtype), False, None)
        if isinstance(other, (list, tuple, np.ndarray)):
            array = np.asarray(other)
            if array.dtype.kind in "biuf":
                return Tensor._wrap(array.astype(self.data.dtype, copy=False), False, None)
        raise TypeError(f"{op}: cannot combine a Tensor of shape {self.shape} with "
                        f"{type(other).__name__}; expected a Tensor, a number or a numeric array")

    def __add__(self, other):
        return F.Add.apply(self, self._operand(other, "Add"))

    def __radd__(self, other):
        return F.Add.apply(self._operand(other, "Add"), self)

    def __sub__(self, other):
        return F.Sub.apply(self, self._operand(other, "Sub"))

    def __rsub__(self, other):
        return F.Sub.apply(self._operand(other, "Sub"), self)

    def __mul__(self, other):
        return F.Mul.apply(self, self._operand(other, "Mul"))

    def __rmul__(self, other):
        return F.Mul.apply(self._operand(other, "Mul"), self)

    def __truediv__(self, other):
        return F.Div.apply(self, self._operand(other, "Div"))

    def __rtruediv__(self, other):
        return F.Div.apply(self._operand(other, "Div"), self)

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float)):
            return F.PowScalar.apply(self, exponent=exponent)
        return F.Pow.apply(self, self._operand(exponent, "Pow"))

    def __rpow__(self, base):
        return F.Pow.apply(self._operand(base, "Pow"), self)

    def __neg__(self):
        return F.Neg.apply(self)

    def __matmul__(self, other):
        return F.MatMul.apply(self, self._operand(other, "MatMul"))

    def __rmatmul__(self, other):
        return F.MatMul.apply(self._operand(other, "MatMul"), self)

    # Comparisons give boolean masks; they are not differentiable. There is
    # deliberately no __eq__: backward uses Tensors as dict keys (identity hash).
    def _compare(self, other, numpy_op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(numpy_op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    # ---- elementwise functions -------------------------------------------
    def exp(self):
        return F.Exp.apply(self)

    def log(self):
        return F.Log.apply(self)

    def tanh(self):
        return F.Tanh.apply(self)

    def sigmoid(self):
        return F.Sigmoid.apply(self)

    def relu(self):
        return F.ReLU.apply(self)

    def abs(self):
        return F.Abs.apply(self)

    def sqrt(self):
        return F.Sqrt.apply(self)

    def clip(self, low, high):
        return F.Clip.apply(self, low=low, high=high)

    # ---- reductions --------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return F.Max.apply(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis=-1):
        return F.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        return F.LogSoftmax.apply(self, axis=axis)

    def logsumexp(self, axis=None, keepdims=False):
        return F.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    # ---- shape -------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return F.Reshape.apply(self, shape=tuple(shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return F.Permute.apply(self, axes=tuple(axes) if axes else None)

    permute = transpose

    def __getitem__(self, index):
        return F.Index.apply(self, index=index)


# --------------------------------------------------------------------------
# Creation helpers
# --------------------------------------------------------------------------

def tensor(data, requires_grad=False, dtype=None):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, requires_grad=False, dtype=DEFAULT_DTYPE):
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=DEFAULT_DTYPE):
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def randn(*shape, requires_grad=False, dtype=DEFAULT_DTYPE):
    """Standard normal samples from the library generator (see `manual_seed`)."""
    return Tensor(_rng.standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def rand(*shape, requires_grad=False, dtype=DEFAULT_DTYPE):
    """Uniform samples in [0, 1) from the library generator."""
    return Tensor(_rng.random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def arange(*args, dtype=None, requires_grad=False):
    """np.arange as a Tensor; like tr.tensor, float ranges are float32 unless dtype is given."""
    data = np.arange(*args, dtype=dtype)
    if dtype is None and data.dtype.kind == "f":
        data = data.astype(DEFAULT_DTYPE)
    return Tensor(data, requires_grad=requires_grad)


def check_sizes(op, **sizes):
    """ValueError naming `op` unless every size is a positive integer (hidden_size=0, n=-1...)."""
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")


def _shape(shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if any(not isinstance(n, (int, np.integer)) or n < 0 for n in shape):
        raise ValueError(f"shape must be non-negative integers, got {shape}")
    return shape


def check_float_inputs(fn, inputs):
    """Every differentiable op takes Tensors of one floating dtype: say so clearly."""
    try:  # the fast path every op takes: compare dtype objects by identity
        dtype = inputs[0].data.dtype
        if dtype.kind == "f":
            for t in inputs:
                if t.data.dtype is not dtype:
                    break
            else:
                return
    except AttributeError:
        pass
    _raise_input_error(getattr(fn, "__name__", fn), inputs)


def _raise_input_error(op, inputs):
    """The slow path of `check_float_inputs`: find the offending input and explain."""
    dtype = None
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensor inputs, got {type(t).__name__}; "
                            f"wrap it with tr.tensor(...)")
        if t.data.dtype.kind != "f":
            raise TypeError(f"{op}: needs floating-point tensors, got dtype {t.data.dtype} "
                            f"(shape {t.shape}); convert with tr.tensor(x, dtype=np.float32)")
        if dtype is None:
            dtype = t.data.dtype
        elif t.data.dtype != dtype:
            raise TypeError(f"{op}: inputs have different dtypes {dtype} and {t.data.dtype} "
                            f"(shapes {inputs[0].shape} and {t.shape}); convert one so both match")


# Imported last: both modules need `Tensor` defined above.
from . import autograd, functions as F  # noqa: E402
