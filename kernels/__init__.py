"""Pure array kernels (installed as ``tinygrad_rnn.kernels``).

No autograd lives here: every kernel takes NumPy arrays and returns NumPy
arrays, so each one can be tested on its own against ``reference.py``.
"""

BACKENDS = ("numpy", "numba", "cuda")


def get_kernels(name):
    """The kernel module of backend `name`: "numpy" (reference), "numba" (cpu) or "cuda"."""
    if name == "numpy":
        from . import reference
        return reference
    if name == "numba":
        from . import cpu
        return cpu
    if name == "cuda":
        return _cuda_kernels()
    raise ValueError(f"unknown kernel backend {name!r}; valid backends are {', '.join(BACKENDS)}")


def _cuda_kernels():
    try:
        from numba import cuda
        found = cuda.is_available()
    except Exception:  # numba built without CUDA support, or no driver
        found = False
    if not found:
        raise RuntimeError("backend 'cuda': no GPU was found (numba.cuda.is_available() is False). "
                           "To run the CUDA kernels without a GPU, set NUMBA_ENABLE_CUDASIM=1 "
                           "before starting Python (Numba's simulator: slow, tiny shapes only).")
    from . import cuda as module
    return module
