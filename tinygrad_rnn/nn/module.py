"""Module: a container of parameters and sub-modules, PyTorch-style.

A Module finds its parameters by looking at its own attributes: a Tensor with
``requires_grad=True`` is a parameter, a Module is a sub-module (its
parameters are named ``child.weight``), and a list of Modules is numbered
(``layers.0.weight``). Nothing is registered by hand.

A parameter stays a parameter when it is frozen later
(``p.requires_grad_(False)``): as in PyTorch it is still listed by
``named_parameters()`` and saved in ``state_dict()``; the optimizers skip it
because it gets no gradient. The module remembers the names of the attributes
that held a trainable Tensor when they were assigned.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import bump_version
from ..functions import Index
from ..tensor import DEFAULT_DTYPE, Tensor, check_device, check_dtype, check_sizes, rng, split_device


def uniform_parameter(shape, bound, dtype=np.float32):
    """A new parameter drawn from U(-bound, bound) with the library generator."""
    data = rng().uniform(-bound, bound, size=shape).astype(dtype)
    return Tensor(data, requires_grad=True)


def parameter_dtype(op, dtype=None, device=None):
    """The floating dtype for a module's parameters from PyTorch's `dtype=` and `device=` keywords.

    dtype: None (float32), np.float32 or np.float64. device: None or "cpu".
    """
    check_device(op, device)
    if dtype is None:
        return np.dtype(DEFAULT_DTYPE)
    dtype = check_dtype(op, dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: parameters need a floating dtype, got dtype={dtype}; "
                        f"use np.float32 or np.float64")
    return dtype


def check_flags(op, **flags):
    """TypeError naming `op` unless every flag is a bool (as PyTorch: `bias="False"` would be true)."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} should be of type bool, got {type(value).__name__} {value!r}")


def check_recurrent_sizes(op, input_size, hidden_size, **sizes):
    """input_size and other sizes must be positive; hidden_size may be 0 (a layer with no state:
    outputs of shape (..., 0), as PyTorch's cells give).

    A size that is not an integer at all (3.0, "10") is a TypeError, as in PyTorch; an
    integer out of range is a ValueError.
    """
    for name, value in dict(input_size=input_size, hidden_size=hidden_size, **sizes).items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{op}: {name} should be of type int, got {type(value).__name__} {value!r}")
    check_sizes(op, input_size=input_size, **sizes)
    if hidden_size < 0:
        raise ValueError(f"{op}: hidden_size must be a non-negative integer, got {hidden_size!r}")


def init_bound(hidden_size):
    """PyTorch's init range 1/sqrt(H) for U(-bound, bound) (0 when H = 0: there is nothing to draw)."""
    return 1 / np.sqrt(hidden_size) if hidden_size > 0 else 0.0


def dropout(x, p, training=True):
    """Zero each element of x with probability p and scale the rest by 1/(1-p) (in training).

    Scaling keeps the expected value: E[output] = x. p = 1 drops everything
    (the output is zero), as in PyTorch. Outside training x is returned as is.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * np.zeros((), dtype=x.dtype)
    keep = rng().random(x.shape) >= p
    return x * (keep / (1 - p)).astype(x.dtype)


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What `Module.load_state_dict` returns, as in PyTorch: the parameter names the
state dict lacked and the names it had that the module does not (both empty with strict=True)."""


class Module:
    """Base class of every layer. Subclasses set attributes in __init__ and define forward."""

    training = True

    def __setattr__(self, name, value):
        if isinstance(value, Tensor) and value.requires_grad:
            self.__dict__.setdefault("_parameter_names", set()).add(name)
        super().__setattr__(name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- discovery ---------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
                for k, child in enumerate(value):
                    yield f"{name}.{k}", child

    def named_parameters(self, prefix="", _seen=None):
        """(name, parameter) pairs; a parameter shared by two modules (weight
        tying) is listed once, under the first name it is found at."""
        seen = set() if _seen is None else _seen
        registered = self.__dict__.get("_parameter_names", ())
        for name, value in vars(self).items():
            if (isinstance(value, Tensor) and (value.requires_grad or name in registered)
                    and id(value) not in seen):
                seen.add(id(value))
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".", seen)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def children(self):
        """The direct sub-modules (PyTorch's name); `named_children` gives their names too."""
        return [child for _, child in self.named_children()]

    def named_modules(self, prefix=""):
        """(name, module) for this module ("") and every sub-module below it, as in PyTorch."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    # ---- state -------------------------------------------------------------
    def state_dict(self):
        """Parameter name -> a copy of its array (what `io.save` writes)."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict=True):
        """Copy arrays (NumPy arrays or Tensors) into the parameters, checking everything first.

        Nothing is changed unless every name, shape and dtype fits and every
        value is finite (with strict=False, missing and unexpected names are
        ignored). Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``,
        as PyTorch does.
        """
        op = f"{type(self).__name__}.load_state_dict"
        params = dict(self.named_parameters())
        missing = [name for name in params if name not in state]
        unexpected = [name for name in state if name not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"{op}: missing keys {missing}, "
                           f"unexpected keys {unexpected}; expected exactly {list(params)}")
        arrays = {name: _state_array(op, name, state[name]) for name in params if name in state}
        for name, array in arrays.items():
            param = params[name]
            if array.shape != param.shape:
                raise ValueError(f"{op}: '{name}' has shape {array.shape} in the state dict but "
                                 f"{param.shape} in the model; was it saved from a model with other sizes?")
            if not np.can_cast(array.dtype, param.dtype, casting="same_kind"):
                raise ValueError(f"{op}: '{name}' has dtype {array.dtype}, which cannot be stored in the "
                                 f"model's {param.dtype} parameter")
            if not np.isfinite(array).all():
                raise ValueError(f"{op}: '{name}' holds {np.size(array) - np.isfinite(array).sum()} NaN/Inf "
                                 f"values (saved after training diverged?); nothing was loaded: use an earlier "
                                 f"checkpoint")
        for name, array in arrays.items():
            np.copyto(params[name].data, array, casting="same_kind")
            bump_version(params[name])
        return IncompatibleKeys(missing, unexpected)

    def get_extra_state(self):
        """JSON-able state that is not a parameter (e.g. a running baseline); {} by default."""
        return {}

    def set_extra_state(self, state):
        """Restore what `get_extra_state` returned."""

    def get_config(self):
        """Constructor arguments that rebuild this module (saved in checkpoints)."""
        return dict(getattr(self, "config", {}))

    # ---- modes and helpers ---------------------------------------------------
    def train(self, mode=True):
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter, as PyTorch's method; returns self.

        Frozen parameters stay parameters (listed, saved, loaded); they get no gradient.
        """
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype=None, device=None):
        """Convert every parameter to `dtype` in place (e.g. np.float64 for gradcheck).

        `device` may be "cpu" (the only one; `.to("cpu")` works too). Only float32
        and float64 are supported.
        """
        dtype, device = split_device(f"{type(self).__name__}.to", dtype, device)
        if dtype is None:
            check_device(f"{type(self).__name__}.to", device)
            return self
        dtype = parameter_dtype(f"{type(self).__name__}.to", dtype, device)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].dtype if params else np.dtype(DEFAULT_DTYPE)

    def __repr__(self):
        children = list(self.named_children())
        config = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        if not children:
            return f"{type(self).__name__}({config})"
        body = "\n".join(f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children)
        return f"{type(self).__name__}({config})\n{body}"


def _state_array(op, name, value):
    """The NumPy array behind a state-dict entry (an ndarray, a Tensor or a list of numbers)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):       # a torch tensor, without importing torch
        raise TypeError(f"{op}: '{name}' is a {type(value).__module__}.{type(value).__name__}; call "
                        f".detach().cpu().numpy() first (or use tr.io.convert_weights(state, 'pytorch'))")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{op}: '{name}' is not an array of numbers (dtype {array.dtype})")
    return array


class Linear(Module):
    """y = x W^T + b.   x (..., in_features) -> y (..., out_features)

    weight (out_features, in_features), bias (out_features,), both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch. `dtype` is
    np.float32 (default) or np.float64; `device` may only be "cpu".
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None):
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        check_flags("Linear", bias=bias)
        dtype = parameter_dtype("Linear", dtype, device)
        self.config = dict(in_features=in_features, out_features=out_features, bias=bias)
        bound = 1 / np.sqrt(in_features)
        self.weight = uniform_parameter((out_features, in_features), bound, dtype)
        self.bias = uniform_parameter((out_features,), bound, dtype) if bias else None

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim == 0:
            got = "a 0-d tensor" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Linear expected input of shape (..., in_features) = (..., "
                             f"{self.weight.shape[1]}), got {got}; for a single sample use shape "
                             f"({self.weight.shape[1]},)")
        if x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"Linear expected input with {self.weight.shape[1]} features in the "
                             f"last axis, got shape {x.shape}")
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y


class Embedding(Module):
    """y = W[idx]: a row of the table per integer index.   idx (...) -> y (..., dim)

    weight (num_embeddings, embedding_dim) ~ N(0, 1) as in PyTorch. Looking up
    the same index twice adds both gradients into that row.
    """

    def __init__(self, num_embeddings, embedding_dim, dtype=None, device=None):
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        dtype = parameter_dtype("Embedding", dtype, device)
        self.config = dict(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        data = rng().standard_normal((num_embeddings, embedding_dim))
        self.weight = Tensor(data.astype(dtype), requires_grad=True)

    def forward(self, idx):
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        n = self.weight.shape[0]
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding expected integer indices, got dtype {idx.dtype}; "
                            f"convert with .astype(int)")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"Embedding: indices must be in [0, {n}), got values in "
                             f"[{idx.min()}, {idx.max()}]")
        return Index.apply(self.weight, index=idx)


class Dropout(Module):
    """During training, zero each element with probability p and scale the rest by 1/(1-p).

    x (...) -> same shape. p in [0, 1]; p = 1 zeroes everything (see `dropout`).
    """

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout probability must be in [0, 1], got {p}")
        self.config = dict(p=p)
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)


class Sequential(Module):
    """Apply modules one after another: Sequential(a, b)(x) = b(a(x))."""

    def __init__(self, *modules):
        self.layers = list(modules)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
