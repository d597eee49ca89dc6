"""Fused cell and sequence ops: one graph node whose forward and backward run kernels.

The composite path builds a small graph per time step out of Tensor ops; a
fused op is a single ``Function`` whose ``forward`` calls a kernel of the
current backend (``tr.set_backend``) and whose ``backward`` calls the matching
backward kernel with what forward saved. Same parameters, same numbers.

    out, h_n, c_n = lstm_sequence(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None, W_hr=None)
    out, h_n      = gru_sequence(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, reset_after=True)
    out, h_n      = rnn_sequence(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh")
    h_t, c_t      = lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    h_t           = gru_cell(x, h, W_ih, W_hh, b_ih, b_hh, reset_after=True)
    h_t           = rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh")

Shapes: x (T, B, I) for sequences, (B, I) for cells; h, c (B, H); weights in
PyTorch layout W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,) with G = 4
(LSTM), 3 (GRU), 1 (RNN). A bias may be None (a layer with bias=False). An LSTM
with a projection (W_hr (P, H), PyTorch's proj_size) has h (B, P), W_hh (4H, P)
and out (T, B, P); c stays (B, H).

Every op is the same ``KernelFunction`` given the name of a pair of kernels
("lstm_seq" -> ``lstm_seq_forward`` / ``lstm_seq_backward``); a cell step is the
sequence kernel run on a sequence of length T = 1, so no backend writes a
separate cell kernel.

Several outputs, one node: the LSTM's forward returns the tuple
(out, h_n, c_n) and its backward receives one gradient for each (zeros for an
output nothing used), exactly as the kernels' forward and backward do.
"""
import numpy as np

from .autograd import AnomalyError, Function, is_anomaly_enabled
from .backend import current_kernels, get_backend
from .tensor import Tensor

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
NONLINEARITIES = ("tanh", "relu")


# --------------------------------------------------------------------------
# One Function for every kernel pair (arrays in, arrays out)
# --------------------------------------------------------------------------

class KernelFunction(Function):
    """A graph node whose forward and backward are the kernels ``<kernel>_forward`` and
    ``<kernel>_backward`` of the current backend.

    A sequence kernel returns (outputs..., saved); its backward takes one gradient per
    output and `saved`, and returns one gradient per input. With ``one_step`` the node
    is one time step: x (B, I) is run as a sequence of length 1, and the node's
    outputs are the final states (h_t, and c_t for the LSTM).
    """

    kernel = None        # "lstm_seq", "gru_seq", ...
    one_step = False
    new_grads = True     # every backend's backward kernel returns new arrays (tests/test_kernels.py)
    option = None        # the layer option that selects this kernel, for the error of a backend without it

    @classmethod
    def forward(cls, ctx, x, *arrays, where=None, **params):
        ctx.kernels, ctx.where = cls._kernels(), where
        if cls.one_step:
            x = x[None]                                      # (1, B, I)
        if is_anomaly_enabled():
            _check_steps(cls, where, "input x already contains {bad}", x, params.get("lengths"))
        out, *finals, saved = getattr(ctx.kernels, cls.kernel + "_forward")(x, *arrays, **params)
        ctx.save_for_backward(*saved)
        ctx.lengths = params.get("lengths")
        if is_anomaly_enabled():
            _check_steps(cls, where, "produced {bad} in its output", out, ctx.lengths)
        if cls.one_step:
            return finals[0] if len(finals) == 1 else tuple(finals)
        return (out, *finals)

    @classmethod
    def backward(cls, ctx, grads):
        grads = grads if isinstance(grads, tuple) else (grads,)
        if cls.one_step:                                     # no gradient reaches the (unused) out
            grads = (np.zeros_like(grads[0])[None], *grads)
        dx, *rest = getattr(ctx.kernels, cls.kernel + "_backward")(*grads, ctx.saved)
        if is_anomaly_enabled():
            _check_steps(cls, ctx.where, "produced {bad} in the gradient of its input x in backward", dx,
                         ctx.lengths, latest=True)
        return (dx[0] if cls.one_step else dx, *rest)

    @classmethod
    def _kernels(cls):
        kernels = current_kernels()
        if not hasattr(kernels, cls.kernel + "_forward"):
            raise NotImplementedError(f"{cls.option} is not supported by the {get_backend()} backend; "
                                      f"use tr.set_backend('numba') (or 'numpy') for this layer")
        return kernels


def _kernel_function(name, kernel, doc, one_step=False, option=None):
    return type(name, (KernelFunction,), dict(kernel=kernel, one_step=one_step, option=option, __doc__=doc))


LSTMSequence = _kernel_function("LSTMSequence", "lstm_seq", "(out (T, B, H), h_n, c_n) = LSTM over all T steps of x.")
LSTMProjectedSequence = _kernel_function(
    "LSTMProjectedSequence", "lstm_projected_seq",
    "(out (T, B, P), h_n (B, P), c_n (B, H)) = LSTM with projection W_hr over all T steps of x.", option="proj_size")
GRUSequence = _kernel_function("GRUSequence", "gru_seq", "(out (T, B, H), h_n) = GRU over all T steps of x.")
GRUResetBeforeSequence = _kernel_function(
    "GRUResetBeforeSequence", "gru_reset_before_seq",
    "(out (T, B, H), h_n) = GRU with reset_after=False over all T steps of x.", option="reset_after=False")
RNNSequence = _kernel_function("RNNSequence", "rnn_seq", "(out (T, B, H), h_n) = Elman RNN over all T steps of x.")
LSTMStep = _kernel_function("LSTMStep", "lstm_seq", "(h_t, c_t) (B, H) each = one LSTM step.", one_step=True)
GRUStep = _kernel_function("GRUStep", "gru_seq", "h_t (B, H) = one GRU step.", one_step=True)
GRUResetBeforeStep = _kernel_function("GRUResetBeforeStep", "gru_reset_before_seq",
                                      "h_t (B, H) = one GRU step with reset_after=False.", one_step=True,
                                      option="reset_after=False")
RNNStep = _kernel_function("RNNStep", "rnn_seq", "h_t (B, H) = one Elman RNN step.", one_step=True)


def _check_steps(cls, where, what, array, lengths, latest=False):
    """detect_anomaly on a fused op: name the time step and batch row of the first NaN/Inf in
    `array` (T, B, ...) — the earliest step, or with `latest` the last one (the first that
    backward reaches). `where` = (layer, reverse) when the op runs one layer's direction."""
    bad_rows = ~np.isfinite(array).all(axis=tuple(range(2, array.ndim)))    # (T, B)
    if not bad_rows.any():
        return
    steps = np.nonzero(bad_rows.any(axis=1))[0]
    t = int(steps[-1] if latest else steps[0])
    b = int(np.nonzero(bad_rows[t])[0][0])
    bad = "NaN" if np.isnan(array[t, b]).any() else "Inf"
    label = cls.__name__
    if where is not None:
        layer, reverse = where
        if reverse:                                 # x was read backwards: report the original step
            T = array.shape[0]
            length = T if lengths is None else int(lengths[b])
            t = length - 1 - t if t < length else t
        label += f" (layer {layer}, {'reverse' if reverse else 'forward'} direction)"
    place = "" if cls.one_step else f" at time step {t}"
    raise AnomalyError(f"detect_anomaly: {label} {what.format(bad=bad)}{place}, batch row {b}")


# --------------------------------------------------------------------------
# Public wrappers: check shapes, fill in missing biases
# --------------------------------------------------------------------------

def lstm_sequence(x, h0, c0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None, W_hr=None, where=None):
    """LSTM over a whole sequence as one graph node -> (out (T, B, H), h_n, c_n).

    With a projection W_hr (P, H): h0 (B, P), W_hh (4H, P) -> out (T, B, P), h_n (B, P), c_n (B, H).
    `where` = (layer, reverse) names the layer's direction in anomaly errors.
    """
    b_ih, b_hh, lengths = _check("lstm_sequence", "lstm", x, (h0, c0), W_ih, W_hh, b_ih, b_hh, lengths, W_hr)
    if W_hr is None:
        return LSTMSequence.apply(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=lengths, where=where)
    return LSTMProjectedSequence.apply(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths=lengths, where=where)


def gru_sequence(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None, reset_after=True, where=None):
    """GRU over a whole sequence as one graph node -> (out (T, B, H), h_n).

    reset_after=False: the reset gate scales h_{t-1} before the product (see ``cells.gru_step``).
    """
    b_ih, b_hh, lengths = _check("gru_sequence", "gru", x, (h0,), W_ih, W_hh, b_ih, b_hh, lengths)
    op = GRUSequence if reset_after else GRUResetBeforeSequence
    return op.apply(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths, where=where)


def rnn_sequence(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None, nonlinearity="tanh", where=None):
    """Elman RNN over a whole sequence as one graph node -> (out (T, B, H), h_n)."""
    check_nonlinearity("rnn_sequence", nonlinearity)
    b_ih, b_hh, lengths = _check("rnn_sequence", "rnn", x, (h0,), W_ih, W_hh, b_ih, b_hh, lengths)
    return RNNSequence.apply(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths, nonlinearity=nonlinearity,
                             where=where)


def lstm_cell(x, h, c, W_ih, W_hh, b_ih=None, b_hh=None):
    """One LSTM step as one graph node -> (h_t, c_t)."""
    b_ih, b_hh, _ = _check("lstm_cell", "lstm", x, (h, c), W_ih, W_hh, b_ih, b_hh)
    return LSTMStep.apply(x, h, c, W_ih, W_hh, b_ih, b_hh)


def gru_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, reset_after=True):
    """One GRU step as one graph node -> h_t (B, H)."""
    b_ih, b_hh, _ = _check("gru_cell", "gru", x, (h,), W_ih, W_hh, b_ih, b_hh)
    return (GRUStep if reset_after else GRUResetBeforeStep).apply(x, h, W_ih, W_hh, b_ih, b_hh)


def rnn_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step as one graph node -> h_t (B, H)."""
    check_nonlinearity("rnn_cell", nonlinearity)
    b_ih, b_hh, _ = _check("rnn_cell", "rnn", x, (h,), W_ih, W_hh, b_ih, b_hh)
    return RNNStep.apply(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity=nonlinearity)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def check_nonlinearity(op, nonlinearity):
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{op}: nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def _check(op, cell, x, states, W_ih, W_hh, b_ih, b_hh, lengths=None, W_hr=None):
    """Raise a clear ValueError/TypeError for bad shapes; return (b_ih, b_hh, lengths) ready to use.

    A missing bias becomes a constant zero Tensor (it gets no gradient).
    """
    sequence = op.endswith("sequence")
    for name, t in [("x", x), ("W_ih", W_ih), ("W_hh", W_hh)] + list(zip(("h", "c"), states)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    ndim, layout = (3, "(T, B, I)") if sequence else (2, "(B, I)")
    if x.ndim != ndim:
        raise ValueError(f"{op}: x must have shape {layout}, got {x.shape}")
    B, I = x.shape[-2:]
    G = GATES[cell]
    state_names = ("h0", "c0") if sequence else ("h", "c")
    H = states[-1].shape[-1] if states[-1].ndim == 2 else None
    if W_hr is not None and not isinstance(W_hr, Tensor):
        raise TypeError(f"{op}: W_hr must be a Tensor, got {type(W_hr).__name__}")
    if W_hr is not None and (W_hr.ndim != 2 or W_hr.shape[1] != H):
        raise ValueError(f"{op}: W_hr has shape {W_hr.shape} but the cell state has H={H} units; "
                         f"expected (P, H) = (P, {H}), P the projected size of h")
    P = H if W_hr is None else W_hr.shape[0]                        # h has P units (P = H without W_hr)
    h_units = "P" if W_hr is not None else "H"
    for name, s, (units, symbol) in zip(state_names, states, ((P, h_units), (H, "H"))):
        if s.ndim != 2 or s.shape != (B, units):
            raise ValueError(f"{op}: {name} has shape {s.shape} but x {x.shape} has B={B}; "
                             f"expected (B, {symbol}) = ({B}, {symbol if units is None else units})")
    expected = {"W_ih": (G * H, I), "W_hh": (G * H, P), "b_ih": (G * H,), "b_hh": (G * H,), "W_hr": (P, H)}
    for name, t in (("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh), ("W_hr", W_hr)):
        if t is not None and t.shape != expected[name]:
            formula = _SHAPE_FORMULAS[name].format(G=G, h=h_units)
            raise ValueError(f"{op}: {name} has shape {t.shape} but x has I={I} features and the state "
                             f"H={H}; expected {formula} = {expected[name]}")
    if b_ih is None or b_hh is None:
        zeros = Tensor(np.zeros(G * H, dtype=x.dtype))
        b_ih = zeros if b_ih is None else b_ih
        b_hh = zeros if b_hh is None else b_hh
    return b_ih, b_hh, check_lengths(op, lengths, *x.shape[:2])


_SHAPE_FORMULAS = {"W_ih": "({G}*H, I)", "W_hh": "({G}*H, {h})", "b_ih": "({G}*H,)", "b_hh": "({G}*H,)",
                   "W_hr": "(P, H)"}


def check_lengths(op, lengths, T, B):
    """None, or `lengths` as int64 (B,) after checking 1 <= lengths[b] <= T."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if lengths.dtype.kind not in "iu" or lengths.shape != (B,):
        raise ValueError(f"{op}: lengths must be B={B} integers (one per sequence in the batch), "
                         f"got shape {lengths.shape} dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"{op}: lengths must be between 1 and T={T} (the padded length), "
                         f"got {lengths.tolist()}")
    return lengths.astype(np.int64)
