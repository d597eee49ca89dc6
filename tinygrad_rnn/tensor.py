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


def check_dtype(op, dtype):
    """The dtype as a `numpy.dtype`, or a TypeError naming `op` if the library cannot compute in it.

    Floating point means float32 or float64 (the kernels are compiled for
    those two); integers and bools are allowed for indices, labels and masks.
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype; use np.float32 or np.float64") from None
    if dtype.kind in "iub" or dtype in (np.float32, np.float64):
        return dtype
    raise TypeError(f"{op}: dtype {dtype} is not supported; use np.float32 (the default) or "
                    f"np.float64 (for gradient checks), or an integer dtype for indices")


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    try:
        array = np.array(data, dtype=dtype) if dtype is not None else np.asarray(data)
    except ValueError as err:
        if "inhomogeneous" not in str(err) and "sequence" not in str(err):
            raise
        raise ValueError("tensor: the nested lists have different lengths (a ragged list such as "
                         "[[1, 2], [3]]), so they do not form an array; pad every row to one length "
                         "(for sequences, pad and pass lengths= to the layer)") from None
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} "
                        f"{data!r:.60}; expected numbers, nested lists of numbers or an ndarray")
    check_dtype("Tensor", array.dtype)
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)) and array.dtype.kind == "f":
        return array.astype(DEFAULT_DTYPE)
    return array


class ElementCount(int):
    """What ``t.size`` gives: the number of elements (an int, as NumPy's ``a.size``),
    callable for PyTorch users: ``t.size()`` is the shape tuple, ``t.size(d)`` the
    length of axis d.

        x = tr.zeros(3, 4)
        x.size          -> 12         (NumPy)
        x.size()        -> (3, 4)     (PyTorch)
        x.size(1)       -> 4          (PyTorch; negative d counts from the end)
    """

    def __new__(cls, count, shape):
        count = super().__new__(cls, count)
        count.shape = shape
        return count

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"size: dim {dim} is out of range for a tensor of shape {self.shape}")
        return self.shape[dim]


def axis_of(op, axis, dim, default=None):
    """One axis from NumPy's `axis=` or PyTorch's `dim=` keyword; passing both is an error."""
    if axis is not None and dim is not None:
        raise TypeError(f"{op}: got both axis={axis} and dim={dim}; pass one of them "
                        f"(axis as in NumPy, dim as in PyTorch: they mean the same)")
    if axis is not None:
        return axis
    return default if dim is None else dim


def _keepdims(op, keepdims, keepdim):
    """NumPy's `keepdims=` or PyTorch's `keepdim=` (the same flag)."""
    if keepdim is not None and keepdims:
        raise TypeError(f"{op}: got both keepdims and keepdim; pass one of them")
    return bool(keepdims or keepdim)


def _one_element(op, tensor):
    """The single value of a one-element tensor, or a clear error for a larger one."""
    if tensor.data.size != 1:
        raise TypeError(f"{op}: only a one-element tensor has a single value, this one has shape "
                        f"{tensor.shape}; reduce it first (e.g. .sum(), .any(), .all()) or index one element")
    return tensor.data.reshape(()).item()


# NumPy ufunc -> (the Tensor's operator, its reflected form): `ndarray OP Tensor` calls the second
_NUMPY_OPERATORS = {
    np.add: ("__add__", "__radd__"), np.subtract: ("__sub__", "__rsub__"),
    np.multiply: ("__mul__", "__rmul__"), np.true_divide: ("__truediv__", "__rtruediv__"),
    np.matmul: ("__matmul__", "__rmatmul__"), np.power: ("__pow__", "__rpow__"),
    np.equal: ("__eq__", "__eq__"), np.not_equal: ("__ne__", "__ne__"),
    np.less: ("__lt__", "__gt__"), np.less_equal: ("__le__", "__ge__"),
    np.greater: ("__gt__", "__lt__"), np.greater_equal: ("__ge__", "__le__"),
}


class Tensor:
    """A differentiable n-dimensional array.

    Tensor(data, requires_grad=False, dtype=None)

    - Python floats and lists become float32 (the library default); NumPy
      arrays and NumPy numbers (np.float64(0.5), what np.mean gives) keep their
      dtype, as in PyTorch, so float64 arrays stay float64 (gradcheck).
    - Integer tensors are allowed (indices, labels) but cannot require grad.
    - float16 and complex dtypes are refused (the kernels compute in float32/float64).

    NumPy's and PyTorch's names both work: ``.shape``/``.size()``,
    ``.ndim``/``.dim()``, ``axis=``/``dim=``, ``keepdims=``/``keepdim=``.
    ``t.size`` is NumPy's element count (an int) that can also be called as
    PyTorch's ``t.size()`` (the shape) or ``t.size(d)`` (see `ElementCount`).
    ``==`` and the other comparisons are elementwise and give boolean tensors.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retains_grad", "_version", "_changed_at",
                 "__weakref__")

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self._version = self._changed_at = 0   # see autograd.bump_version (optimizer steps...)
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _wrap(cls, array, requires_grad, ctx):
        """Fast constructor used by Function.apply (no checks). NumPy's arithmetic on 0-d arrays and
        x[i] of a vector give NumPy scalars: those become 0-d arrays, so every .data is an ndarray."""
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx, t._retains_grad = array, None, requires_grad, ctx, False
        t._version = t._changed_at = 0
        return t

    # ---- basic attributes ------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: ElementCount(self.data.size, self.data.shape))   # an int, and callable: see ElementCount
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        """for row in x: the rows x[0], x[1], ... along the first axis, as PyTorch gives them
        (one `Unbind` node for all of them). A 0-d tensor has no rows: TypeError, as in PyTorch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor: it has no rows. Use x.item() for its value, "
                            "or x.reshape(1) for a 1-element tensor")
        return iter(F.unbind(self))

    def unbind(self, dim=0):
        """The slices along `dim`, that axis removed (PyTorch's unbind): see `tr.unbind`."""
        return F.unbind(self, dim=dim)

    def split(self, split_size_or_sections, dim=0):
        """PyTorch's Tensor.split: pieces of `split_size` along `dim` (the last one smaller), or of
        the sizes in a list. See `tr.split` for NumPy's form (a number of equal pieces)."""
        return F.split(self, split_size_or_sections, dim=dim)

    def chunk(self, chunks, dim=0):
        """PyTorch's chunk: `chunks` pieces along `dim`, see `tr.chunk`."""
        return F.chunk(self, chunks, dim=dim)

    def __contains__(self, element):
        """`element in x`: does any entry of x equal `element` (a number, or a tensor that
        broadcasts against x)? As in PyTorch; without this Python would compare it with each row."""
        if not isinstance(element, (Tensor, bool, int, float, np.number)):
            raise TypeError(f"'in' needs a number or a Tensor to look for in a tensor, got {type(element).__name__}")
        return bool((self == element).any())

    def numel(self):
        """The number of elements (PyTorch's name for NumPy's `.size`)."""
        return self.data.size

    def dim(self):
        """The number of axes (PyTorch's name for `.ndim`)."""
        return self.data.ndim

    # ---- conversion to Python values -------------------------------------
    def __bool__(self):
        """The truth of a one-element tensor (`if loss < 1:`); a larger tensor is an error, as in NumPy."""
        if self.data.size != 1:
            raise TypeError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; "
                            f"use .any() or .all()")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(_one_element("float()", self))

    def __int__(self):
        return int(_one_element("int()", self))

    def tolist(self):
        """The values as (nested) Python lists of numbers."""
        return self.data.tolist()

    def any(self):
        """A boolean 0-d tensor: is any element true (non-zero)?"""
        return Tensor(np.any(self.data))

    def all(self):
        """A boolean 0-d tensor: are all elements true (non-zero)?"""
        return Tensor(np.all(self.data))

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
        """The value of a one-element tensor as a Python number."""
        return _one_element("item", self)

    def numpy(self):
        return self.data

    def clone(self):
        """A copy with its own memory; differentiable (the gradient passes through unchanged)."""
        return F.Clone.apply(self)

    def to(self, dtype=None, device=None):
        """This tensor converted to `dtype` (differentiable between float32 and float64).

        `device` may be "cpu" (the only one: arrays are NumPy arrays). A tensor
        that requires grad can only go to another floating dtype: an integer
        copy would silently cut the gradient.
        """
        dtype, device = split_device("Tensor.to", dtype, device)
        check_device("Tensor.to", device)
        if dtype is None:
            return self
        dtype = check_dtype("Tensor.to", dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f" and self.requires_grad:
            raise TypeError(f"Tensor.to: this tensor of shape {self.shape} requires grad, and {dtype} "
                            f"cannot carry a gradient; convert a .detach()ed copy instead")
        if self.data.dtype.kind != "f" or dtype.kind != "f":
            return Tensor(self.data.astype(dtype))
        return F.Cast.apply(self, dtype=dtype)

    def double(self):
        """This tensor as float64 (differentiable), same shape."""
        return self.to(np.float64)

    def float(self):
        """This tensor as float32 (differentiable), same shape."""
        return self.to(np.float32)

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
            grad = np.ones(self.data.shape, self.data.dtype)
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

    # Comparisons give boolean tensors (masks, for tr.where); they are not
    # differentiable. `==` is elementwise as in NumPy and PyTorch, while the hash
    # stays the object's identity: autograd keeps Tensors as dict keys, and a
    # dict finds a key by hash and identity without ever calling `==`.
    __hash__ = object.__hash__

    def _compare(self, other, numpy_op):
        if isinstance(other, Tensor):
            other = other.data
        elif not isinstance(other, (bool, int, float, np.number, np.ndarray, list, tuple)):
            return NotImplemented   # e.g. `t == None`: Python then compares identities
        try:
            return Tensor(numpy_op(self.data, other))
        except ValueError:
            raise ValueError(f"{numpy_op.__name__}: cannot compare shapes {self.shape} and "
                             f"{np.shape(other)}, they do not broadcast") from None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy meeting a Tensor: `ndarray + Tensor` and the other operators become Tensor ops
        (the graph is kept); any other NumPy function of a Tensor (np.tanh(t), np.exp(t)...) is
        refused, as it would give an array of Tensor objects and lose the graph without a word."""
        names = _NUMPY_OPERATORS.get(ufunc)
        if method == "__call__" and names is not None and len(inputs) == 2 and not kwargs:
            first, second = inputs
            return getattr(first, names[0])(second) if isinstance(first, Tensor) else getattr(second, names[1])(first)
        raise TypeError(f"np.{ufunc.__name__} of a Tensor would drop the graph: use the Tensor op "
                        f"(e.g. t.tanh(), tr.exp(t)), or np.{ufunc.__name__}(t.data) for numbers without gradients")

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

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
    # Each takes NumPy's `axis=`/`keepdims=` or PyTorch's `dim=`/`keepdim=`.
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.Sum.apply(self, axis=axis_of("sum", axis, dim), keepdims=_keepdims("sum", keepdims, keepdim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.Mean.apply(self, axis=axis_of("mean", axis, dim),
                            keepdims=_keepdims("mean", keepdims, keepdim))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """The largest values along `axis` (all axes if None).

        With PyTorch's `dim=` keyword the result is PyTorch's pair
        ``(values, indices)`` (indices: int64, not differentiable); with
        `axis=` (or positionally) it is the values only, as in NumPy.
        """
        keep = _keepdims("max", keepdims, keepdim)
        values = F.Max.apply(self, axis=axis_of("max", axis, dim), keepdims=keep)
        if dim is None:
            return values
        indices = np.argmax(self.data, axis=dim)
        return MaxResult(values, Tensor(np.expand_dims(indices, dim) if keep else indices))

    def softmax(self, axis=None, *, dim=None):
        return F.Softmax.apply(self, axis=axis_of("softmax", axis, dim, default=-1))

    def log_softmax(self, axis=None, *, dim=None):
        return F.LogSoftmax.apply(self, axis=axis_of("log_softmax", axis, dim, default=-1))

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.LogSumExp.apply(self, axis=axis_of("logsumexp", axis, dim),
                                 keepdims=_keepdims("logsumexp", keepdims, keepdim))

    # ---- shape -------------------------------------------------------------
    def reshape(self, *shape):
        """The same values in a new shape; one axis may be -1 (inferred), as in NumPy."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return F.Reshape.apply(self, shape=tuple(shape))

    view = reshape   # PyTorch's name; here it always gives a new tensor (nothing is changed in place)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge axes start_dim..end_dim into one.   (2, 3, 4).flatten() -> (24,); flatten(1) -> (2, 12)"""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"for a tensor of shape {self.shape}")
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    def transpose(self, *axes):
        """Reorder axes, in NumPy's form or PyTorch's.

        NumPy: a full permutation, ``x.transpose(1, 0, 2)`` or ``x.transpose((1, 0, 2))``;
        no argument reverses every axis.  PyTorch: two axes, ``x.transpose(0, 1)``,
        swap those two, (T, B, I) -> (B, T, I). For a 2-D tensor both forms are
        the matrix transpose (NumPy's do-nothing ``transpose(0, 1)`` would be a
        silent trap for PyTorch users, so two axes always mean a swap).
        """
        if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes) and self.ndim >= 1:
            order = list(range(self.ndim))
            for a in axes:
                if not -self.ndim <= a < self.ndim:
                    raise IndexError(f"transpose: dim {a} is out of range for a tensor of shape {self.shape}")
            d0, d1 = axes[0] % self.ndim, axes[1] % self.ndim
            order[d0], order[d1] = order[d1], order[d0]
            return F.Permute.apply(self, axes=tuple(order))
        return self.permute(*axes)

    def permute(self, *axes):
        """Reorder axes by a full permutation (PyTorch's permute, NumPy's transpose):
        (T, B, I).permute(1, 0, 2) -> (B, T, I); no argument reverses every axis."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return F.Permute.apply(self, axes=tuple(axes) if axes else None)

    def unsqueeze(self, dim):
        """A new axis of length 1 at `dim` (negative counts from the end).
        (3, 4).unsqueeze(0) -> (1, 3, 4);  (3, 4).unsqueeze(-1) -> (3, 4, 1)"""
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of shape {self.shape} "
                             f"(a new axis goes at -{self.ndim + 1}..{self.ndim})")
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        """Drop axes of length 1: all of them, or only `dim` (left as is if its length is not 1,
        as in PyTorch).   (1, 3, 1).squeeze() -> (3,);  (1, 3).squeeze(0) -> (3,)"""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if not -self.ndim <= dim < max(self.ndim, 1):
            raise IndexError(f"squeeze: dim {dim} is out of range for a tensor of shape {self.shape}")
        if self.ndim == 0 or self.shape[dim] != 1:
            return self
        dim = dim % self.ndim
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def contiguous(self):
        """PyTorch's memory-layout call; every operation here accepts any layout, so this is x itself."""
        return self

    def __getitem__(self, index):
        """x[index] as in NumPy: slices, ints, integer arrays or tensors. Only a tensor
        whose gradient is recorded goes through `Index` (which scatters the gradient
        back); any other, of any dtype (inputs, labels, masks), is simply indexed."""
        if self.requires_grad and autograd.is_grad_enabled():
            return F.Index.apply(self, index=index)
        return Tensor._wrap(F.index_array(self.data, F.plain_index(index)), False, None)

    def __setitem__(self, index, value):
        raise TypeError("Tensor does not support item assignment (x[i] = y): changing a value in "
                        "place could alter what autograd saved for backward. Build a new tensor "
                        "instead: tr.where(mask, y, x) or tr.cat/tr.stack of pieces; for a constant "
                        "input that is not in a graph yet, write into its NumPy array x.data[i] = y")


class MaxResult(tuple):
    """(values, indices), what `Tensor.max(dim=d)` returns, as PyTorch's max does."""

    __slots__ = ()

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


# --------------------------------------------------------------------------
# Creation helpers
# --------------------------------------------------------------------------

def tensor(data, requires_grad=False, dtype=None, device=None):
    """A new Tensor from numbers, (nested) lists or an array; `device` may only be "cpu".

    An array is copied, as torch.tensor does: writing into it later does not change the Tensor.
    """
    check_device("tensor", device)
    if isinstance(data, np.ndarray) and dtype is None:    # with a dtype, Tensor converts into a new array
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, requires_grad=False, dtype=DEFAULT_DTYPE, device=None):
    """A tensor of zeros of the given shape (`device` may only be "cpu")."""
    check_device("zeros", device)
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=DEFAULT_DTYPE, device=None):
    """A tensor of ones of the given shape (`device` may only be "cpu")."""
    check_device("ones", device)
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def randn(*shape, requires_grad=False, dtype=DEFAULT_DTYPE, device=None):
    """Standard normal samples from the library generator (see `manual_seed`)."""
    check_device("randn", device)
    return Tensor(_rng.standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def rand(*shape, requires_grad=False, dtype=DEFAULT_DTYPE, device=None):
    """Uniform samples in [0, 1) from the library generator."""
    check_device("rand", device)
    return Tensor(_rng.random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def arange(*args, dtype=None, requires_grad=False):
    """np.arange as a Tensor; like tr.tensor, float ranges are float32 unless dtype is given."""
    data = np.arange(*args, dtype=dtype)
    if dtype is None and data.dtype.kind == "f":
        data = data.astype(DEFAULT_DTYPE)
    return Tensor(data, requires_grad=requires_grad)


def check_device(op, device):
    """Accept device=None or "cpu" (parameters and activations are NumPy arrays, in host memory)."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{op}: device={device!r} is not supported: tensors are NumPy arrays in "
                         f"host memory, so the only device is 'cpu'; to run the kernels on a GPU "
                         f"select the backend instead, tr.set_backend('cuda')")


def split_device(op, dtype, device):
    """PyTorch's `.to("cpu")` passes the device first: return (dtype, device) sorted out."""
    if isinstance(dtype, str) and dtype.split(":")[0] in ("cpu", "cuda", "mps", "meta"):
        if device is not None:
            raise TypeError(f"{op}: got two devices, {dtype!r} and device={device!r}")
        return None, dtype
    return dtype, device


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
    """Every differentiable op takes Tensors of one floating dtype: say so clearly.

    An op that only moves elements (``fn.moves_elements``: indexing, reshape,
    transpose, cat, stack, clone) takes any one dtype, so labels, token ids and
    masks go through it as in PyTorch; they never require grad, so no node is
    recorded for them."""
    try:  # the fast path every op takes: compare dtype objects by identity
        dtype = inputs[0].data.dtype
        if dtype.kind == "f" or fn.moves_elements:
            for t in inputs:
                if t.data.dtype is not dtype:
                    break
            else:
                return
    except AttributeError:
        pass
    _raise_input_error(fn, inputs)


def _raise_input_error(fn, inputs):
    """The slow path of `check_float_inputs`: find the offending input and explain."""
    op, any_dtype = fn.__name__, fn.moves_elements
    dtype = None
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensor inputs, got {type(t).__name__}; "
                            f"wrap it with tr.tensor(...)")
        if t.data.dtype.kind != "f" and not any_dtype:
            raise TypeError(f"{op}: needs floating-point tensors, got dtype {t.data.dtype} "
                            f"(shape {t.shape}); convert with tr.tensor(x, dtype=np.float32)")
        if dtype is None:
            dtype = t.data.dtype
        elif t.data.dtype != dtype:
            raise TypeError(f"{op}: inputs have different dtypes {dtype} and {t.data.dtype} "
                            f"(shapes {inputs[0].shape} and {t.shape}); convert one so both match")


# Imported last: both modules need `Tensor` defined above.
from . import autograd, functions as F  # noqa: E402
