"""tinygrad_rnn: a from-scratch autodiff engine for recurrent neural networks.

    import tinygrad_rnn as tr
    W = tr.randn(4, 4, requires_grad=True)
    h = tr.zeros(1, 4)
    for t in range(10):              # the unrolled graph *is* the RNN
        h = (h @ W).tanh()
    h.sum().backward()               # backpropagation through time
    print(W.grad)
"""
import os as _os
import signal as _signal
import sys as _sys

if _sys.argv and _os.path.basename(_sys.argv[0]) == "tinygrad-rnn":
    # Ctrl-C while the command line is still importing (NumPy, Numba: a second or two) exits
    # quietly with status 130, as it does at any later moment; cli.main restores the usual handler.
    def _interrupted_while_starting(signum, frame):
        _sys.stderr.write("tinygrad-rnn: interrupted (Ctrl-C) while starting; nothing was written\n")
        _os._exit(130)
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)

from importlib.metadata import PackageNotFoundError, version as _version
from importlib.util import find_spec as _find_spec

if _find_spec(__name__ + ".kernels") is None:  # a clone: kernels/ is beside the package, not in it
    raise ImportError("tinygrad_rnn: run pip install -e . first: kernels/ installs as tinygrad_rnn.kernels")

from .tensor import (DEFAULT_DTYPE, Tensor, arange, manual_seed, ones, rand, randn, rng,
                     tensor, zeros)
from .autograd import AnomalyError, Function, detect_anomaly, is_grad_enabled, no_grad, time_step
from .functions import (cat, chunk, concat, exp, log, log_softmax, relu, sigmoid, softmax, split,
                        stack, tanh, unbind, where)
from .gradcheck import GradcheckError, gradcheck
from .backend import backend, get_backend, set_backend
from . import nn
from . import check, viz
from . import bptt, data, io, optim

try:
    __version__ = _version("tinygrad-rnn")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_DTYPE", "Tensor", "arange", "manual_seed", "ones", "rand", "randn", "rng", "tensor",
    "zeros", "AnomalyError", "Function", "detect_anomaly", "is_grad_enabled", "no_grad",
    "time_step", "cat", "chunk", "concat", "split", "stack", "unbind", "where", "exp", "log",
    "log_softmax", "relu", "sigmoid", "softmax", "tanh", "GradcheckError", "gradcheck", "nn",
    "backend", "get_backend", "set_backend",
    "bptt", "data", "io", "optim", "check", "viz",
]
