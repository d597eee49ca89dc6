"""NumPy reference kernels: the specification every fast backend must match.

Each kernel takes and returns plain arrays (no autograd). The equations are
PyTorch's, with its gate order and weight layout (G gates: LSTM 4, GRU 3, RNN 1):

    W_ih (G*H, I)   W_hh (G*H, H)   b_ih (G*H,)   b_hh (G*H,)
    x (T, B, I)     h, c (B, H)     out (T, B, H)

A sequence kernel runs in two phases, the way every fast RNN does:

1. the input projection of *all* time steps at once, one big matrix product
   xa = x W_ih^T + b  of shape (T, B, G*H);
2. the time loop, which only adds the recurrent part h_{t-1} W_hh^T and applies
   the pointwise math of one step.

The time loop is written once (``forward_loop``, ``backward_loop``); each cell
hands it a ``step`` function built from its pointwise math.

Backward mirrors it: the time loop (in reverse) finds the gradient `da` of every
step's pre-activations; the weight gradients are then one product over all
steps at once, e.g.  dW_hh = sum_t da_t^T h_{t-1}.

Variable lengths: ``lengths`` (B,) with 1 <= L_b <= T. At steps t >= L_b the
state of sequence b is carried unchanged, out[t, b] = 0, and those steps give
and receive no gradient. h_n / c_n are the states after step L_b - 1.

``saved`` (what forward keeps for backward) is a tuple of arrays, laid out the
same way in every backend (None where a backend has nothing to keep).
"""
import numpy as np
from scipy.special import expit


def sigmoid(a):
    """1 / (1 + e^-a) in a's dtype: SciPy's ``expit``, which never forms an overflowing e^-a and
    keeps the digits of tiny values (sigmoid(-50) = 1.9e-22). The composite op uses it too."""
    return expit(a)


def matmul(a, b):
    """c = a @ b for 2-D arrays."""
    return a @ b


def full_lengths(lengths, T, B):
    """`lengths` as an int64 array (B,); None means every sequence has all T steps."""
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    return np.asarray(lengths, dtype=np.int64)


def step_mask(lengths, T):
    """m[t, b] = (t < L_b): True while step t is inside sequence b;  shape (T, B, 1)."""
    return (np.arange(T)[:, None] < lengths[None, :])[:, :, None]


# --------------------------------------------------------------------------
# The pointwise math of one step, from its pre-activations
# (cpu.py runs it per batch row: _lstm_step_row ...; cuda.py per hidden unit: lstm_step_point_forward ...)
# --------------------------------------------------------------------------

def lstm_step_pointwise_forward(a, c_prev):
    """One LSTM step from pre-activations a = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh.

        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    a (B, 4H), c_prev (B, H) -> h_t (B, H), c_t (B, H), gates [i f g o] (B, 4H)
    """
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_t = f * c_prev + i * g
    h_t = o * np.tanh(c_t)
    return h_t, c_t, np.concatenate([i, f, g, o], axis=1)


def lstm_step_pointwise_backward(dh_t, dc_t, gates, c_prev, c_t):
    """Chain rule through `lstm_step_pointwise_forward`.

        dc   = dc_t + dh_t * o * (1 - tanh(c_t)^2)       (c_t reaches h_t through tanh)
        da_i = dc * g * i (1 - i)        da_f = dc * c_{t-1} * f (1 - f)
        da_g = dc * i * (1 - g^2)        da_o = dh_t * tanh(c_t) * o (1 - o)
        dc_{t-1} = dc * f

    -> da (B, 4H), dc_prev (B, H)
    """
    i, f, g, o = np.split(gates, 4, axis=1)
    tanh_c = np.tanh(c_t)
    dc = dc_t + dh_t * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                         dc * i * (1 - g ** 2), dh_t * tanh_c * o * (1 - o)], axis=1)
    return da, dc * f


def gru_step_pointwise_forward(xa, ha, h_prev):
    """One GRU step from xa = x W_ih^T + b_ih and ha = h_{t-1} W_hh^T + b_hh.

        r = sigmoid(xa_r + ha_r)    z = sigmoid(xa_z + ha_z)
        n = tanh(xa_n + r * ha_n)
        h_t = (1 - z) * n + z * h_{t-1}

    xa, ha (B, 3H), h_prev (B, H) -> h_t (B, H), gates [r z n] (B, 3H), ha_n (B, H)
    """
    xa_r, xa_z, xa_n = np.split(xa, 3, axis=1)
    ha_r, ha_z, ha_n = np.split(ha, 3, axis=1)
    r, z = sigmoid(xa_r + ha_r), sigmoid(xa_z + ha_z)
    n = np.tanh(xa_n + r * ha_n)
    h_t = (1 - z) * n + z * h_prev
    return h_t, np.concatenate([r, z, n], axis=1), ha_n


def gru_step_pointwise_backward(dh_t, gates, ha_n, h_prev):
    """Chain rule through `gru_step_pointwise_forward`.

        dn_a = dh_t * (1 - z) * (1 - n^2)              (gradient of n's pre-activation)
        dz_a = dh_t * (h_{t-1} - n) * z (1 - z)
        dr_a = dn_a * ha_n * r (1 - r)
        dxa = [dr_a, dz_a, dn_a]     dha = [dr_a, dz_a, dn_a * r]
        dh_{t-1} (direct part, not through ha) = dh_t * z

    -> dxa (B, 3H), dha (B, 3H), dh_prev_direct (B, H)
    """
    r, z, n = np.split(gates, 3, axis=1)
    dn_a = dh_t * (1 - z) * (1 - n ** 2)
    dz_a = dh_t * (h_prev - n) * z * (1 - z)
    dr_a = dn_a * ha_n * r * (1 - r)
    dxa = np.concatenate([dr_a, dz_a, dn_a], axis=1)
    dha = np.concatenate([dr_a, dz_a, dn_a * r], axis=1)
    return dxa, dha, dh_t * z


def gru_reset_before_step_pointwise_forward(xa, h_prev, W_hh, b_hh):
    """One step of the reset_after=False GRU (Cho et al. 2014; Keras' reset_after=False):
    the reset gate scales h_{t-1} *before* the recurrent product, so this step
    needs W_hh itself, not just h_{t-1} W_hh^T.

        r = sigmoid(xa_r + W_hr h_{t-1} + b_hr)    z = sigmoid(xa_z + W_hz h_{t-1} + b_hz)
        n = tanh(xa_n + W_hn (r * h_{t-1}) + b_hn)
        h_t = (1 - z) * n + z * h_{t-1}

    xa (B, 3H) = x W_ih^T + b_ih, h_prev (B, H) -> h_t (B, H), gates [r z n] (B, 3H), r * h_{t-1} (B, H)
    """
    H = h_prev.shape[1]
    xa_r, xa_z, xa_n = np.split(xa, 3, axis=1)
    ha_r, ha_z = np.split(h_prev @ W_hh[:2 * H].T + b_hh[:2 * H], 2, axis=1)
    r, z = sigmoid(xa_r + ha_r), sigmoid(xa_z + ha_z)
    rh = r * h_prev
    n = np.tanh(xa_n + rh @ W_hh[2 * H:].T + b_hh[2 * H:])
    h_t = (1 - z) * n + z * h_prev
    return h_t, np.concatenate([r, z, n], axis=1), rh


def gru_reset_before_step_pointwise_backward(dh_t, gates, h_prev, W_hh):
    """Chain rule through `gru_reset_before_step_pointwise_forward`.

        dn_a = dh_t * (1 - z) * (1 - n^2)        dz_a = dh_t * (h_{t-1} - n) * z (1 - z)
        d_rh = dn_a W_hn                          (gradient of r * h_{t-1})
        dr_a = d_rh * h_{t-1} * r (1 - r)
        dh_{t-1} = dh_t * z + d_rh * r + [dr_a dz_a] [W_hr; W_hz]

    -> da = [dr_a dz_a dn_a] (B, 3H), dh_prev (B, H)
    """
    H = h_prev.shape[1]
    r, z, n = np.split(gates, 3, axis=1)
    dn_a = dh_t * (1 - z) * (1 - n ** 2)
    dz_a = dh_t * (h_prev - n) * z * (1 - z)
    d_rh = dn_a @ W_hh[2 * H:]
    dr_a = d_rh * h_prev * r * (1 - r)
    da_rz = np.concatenate([dr_a, dz_a], axis=1)
    return (np.concatenate([da_rz, dn_a], axis=1),
            dh_t * z + d_rh * r + da_rz @ W_hh[:2 * H])


def rnn_step_pointwise_forward(a, nonlinearity):
    """h_t = tanh(a) or relu(a), a = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh."""
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)


def rnn_step_pointwise_backward(dh_t, h_t, relu):
    """da = dh_t * tanh'(a) = dh_t * (1 - h_t^2),  or  dh_t * [h_t > 0] for relu."""
    return dh_t * (h_t > 0) if relu else dh_t * (1 - h_t ** 2)


# --------------------------------------------------------------------------
# One step with its matrix products: x (B, I), h, c (B, H), as nn.cells.lstm_step ...
# (the fused cell ops run a step as a sequence of length 1; these are its specification)
# --------------------------------------------------------------------------

def lstm_step_forward(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """-> h_t, c_t, saved"""
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh          # (B, 4H)
    h_t, c_t, gates = lstm_step_pointwise_forward(a, c)
    return h_t, c_t, (x, h, c, W_ih, W_hh, gates, c_t)


def lstm_step_backward(dh_t, dc_t, saved):
    """-> dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh"""
    x, h, c, W_ih, W_hh, gates, c_t = saved
    da, dc = lstm_step_pointwise_backward(dh_t, dc_t, gates, c, c_t)
    db = da.sum(axis=0)
    return da @ W_ih, da @ W_hh, dc, da.T @ x, da.T @ h, db, db.copy()


def gru_step_forward(x, h, W_ih, W_hh, b_ih, b_hh):
    """-> h_t, saved"""
    xa = x @ W_ih.T + b_ih                              # (B, 3H)
    ha = h @ W_hh.T + b_hh                              # (B, 3H)
    h_t, gates, ha_n = gru_step_pointwise_forward(xa, ha, h)
    return h_t, (x, h, W_ih, W_hh, gates, ha_n)


def gru_step_backward(dh_t, saved):
    """-> dx, dh, dW_ih, dW_hh, db_ih, db_hh"""
    x, h, W_ih, W_hh, gates, ha_n = saved
    dxa, dha, dh = gru_step_pointwise_backward(dh_t, gates, ha_n, h)
    return (dxa @ W_ih, dha @ W_hh + dh, dxa.T @ x, dha.T @ h,
            dxa.sum(axis=0), dha.sum(axis=0))


def rnn_step_forward(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """-> h_t, saved"""
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh           # (B, H)
    h_t = rnn_step_pointwise_forward(a, nonlinearity)
    return h_t, (x, h, W_ih, W_hh, h_t, np.array(nonlinearity == "relu"))


def rnn_step_backward(dh_t, saved):
    """-> dx, dh, dW_ih, dW_hh, db_ih, db_hh"""
    x, h, W_ih, W_hh, h_t, relu = saved
    da = rnn_step_pointwise_backward(dh_t, h_t, relu)
    db = da.sum(axis=0)
    return da @ W_ih, da @ W_hh, da.T @ x, da.T @ h, db, db.copy()


# --------------------------------------------------------------------------
# Whole sequences: x (T, B, I) -> out (T, B, H)
# --------------------------------------------------------------------------

def _weight_grads(dxa, dha, x, hs, W_ih):
    """Gradients that are one product over all steps: dx, dW_ih, dW_hh, db_ih, db_hh.

    dxa, dha (T, B, G*H): gradients of the input part (x W_ih^T + b_ih) and of the
    hidden part (h W_hh^T + b_hh) of the pre-activations — the same array for
    RNN and LSTM, two arrays for the GRU (its reset gate scales the hidden part).
    hs (T+1, B, H) states h_0..h_T.
    """
    T, B, GH = dxa.shape
    dxa2, dha2 = dxa.reshape(T * B, GH), dha.reshape(T * B, GH)
    dW_ih = dxa2.T @ x.reshape(T * B, x.shape[2])             # sum_t dxa_t^T x_t
    dW_hh = dha2.T @ hs[:-1].reshape(T * B, hs.shape[2])      # sum_t dha_t^T h_{t-1}
    return dxa @ W_ih, dW_ih, dW_hh, dxa2.sum(axis=0), dha2.sum(axis=0)


def forward_loop(x, W_ih, b, states, lengths, step):
    """The forward time loop every sequence kernel shares.

    xa = x W_ih^T + b for all steps in one GEMM; then for t = 0 .. T-1

        new_states, kept = step(xa[t], states)

    with states (h_{t-1}, ...) each (B, ·) and `kept` what backward needs from
    step t. At padded steps (t >= L_b) sequence b carries its states unchanged
    and outputs 0.

    -> out (T, B, ·) (the h_t), histories [(T+1, B, ·), one per state: s_0 .. s_T],
       kept [(T, B, ·), one per kept array], lengths (B,)
    """
    T, B, _ = x.shape
    lengths = full_lengths(lengths, T, B)
    m = step_mask(lengths, T)                           # (T, B, 1)
    xa = x @ W_ih.T + b                                 # (T, B, G*H): every step in one GEMM
    histories = [np.empty((T + 1, *s.shape), x.dtype) for s in states]
    for history, s in zip(histories, states):
        history[0] = s
    kept = []
    for t in range(T):
        new_states, kept_t = step(xa[t], [history[t] for history in histories])
        if t == 0:
            kept = [np.empty((T, *k.shape), x.dtype) for k in kept_t]
        for k, k_t in zip(kept, kept_t):
            k[t] = k_t
        for history, new in zip(histories, new_states):
            history[t + 1] = np.where(m[t], new, history[t])   # padded steps carry the state
    out = np.where(m, histories[0][1:], 0)
    return out, histories, kept, lengths


def backward_loop(d_out, d_finals, lengths, step):
    """The backward time loop every sequence kernel shares, t = T-1 .. 0:

        d_states_prev, grads_t = step(t, [dh_t, dc_t, ...])

    where dh_t = (gradient from step t+1) + d_out[t]. `grads_t` are step t's
    pre-activation gradients, kept for the weight gradients (0 at padded steps);
    padded steps pass the state gradients through unchanged.

    -> the gradients of the initial states [(B, ·) ...], grads [(T, B, ·) ...]
    """
    T = d_out.shape[0]
    m = step_mask(lengths, T)
    d_states, grads = list(d_finals), []
    for t in reversed(range(T)):
        d_prev, grads_t = step(t, [d_states[0] + d_out[t], *d_states[1:]])
        if t == T - 1:
            grads = [np.zeros((T, *g.shape), d_out.dtype) for g in grads_t]
        for g, g_t in zip(grads, grads_t):
            g[t] = np.where(m[t], g_t, 0)
        d_states = [np.where(m[t], new, old) for new, old in zip(d_prev, d_states)]
    return d_states, grads


def lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, c_n, saved

    The LSTM without projection (W_hr None); `saved` drops the two entries only a
    projection needs. (cpu.py wraps its LSTM the same way.)
    """
    out, h_n, c_n, (x, W_ih, W_hh, _, lengths, hs, cs, gates, _) = _lstm_forward(
        x, h0, c0, W_ih, W_hh, b_ih, b_hh, None, lengths)
    return out, h_n, c_n, (x, W_ih, W_hh, lengths, hs, cs, gates)


def lstm_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh"""
    x, W_ih, W_hh, lengths, hs, cs, gates = saved
    return _lstm_backward(d_out, d_hn, d_cn,
                          (x, W_ih, W_hh, None, lengths, hs, cs, gates, None))[:7]


def lstm_projected_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths=None):
    """LSTM with a projection (PyTorch's proj_size = P): the state is projected
    to P < H units,  h_t = W_hr (o * tanh(c_t)),  while c_t keeps H units.

    h0 (B, P), c0 (B, H), W_hh (4H, P), W_hr (P, H) -> out (T, B, P), h_n (B, P), c_n (B, H), saved
    """
    return _lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths)


def lstm_projected_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr"""
    return _lstm_backward(d_out, d_hn, d_cn, saved)


def _lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths):
    """The LSTM; W_hr None means no projection (h_t = o * tanh(c_t), P = H)."""
    def step(xa_t, states):
        h, c = states
        cell_out, c_t, gates = lstm_step_pointwise_forward(xa_t + h @ W_hh.T, c)
        h_t = cell_out if W_hr is None else cell_out @ W_hr.T
        return (h_t, c_t), (gates, cell_out)           # cell_out = o * tanh(c_t), before the projection

    out, (hs, cs), (gates, cell_out), lengths = forward_loop(x, W_ih, b_ih + b_hh, (h0, c0), lengths, step)
    return out, hs[-1], cs[-1], (x, W_ih, W_hh, W_hr, lengths, hs, cs, gates, cell_out)


def _lstm_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr (None without projection)

    With a projection, dh_t reaches the cell through W_hr:  d(o * tanh(c_t)) = dh_t W_hr,
    and dW_hr = sum_t dh_t^T (o * tanh(c_t)).
    """
    x, W_ih, W_hh, W_hr, lengths, hs, cs, gates, cell_out = saved

    def step(t, d_states):
        dh_t, dc = d_states
        da_t, dc_prev = lstm_step_pointwise_backward(dh_t if W_hr is None else dh_t @ W_hr, dc,
                                                     gates[t], cs[t], cs[t + 1])
        return (da_t @ W_hh, dc_prev), (da_t, dh_t)

    (dh, dc), (da, dhs) = backward_loop(d_out, (d_hn, d_cn), lengths, step)
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(da, da, x, hs, W_ih)
    dW_hr = None if W_hr is None else np.einsum("tbp,tbh->ph", dhs, cell_out)
    return dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh, dW_hr


def gru_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, saved"""
    def step(xa_t, states):
        h, = states
        h_t, gates, ha_n = gru_step_pointwise_forward(xa_t, h @ W_hh.T + b_hh, h)
        return (h_t,), (gates, ha_n)                    # ha_n = W_hn h_{t-1} + b_hn, needed by dr

    out, (hs,), (gates, ha_n), lengths = forward_loop(x, W_ih, b_ih, (h0,), lengths, step)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, gates, ha_n)


def gru_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh

    GRU has two pre-activation gradients per step, dxa and dha, because the
    reset gate multiplies only the recurrent part of n.
    """
    x, W_ih, W_hh, lengths, hs, gates, ha_n = saved

    def step(t, d_states):
        dxa_t, dha_t, dh_direct = gru_step_pointwise_backward(d_states[0], gates[t], ha_n[t], hs[t])
        return (dha_t @ W_hh + dh_direct,), (dxa_t, dha_t)

    (dh,), (dxa, dha) = backward_loop(d_out, (d_hn,), lengths, step)
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(dxa, dha, x, hs, W_ih)
    return dx, dh, dW_ih, dW_hh, db_ih, db_hh


def gru_reset_before_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """The GRU with reset_after=False (see `gru_reset_before_step_pointwise_forward`) -> out (T, B, H), h_n, saved

    Two recurrent products per step: the second, W_hn (r * h_{t-1}), needs this step's r.
    """
    def step(xa_t, states):
        h_t, gates, rh = gru_reset_before_step_pointwise_forward(xa_t, states[0], W_hh, b_hh)
        return (h_t,), (gates, rh)                      # rh = r * h_{t-1}, needed by dW_hn

    out, (hs,), (gates, rh), lengths = forward_loop(x, W_ih, b_ih, (h0,), lengths, step)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, gates, rh)


def gru_reset_before_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh

    Every pre-activation gradient is both the input's and the hidden part's (da = dxa = dha),
    but the n rows of W_hh multiply r * h_{t-1}:  dW_hn = sum_t da_n,t^T (r_t * h_{t-1}).
    """
    x, W_ih, W_hh, lengths, hs, gates, rh = saved
    H = rh.shape[2]

    def step(t, d_states):
        da_t, dh_prev = gru_reset_before_step_pointwise_backward(d_states[0], gates[t], hs[t], W_hh)
        return (dh_prev,), (da_t,)

    (dh,), (da,) = backward_loop(d_out, (d_hn,), lengths, step)
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(da, da, x, hs, W_ih)
    dW_hh[2 * H:] = np.einsum("tbk,tbj->kj", da[..., 2 * H:], rh)
    return dx, dh, dW_ih, dW_hh, db_ih, db_hh


def rnn_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh"):
    """-> out (T, B, H), h_n, saved"""
    def step(xa_t, states):
        return (rnn_step_pointwise_forward(xa_t + states[0] @ W_hh.T, nonlinearity),), ()

    out, (hs,), _, lengths = forward_loop(x, W_ih, b_ih + b_hh, (h0,), lengths, step)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, np.array(nonlinearity == "relu"))


def rnn_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    x, W_ih, W_hh, lengths, hs, relu = saved

    def step(t, d_states):
        da_t = rnn_step_pointwise_backward(d_states[0], hs[t + 1], relu)
        return (da_t @ W_hh,), (da_t,)

    (dh,), (da,) = backward_loop(d_out, (d_hn,), lengths, step)
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(da, da, x, hs, W_ih)
    return dx, dh, dW_ih, dW_hh, db_ih, db_hh
