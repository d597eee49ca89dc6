"""Fused cell and sequence ops: one graph node whose forward and backward run kernels.

The composite path builds a small graph per time step out of Tensor ops; a
fused op is a single ``Function`` whose ``forward`` calls a kernel of the
current backend (``tr.set_backend``) and whose ``backward`` calls the matching
backward kernel with what forward saved. Same parameters, same numbers.

    out, h_n, c_n = lstm_sequence(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None)
    out, h_n      = gru_sequence(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None)
    out, h_n      = rnn_sequence(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh")
    h_t, c_t      = lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    h_t           = gru_cell(x, h, W_ih, W_hh, b_ih, b_hh)
    h_t           = rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh")

Shapes: x (T, B, I) for sequences, (B, I) for cells; h, c (B, H); weights in
PyTorch layout W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,) with G = 4
(LSTM), 3 (GRU), 1 (RNN). A bias may be None (a layer with bias=False).

Several outputs, one node: LSTMSequence's forward returns the tuple
(out, h_n, c_n) and its backward receives one gradient for each (zeros for an
output nothing used), exactly as the kernels' forward and backward do.
"""
import numpy as np

from .autograd import Function
from .backend import current_kernels
from .tensor import Tensor

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
NONLINEARITIES = ("tanh", "relu")


# --------------------------------------------------------------------------
# The Functions (arrays in, one array out)
# --------------------------------------------------------------------------

class LSTMSequence(Function):
    """(out (T, B, H), h_n, c_n) = LSTM over all T steps of x."""

    @staticmethod
    def forward(ctx, x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None):
        ctx.kernels = current_kernels()
        out, h_n, c_n, saved = ctx.kernels.lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths)
        ctx.save_for_backward(*saved)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grads):
        d_out, d_hn, d_cn = grads
        return ctx.kernels.lstm_seq_backward(d_out, d_hn, d_cn, ctx.saved)


class GRUSequence(Function):
    """(out (T, B, H), h_n) = GRU over all T steps of x."""

    @staticmethod
    def forward(ctx, x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
        ctx.kernels = current_kernels()
        out, h_n, saved = ctx.kernels.gru_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths)
        ctx.save_for_backward(*saved)
        return out, h_n

    @staticmethod
    def backward(ctx, grads):
        d_out, d_hn = grads
        return ctx.kernels.gru_seq_backward(d_out, d_hn, ctx.saved)


class RNNSequence(Function):
    """(out (T, B, H), h_n) = Elman RNN (tanh or relu) over all T steps of x."""

    @staticmethod
    def forward(ctx, x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh"):
        ctx.kernels = current_kernels()
        out, h_n, saved = ctx.kernels.rnn_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths, nonlinearity)
        ctx.save_for_backward(*saved)
        return out, h_n

    @staticmethod
    def backward(ctx, grads):
        d_out, d_hn = grads
        return ctx.kernels.rnn_seq_backward(d_out, d_hn, ctx.saved)


class LSTMCellStep(Function):
    """(h_t, c_t) (B, H) each = one LSTM step."""

    @staticmethod
    def forward(ctx, x, h, c, W_ih, W_hh, b_ih, b_hh):
        ctx.kernels = current_kernels()
        h_t, c_t, saved = ctx.kernels.lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh)
        ctx.save_for_backward(*saved)
        return h_t, c_t

    @staticmethod
    def backward(ctx, grads):
        dh_t, dc_t = grads
        return ctx.kernels.lstm_cell_backward(dh_t, dc_t, ctx.saved)


class GRUCellStep(Function):
    """h_t (B, H) = one GRU step."""

    @staticmethod
    def forward(ctx, x, h, W_ih, W_hh, b_ih, b_hh):
        ctx.kernels = current_kernels()
        h_t, saved = ctx.kernels.gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh)
        ctx.save_for_backward(*saved)
        return h_t

    @staticmethod
    def backward(ctx, g):
        return ctx.kernels.gru_cell_backward(g, ctx.saved)


class RNNCellStep(Function):
    """h_t (B, H) = one Elman RNN step."""

    @staticmethod
    def forward(ctx, x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
        ctx.kernels = current_kernels()
        h_t, saved = ctx.kernels.rnn_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity)
        ctx.save_for_backward(*saved)
        return h_t

    @staticmethod
    def backward(ctx, g):
        return ctx.kernels.rnn_cell_backward(g, ctx.saved)


# --------------------------------------------------------------------------
# Public wrappers: check shapes, fill in missing biases
# --------------------------------------------------------------------------

def lstm_sequence(x, h0, c0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None):
    """LSTM over a whole sequence as one graph node -> (out (T, B, H), h_n, c_n)."""
    b_ih, b_hh, lengths = _check("lstm_sequence", "lstm", x, (h0, c0), W_ih, W_hh, b_ih, b_hh, lengths)
    return LSTMSequence.apply(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=lengths)


def gru_sequence(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None):
    """GRU over a whole sequence as one graph node -> (out (T, B, H), h_n)."""
    b_ih, b_hh, lengths = _check("gru_sequence", "gru", x, (h0,), W_ih, W_hh, b_ih, b_hh, lengths)
    return GRUSequence.apply(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths)


def rnn_sequence(x, h0, W_ih, W_hh, b_ih=None, b_hh=None, lengths=None, nonlinearity="tanh"):
    """Elman RNN over a whole sequence as one graph node -> (out (T, B, H), h_n)."""
    check_nonlinearity("rnn_sequence", nonlinearity)
    b_ih, b_hh, lengths = _check("rnn_sequence", "rnn", x, (h0,), W_ih, W_hh, b_ih, b_hh, lengths)
    return RNNSequence.apply(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths, nonlinearity=nonlinearity)


def lstm_cell(x, h, c, W_ih, W_hh, b_ih=None, b_hh=None):
    """One LSTM step as one graph node -> (h_t, c_t)."""
    b_ih, b_hh, _ = _check("lstm_cell", "lstm", x, (h, c), W_ih, W_hh, b_ih, b_hh)
    return LSTMCellStep.apply(x, h, c, W_ih, W_hh, b_ih, b_hh)


def gru_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None):
    """One GRU step as one graph node -> h_t (B, H)."""
    b_ih, b_hh, _ = _check("gru_cell", "gru", x, (h,), W_ih, W_hh, b_ih, b_hh)
    return GRUCellStep.apply(x, h, W_ih, W_hh, b_ih, b_hh)


def rnn_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step as one graph node -> h_t (B, H)."""
    check_nonlinearity("rnn_cell", nonlinearity)
    b_ih, b_hh, _ = _check("rnn_cell", "rnn", x, (h,), W_ih, W_hh, b_ih, b_hh)
    return RNNCellStep.apply(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity=nonlinearity)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def check_nonlinearity(op, nonlinearity):
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{op}: nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def _check(op, cell, x, states, W_ih, W_hh, b_ih, b_hh, lengths=None):
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
    H = states[0].shape[-1] if states[0].ndim == 2 else None
    for name, s in zip(state_names, states):
        if s.ndim != 2 or s.shape != (B, H):
            raise ValueError(f"{op}: {name} has shape {s.shape} but x {x.shape} has B={B}; "
                             f"expected (B, H) = ({B}, {'H' if H is None else H})")
    expected = {"W_ih": ((G * H, I), f"({G}*H, I)"), "W_hh": ((G * H, H), f"({G}*H, H)"),
                "b_ih": ((G * H,), f"({G}*H,)"), "b_hh": ((G * H,), f"({G}*H,)")}
    for name, t in (("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh)):
        shape, formula = expected[name]
        if t is not None and t.shape != shape:
            raise ValueError(f"{op}: {name} has shape {t.shape} but x has I={I} features and the state "
                             f"H={H}; expected {formula} = {shape}")
    zeros = Tensor(np.zeros(G * H, dtype=x.dtype))
    b_ih = zeros if b_ih is None else b_ih
    b_hh = zeros if b_hh is None else b_hh
    return b_ih, b_hh, check_lengths(op, lengths, *x.shape[:2])


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
