"""Numba CPU kernels: the functions of ``reference.py``, compiled with ``@njit``.

Same names, same signatures, same results (to float rounding); ``saved`` of a
sequence kernel has the same layout as the reference's. What makes them fast,
each idea measured on a 2-core x86 machine:

- the input projection of all T steps is one GEMM before the time loop;
- the whole time loop runs inside one compiled function, so there is no
  Python overhead per step; the recurrent product h_{t-1} W_hh^T of each step
  goes to BLAS through ``np.dot`` (Numba calls SciPy's BLAS);
- the gate math of a step is one fused loop over (B, H): it reads each
  pre-activation once and writes h_t, c_t and the saved gates, with no
  temporary arrays;
- backward finds the pre-activation gradients ``da`` of all steps, then the
  weight gradients are one GEMM over all steps (dW_hh = sum_t da_t^T h_{t-1});
- tanh is computed as 2 sigmoid(2v) - 1: Numba's ``np.tanh`` is a scalar libm
  call (~10x slower per element), while ``exp`` in a loop is vectorized;
- fast-math flags, ``error_model="numpy"`` (no division checks) and
  ``cache=True`` (compile once per machine). The flags are all of fastmath's
  except "nnan" and "ninf": with those, LLVM assumes exp never overflows and
  float32 sigmoid(-100) came out NaN;
- constants are made in the array's dtype (``one = x.dtype.type(1)``) so
  float32 stays float32 end to end;
- no ``parallel=True``: at these sizes its thread start-up costs more than
  the loop itself.

A cell step is a sequence of length 1: the ``*_cell_*`` kernels call the
sequence kernels with T = 1.
"""
import numpy as np
from numba import njit

from .reference import full_lengths

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}   # fastmath=True minus nnan, ninf
jit = njit(fastmath=FASTMATH, error_model="numpy", cache=True)


@jit
def _sigmoid(v, one):
    return one / (one + np.exp(-v))


@jit
def _tanh(v, one):
    return (one + one) * _sigmoid(v + v, one) - one


@jit
def _matmul(a, b):
    return np.dot(a, b)


def matmul(a, b):
    """c = a @ b for 2-D arrays."""
    return _matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))


@jit
def _weight_grads(da, x, hs, W_ih):
    """dx, dW_ih, dW_hh, db as single products over all steps (see reference)."""
    T, B, GH = da.shape
    da2 = da.reshape(T * B, GH)
    dW_ih = np.dot(da2.T, x.reshape(T * B, x.shape[2]))           # sum_t da_t^T x_t
    dW_hh = np.dot(da2.T, hs[:T].reshape(T * B, hs.shape[2]))     # sum_t da_t^T h_{t-1}
    dx = np.dot(da2, W_ih).reshape(T, B, W_ih.shape[1])
    return dx, dW_ih, dW_hh, da2.sum(axis=0)


def _prepare(x, *arrays, lengths):
    """C-contiguous arrays (BLAS and reshape need them) and int64 lengths (B,)."""
    T, B = x.shape[:2]
    arrays = [np.ascontiguousarray(a) for a in (x,) + arrays]
    return arrays + [full_lengths(lengths, T, B)]


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------

@jit
def _lstm_forward(x, h0, c0, W_ih, W_hh, b, lengths):
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    # x W_ih^T for all steps in one GEMM, written where the gates [i f g o] will be:
    # each step turns its pre-activations into activations in place
    gates = np.dot(x.reshape(T * B, I), W_ih.T).reshape(T, B, 4 * H)
    hs = np.empty((T + 1, B, H), x.dtype)
    cs = np.empty((T + 1, B, H), x.dtype)
    out = np.zeros((T, B, H), x.dtype)
    ha = np.empty((B, 4 * H), x.dtype)                              # h_{t-1} W_hh^T
    hs[0] = h0
    cs[0] = c0
    for t in range(T):
        np.dot(hs[t], W_hh.T, ha)
        for n in range(B):
            if t >= lengths[n]:                                     # padded: carry state
                hs[t + 1, n] = hs[t, n]
                cs[t + 1, n] = cs[t, n]
                continue
            for j in range(H):
                i = _sigmoid(gates[t, n, j] + ha[n, j] + b[j], one)
                f = _sigmoid(gates[t, n, H + j] + ha[n, H + j] + b[H + j], one)
                g = _tanh(gates[t, n, 2 * H + j] + ha[n, 2 * H + j] + b[2 * H + j], one)
                o = _sigmoid(gates[t, n, 3 * H + j] + ha[n, 3 * H + j] + b[3 * H + j], one)
                c_t = f * cs[t, n, j] + i * g
                h_t = o * _tanh(c_t, one)
                gates[t, n, j], gates[t, n, H + j] = i, f
                gates[t, n, 2 * H + j], gates[t, n, 3 * H + j] = g, o
                cs[t + 1, n, j] = c_t
                hs[t + 1, n, j] = h_t
                out[t, n, j] = h_t
    return out, hs, cs, gates


@jit
def _lstm_backward(d_out, d_hn, d_cn, x, W_ih, W_hh, lengths, hs, cs, gates):
    T, B, H = d_out.shape
    one = x.dtype.type(1)
    da = np.zeros((T, B, 4 * H), x.dtype)
    dh = d_hn.copy()
    dc = d_cn.copy()
    dh_rec = np.empty((B, H), x.dtype)                              # da_t W_hh
    for t in range(T - 1, -1, -1):
        for n in range(B):
            if t >= lengths[n]:
                continue
            for j in range(H):
                i, f = gates[t, n, j], gates[t, n, H + j]
                g, o = gates[t, n, 2 * H + j], gates[t, n, 3 * H + j]
                tanh_c = _tanh(cs[t + 1, n, j], one)
                dh_t = dh[n, j] + d_out[t, n, j]
                dc_t = dc[n, j] + dh_t * o * (one - tanh_c * tanh_c)
                da[t, n, j] = dc_t * g * i * (one - i)
                da[t, n, H + j] = dc_t * cs[t, n, j] * f * (one - f)
                da[t, n, 2 * H + j] = dc_t * i * (one - g * g)
                da[t, n, 3 * H + j] = dh_t * tanh_c * o * (one - o)
                dc[n, j] = dc_t * f
        np.dot(da[t], W_hh, dh_rec)
        for n in range(B):
            if t < lengths[n]:
                dh[n] = dh_rec[n]
    dx, dW_ih, dW_hh, db = _weight_grads(da, x, hs, W_ih)
    return dx, dh, dc, dW_ih, dW_hh, db


def lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, c_n, saved"""
    x, h0, c0, W_ih, W_hh, lengths = _prepare(x, h0, c0, W_ih, W_hh, lengths=lengths)
    out, hs, cs, gates = _lstm_forward(x, h0, c0, W_ih, W_hh, b_ih + b_hh, lengths)
    return out, hs[-1], cs[-1], (x, W_ih, W_hh, lengths, hs, cs, gates)


def lstm_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh"""
    d_out, d_hn, d_cn = (np.ascontiguousarray(a) for a in (d_out, d_hn, d_cn))
    dx, dh, dc, dW_ih, dW_hh, db = _lstm_backward(d_out, d_hn, d_cn, *saved)
    return dx, dh, dc, dW_ih, dW_hh, db, db.copy()


def lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """-> h_t, c_t, saved"""
    _, h_t, c_t, saved = lstm_seq_forward(x[None], h, c, W_ih, W_hh, b_ih, b_hh)
    return h_t, c_t, saved


def lstm_cell_backward(dh_t, dc_t, saved):
    """-> dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh"""
    dx, *grads = lstm_seq_backward(np.zeros_like(dh_t)[None], dh_t, dc_t, saved)
    return (dx[0], *grads)


# --------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------

@jit
def _gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths):
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    # x W_ih^T for all steps in one GEMM, turned into the gates [r z n] in place
    gates = np.dot(x.reshape(T * B, I), W_ih.T).reshape(T, B, 3 * H)
    hs = np.empty((T + 1, B, H), x.dtype)
    ha_n = np.empty((T, B, H), x.dtype)                             # W_hn h_{t-1} + b_hn
    out = np.zeros((T, B, H), x.dtype)
    ha = np.empty((B, 3 * H), x.dtype)                              # h_{t-1} W_hh^T
    hs[0] = h0
    for t in range(T):
        np.dot(hs[t], W_hh.T, ha)
        for n in range(B):
            if t >= lengths[n]:
                hs[t + 1, n] = hs[t, n]
                continue
            for j in range(H):
                r = _sigmoid(gates[t, n, j] + b_ih[j] + ha[n, j] + b_hh[j], one)
                z = _sigmoid(gates[t, n, H + j] + b_ih[H + j] + ha[n, H + j] + b_hh[H + j], one)
                hn = ha[n, 2 * H + j] + b_hh[2 * H + j]
                n_t = _tanh(gates[t, n, 2 * H + j] + b_ih[2 * H + j] + r * hn, one)
                h_t = (one - z) * n_t + z * hs[t, n, j]
                gates[t, n, j], gates[t, n, H + j], gates[t, n, 2 * H + j] = r, z, n_t
                ha_n[t, n, j] = hn
                hs[t + 1, n, j] = h_t
                out[t, n, j] = h_t
    return out, hs, gates, ha_n


@jit
def _gru_backward(d_out, d_hn, x, W_ih, W_hh, lengths, hs, gates, ha_n):
    T, B, H = d_out.shape
    one = x.dtype.type(1)
    dxa = np.zeros((T, B, 3 * H), x.dtype)
    dha = np.zeros((T, B, 3 * H), x.dtype)
    dh = d_hn.copy()
    dh_rec = np.empty((B, H), x.dtype)                              # dha_t W_hh
    for t in range(T - 1, -1, -1):
        for n in range(B):
            if t >= lengths[n]:
                continue
            for j in range(H):
                r, z, n_t = gates[t, n, j], gates[t, n, H + j], gates[t, n, 2 * H + j]
                dh_t = dh[n, j] + d_out[t, n, j]
                dn_a = dh_t * (one - z) * (one - n_t * n_t)
                dz_a = dh_t * (hs[t, n, j] - n_t) * z * (one - z)
                dr_a = dn_a * ha_n[t, n, j] * r * (one - r)
                dxa[t, n, j], dxa[t, n, H + j], dxa[t, n, 2 * H + j] = dr_a, dz_a, dn_a
                dha[t, n, j], dha[t, n, H + j], dha[t, n, 2 * H + j] = dr_a, dz_a, dn_a * r
                dh[n, j] = dh_t * z                                 # direct path z * h_{t-1}
        np.dot(dha[t], W_hh, dh_rec)
        for n in range(B):
            if t < lengths[n]:
                dh[n] += dh_rec[n]
    dx, dW_ih, _, db_ih = _weight_grads(dxa, x, hs, W_ih)
    dW_hh = np.dot(dha.reshape(T * B, 3 * H).T, hs[:T].reshape(T * B, H))
    return dx, dh, dW_ih, dW_hh, db_ih, dha.reshape(T * B, 3 * H).sum(axis=0)


def gru_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, saved"""
    x, h0, W_ih, W_hh, b_ih, b_hh, lengths = _prepare(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths)
    out, hs, gates, ha_n = _gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, gates, ha_n)


def gru_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    d_out, d_hn = (np.ascontiguousarray(a) for a in (d_out, d_hn))
    return _gru_backward(d_out, d_hn, *saved)


def gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh):
    """-> h_t, saved"""
    _, h_t, saved = gru_seq_forward(x[None], h, W_ih, W_hh, b_ih, b_hh)
    return h_t, saved


def gru_cell_backward(dh_t, saved):
    """-> dx, dh, dW_ih, dW_hh, db_ih, db_hh"""
    dx, *grads = gru_seq_backward(np.zeros_like(dh_t)[None], dh_t, saved)
    return (dx[0], *grads)


# --------------------------------------------------------------------------
# Elman RNN (tanh or relu)
# --------------------------------------------------------------------------

@jit
def _rnn_forward(x, h0, W_ih, W_hh, b, lengths, relu):
    T, B, I = x.shape
    H = h0.shape[1]
    one, zero = x.dtype.type(1), x.dtype.type(0)
    xa = np.dot(x.reshape(T * B, I), W_ih.T).reshape(T, B, H)      # all steps, one GEMM
    hs = np.empty((T + 1, B, H), x.dtype)
    out = np.zeros((T, B, H), x.dtype)
    ha = np.empty((B, H), x.dtype)                                  # h_{t-1} W_hh^T
    hs[0] = h0
    for t in range(T):
        np.dot(hs[t], W_hh.T, ha)
        for n in range(B):
            if t >= lengths[n]:
                hs[t + 1, n] = hs[t, n]
                continue
            for j in range(H):
                a = xa[t, n, j] + ha[n, j] + b[j]
                h_t = max(a, zero) if relu else _tanh(a, one)
                hs[t + 1, n, j] = h_t
                out[t, n, j] = h_t
    return out, hs


@jit
def _rnn_backward(d_out, d_hn, x, W_ih, W_hh, lengths, hs, relu):
    T, B, H = d_out.shape
    one, zero = x.dtype.type(1), x.dtype.type(0)
    da = np.zeros((T, B, H), x.dtype)
    dh = d_hn.copy()
    dh_rec = np.empty((B, H), x.dtype)                              # da_t W_hh
    for t in range(T - 1, -1, -1):
        for n in range(B):
            if t >= lengths[n]:
                continue
            for j in range(H):
                h_t = hs[t + 1, n, j]
                dh_t = dh[n, j] + d_out[t, n, j]
                if relu:
                    da[t, n, j] = dh_t if h_t > zero else zero
                else:
                    da[t, n, j] = dh_t * (one - h_t * h_t)
        np.dot(da[t], W_hh, dh_rec)
        for n in range(B):
            if t < lengths[n]:
                dh[n] = dh_rec[n]
    dx, dW_ih, dW_hh, db = _weight_grads(da, x, hs, W_ih)
    return dx, dh, dW_ih, dW_hh, db


def rnn_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh"):
    """-> out (T, B, H), h_n, saved"""
    x, h0, W_ih, W_hh, lengths = _prepare(x, h0, W_ih, W_hh, lengths=lengths)
    relu = nonlinearity == "relu"
    out, hs = _rnn_forward(x, h0, W_ih, W_hh, b_ih + b_hh, lengths, relu)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, np.array(relu))


def rnn_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    d_out, d_hn = (np.ascontiguousarray(a) for a in (d_out, d_hn))
    x, W_ih, W_hh, lengths, hs, relu = saved
    dx, dh, dW_ih, dW_hh, db = _rnn_backward(d_out, d_hn, x, W_ih, W_hh, lengths, hs, bool(relu))
    return dx, dh, dW_ih, dW_hh, db, db.copy()


def rnn_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """-> h_t, saved"""
    _, h_t, saved = rnn_seq_forward(x[None], h, W_ih, W_hh, b_ih, b_hh, nonlinearity=nonlinearity)
    return h_t, saved


def rnn_cell_backward(dh_t, saved):
    """-> dx, dh, dW_ih, dW_hh, db_ih, db_hh"""
    dx, *grads = rnn_seq_backward(np.zeros_like(dh_t)[None], dh_t, saved)
    return (dx[0], *grads)
