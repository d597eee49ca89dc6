"""Which kernels the fused ops run: "numpy" (the reference), "numba" (CPU, default) or "cuda".

    tr.set_backend("numpy")           # from now on
    with tr.backend("numpy"):         # only inside the block
        ...
    TINYGRAD_RNN_BACKEND=numpy python train.py   # read once, at the first fused op

The composite (Tensor-op) path is unaffected: only the fused cell and sequence
ops in ``fused.py`` call kernels.
"""
import os
from contextlib import contextmanager

from .kernels import BACKENDS, get_kernels

ENV_VAR = "TINYGRAD_RNN_BACKEND"


def _checked_name(name, where):
    if name not in BACKENDS:
        raise ValueError(f"{where}: unknown backend {name!r}; valid backends are {', '.join(BACKENDS)}")
    return name


_current = None   # read from the environment at the first use, so a bad value is a clear error there


def get_backend():
    """The name of the backend the fused ops use now."""
    global _current
    if _current is None:
        _current = _checked_name(os.environ.get(ENV_VAR, "numba"), f"environment variable {ENV_VAR}")
    return _current


def set_backend(name):
    """Make `name` the backend of the fused ops; raises if it is unknown or unavailable."""
    global _current
    get_kernels(_checked_name(name, "set_backend"))  # fail now, not at the first op
    _current = name


@contextmanager
def backend(name):
    """Use backend `name` inside a `with` block, then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def current_kernels():
    """The kernel module of the current backend."""
    return get_kernels(get_backend())
