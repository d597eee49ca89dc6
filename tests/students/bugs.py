"""Realistic student bugs: each function is one function of `cs231n_solution` with one mistake.

BUGS maps a bug's name to (the function it replaces, the buggy function, a
regular expression the grader's finding must match: the gate, parameter,
time step or layout that locates the bug).
"""
import numpy as np

from cs231n_solution import (lstm_step_backward, lstm_step_forward, rnn_step_backward, rnn_step_forward,
                             sigmoid)


def tanh_derivative_sign(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (next_h ** 2 - 1)                     # bug: -(1 - tanh^2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def tanh_derivative_plus(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 + next_h ** 2)                     # bug: 1 + tanh^2
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def dWh_from_next_h(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, next_h.T @ da, da.sum(axis=0)    # bug: next_h, not prev_h


def dWh_transposed(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, da.T @ prev_h, da.sum(axis=0)    # bug: (prev_h.T da).T


def db_summed_over_everything(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum()          # bug: no axis


def Wh_transposed_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh.T + b)                           # bug: Wh.T
    return next_h, (x, prev_h, Wx, Wh, next_h)


def pytorch_shapes_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx.T + prev_h @ Wh.T + b)                         # expects Wx (H, D): PyTorch layout
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_forward_skips_t0(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    caches, prev_h = [None], h0
    for t in range(1, T):                                                   # bug: starts at 1
        prev_h, cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def _rnn_backward(dh, caches, carry=True, accumulate=True):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        upstream = dh[:, t] + dprev_h if carry else dh[:, t]
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(upstream, caches[t])
        dWx, db = dWx + dWx_t, db + db_t
        dWh = dWh + dWh_t if accumulate else dWh_t
    return dx, dprev_h, dWx, dWh, db


def dWh_not_summed(dh, caches):
    return _rnn_backward(dh, caches, accumulate=False)                      # bug: dWh = dWh_t


def rnn_backward_drops_carried(dh, caches):
    return _rnn_backward(dh, caches, carry=False)                           # bug: dprev_h not added


def _lstm_step_backward(dnext_h, dnext_c, cache, bug):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c if bug == "dc path" else dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    dai = dc * g * i * (1 - i)
    daf = dc * f * (1 - f) if bug == "forget" else dc * prev_c * f * (1 - f)
    dao = (dc if bug == "output" else dnext_h * tanh_c) * o * (1 - o)
    dag = dc * i * (1 - g ** 2)
    blocks = [dai, daf, dag, dao] if bug == "order" else [dai, daf, dao, dag]
    da = np.concatenate(blocks, axis=1)
    dprev_c = dc if bug == "dc_prev" else dc * f
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def forget_missing_c_prev(dnext_h, dnext_c, cache):
    return _lstm_step_backward(dnext_h, dnext_c, cache, "forget")


def dc_missing_path_through_h(dnext_h, dnext_c, cache):
    return _lstm_step_backward(dnext_h, dnext_c, cache, "dc path")


def output_gate_uses_dc(dnext_h, dnext_c, cache):
    return _lstm_step_backward(dnext_h, dnext_c, cache, "output")


def backward_gate_order(dnext_h, dnext_c, cache):
    return _lstm_step_backward(dnext_h, dnext_c, cache, "order")


def dc_prev_missing_f(dnext_h, dnext_c, cache):
    return _lstm_step_backward(dnext_h, dnext_c, cache, "dc_prev")


def lstm_forward_pytorch_gate_order(x, prev_h, prev_c, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    ai, af, ag, ao = np.split(a, 4, axis=1)                                 # bug: reads i, f, g, o
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    return o * np.tanh(next_c), next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_forward_o_tanh(x, prev_h, prev_c, Wx, Wh, b):
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    o = cache[7]
    return o * next_c, next_c, cache                                        # bug: tanh(c) missing


def lstm_backward_drops_dc(dh, caches):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, _, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, np.zeros((N, H)),
                                                                      caches[t])  # bug: dprev_c dropped
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_backward_with_dc_bug(dh, caches):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = dc_missing_path_through_h(dh[:, t] + dprev_h, dprev_c,
                                                                                   caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_backward_with_forget_bug(dh, caches):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = forget_missing_c_prev(dh[:, t] + dprev_h, dprev_c,
                                                                               caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def rnn_backward_skips_t0(dh, caches):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(1, T)):                                         # bug: stops before t = 0
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_Wh_transposed_forward(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step_forward(x, prev_h, prev_c, Wx, Wh.T.T.T, b)            # bug: Wh.T (shapes do not fit)


def gru_reset_before_product(x, prev_h, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, _ = np.split(prev_h @ Wh + bh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    H = prev_h.shape[1]
    n = np.tanh(xn + (r * prev_h) @ Wh[:, 2 * H:] + bh[2 * H:])             # bug: r before the product
    return (1 - z) * n + z * prev_h, None


def gru_update_swapped(x, prev_h, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(prev_h @ Wh + bh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return z * n + (1 - z) * prev_h, None                                   # bug: z and 1 - z swapped


def _gru_step_backward(dnext_h, cache, bug):
    x, prev_h, Wx, Wh, r, z, n, hn = cache
    dn = dnext_h * (1 - z)
    dz = dnext_h * (n - prev_h) if bug == "z sign" else dnext_h * (prev_h - n)
    dan = dn * (1 - n ** 2)
    dr = dan * hn
    dar, daz = dr * r * (1 - r), dz * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan if bug == "no r" else dan * r], axis=1)
    dprev_h = dah @ Wh.T + (0 if bug == "no direct path" else dnext_h * z)
    return dax @ Wx.T, dprev_h, x.T @ dax, prev_h.T @ dah, dax.sum(axis=0), dah.sum(axis=0)


def gru_update_derivative_sign(dnext_h, cache):
    return _gru_step_backward(dnext_h, cache, "z sign")


def gru_hidden_candidate_without_r(dnext_h, cache):
    return _gru_step_backward(dnext_h, cache, "no r")


def gru_missing_direct_path(dnext_h, cache):
    return _gru_step_backward(dnext_h, cache, "no direct path")


def truncated_off_by_one(dh, caches, k=3):
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        if t % k == 1:                                                      # bug: cuts one step late
            dprev_h = np.zeros((N, H))
    return dx, dprev_h, dWx, dWh, db


BUGS = {
    "tanh' sign": ("rnn_step_backward", tanh_derivative_sign, r"wrong sign.*tanh"),
    "tanh' as 1 + h^2": ("rnn_step_backward", tanh_derivative_plus, r"local derivative da.*tanh"),
    "dWh from next_h": ("rnn_step_backward", dWh_from_next_h, r"dWh uses .*h_t instead of h_prev"),
    "dWh transposed": ("rnn_step_backward", dWh_transposed, r"dWh is transposed"),
    "db not summed over the batch only": ("rnn_step_backward", db_summed_over_everything, r"db has shape \(\)"),
    "Wh transposed in forward": ("rnn_step_forward", Wh_transposed_forward, r"layout: .*Wh transposed"),
    "PyTorch weight shapes": ("rnn_step_forward", pytorch_shapes_forward, r"layout: .*PyTorch.*layout='pytorch'"),
    "time loop skips t=0": ("rnn_forward", rnn_forward_skips_t0, r"forward: h is wrong from time step t=0.*t = 0"),
    "dWh not summed over time": ("rnn_backward", dWh_not_summed, r"dWh is not summed over time.*step t=0 only"),
    "BPTT drops dh from t+1": ("rnn_backward", rnn_backward_drops_carried, r"carried from step t\+1.*dh_prev"),
    "forget gate derivative misses c_prev": ("lstm_step_backward", forget_missing_c_prev,
                                             r"local derivative of gate f \(forget gate\) is wrong"),
    "dc misses the path through h": ("lstm_step_backward", dc_missing_path_through_h,
                                     r"dc_prev is wrong while every gate derivative is right.*through h"),
    "output gate derivative uses dc": ("lstm_step_backward", output_gate_uses_dc, r"gate o \(output gate\)"),
    "backward stacks gates i,f,g,o": ("lstm_step_backward", backward_gate_order, r"stacked in the order i,f,g,o"),
    "dc_prev without f": ("lstm_step_backward", dc_prev_missing_f, r"dc_prev"),
    "forward reads gates i,f,g,o": ("lstm_step_forward", lstm_forward_pytorch_gate_order,
                                    r"layout: .*order i,f,g,o.*gate_order='ifgo'"),
    "h_next without tanh(c)": ("lstm_step_forward", lstm_forward_o_tanh, r"h_next is wrong while c_next is right.*gate o"),
    "lstm_backward drops dc from t+1": ("lstm_backward", lstm_backward_drops_dc, r"carried from step t\+1"),
    "lstm_backward with dc missing the path through h": ("lstm_backward", lstm_backward_with_dc_bug,
                                                         r"through h = o \* tanh\(c\)"),
    "lstm_backward with the forget-gate bug": ("lstm_backward", lstm_backward_with_forget_bug,
                                               r"local derivative of gate f \(forget gate\)"),
    "rnn_backward stops before t=0": ("rnn_backward", rnn_backward_skips_t0, r"misses the contribution of step t=0"),
    "LSTM Wh transposed in forward": ("lstm_step_forward", lstm_Wh_transposed_forward,
                                      r"raised ValueError.*Wh \(\d, \d+\).*transposed"),
    "GRU reset gate before the product": ("gru_step_forward", gru_reset_before_product,
                                          r"gate r \(reset gate\) applied before the matrix product"),
    "GRU update gate swapped": ("gru_step_forward", gru_update_swapped, r"update gate swapped"),
    "GRU update derivative sign": ("gru_step_backward", gru_update_derivative_sign, r"gate z \(update gate\)"),
    "GRU candidate without r in dWh": ("gru_step_backward", gru_hidden_candidate_without_r, r"gate n \(candidate\)"),
    "GRU dh_prev misses z * dh_next": ("gru_step_backward", gru_missing_direct_path, r"dh_prev"),
    "truncated BPTT cuts one step late": ("rnn_backward_truncated", truncated_off_by_one,
                                          r"reaches the wrong steps"),
}
