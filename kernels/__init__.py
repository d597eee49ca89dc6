"""Pure array kernels (installed as ``tinygrad_rnn.kernels``).

No autograd lives here: every kernel takes NumPy arrays and returns NumPy
arrays, so each one can be tested on its own against ``reference.py``.
"""
