"""The grading helper: correct student code passes, buggy code is reported by name.

The "student" functions below are what an assignment would ask for: NumPy
forward/backward passes with a cache. Each bug is one a student really makes.
"""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import check


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# ---- vanilla RNN -------------------------------------------------------------

def rnn_step_forward(x, h_prev, Wx, Wh, b):
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h_next, (x, h_prev, Wx, Wh, h_next)


def rnn_step_backward(dh_next, cache):
    x, h_prev, Wx, Wh, h_next = cache
    da = dh_next * (1 - h_next ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_step_backward_wrong_tanh(dh_next, cache):
    x, h_prev, Wx, Wh, h_next = cache
    da = dh_next * (1 - h_next)              # bug: tanh'(a) is 1 - tanh(a)^2
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    h, caches = h0, []
    hs = np.zeros((x.shape[0], x.shape[1], h0.shape[1]))
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        hs[:, t] = h
        caches.append(cache)
    return hs, caches


def rnn_backward(dh, caches, carry_gradient=True):
    dx = np.zeros(dh.shape[:2] + (caches[0][0].shape[1],))
    dWx, dWh, db = 0, 0, 0
    dh_prev = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        upstream = dh[:, t] + dh_prev if carry_gradient else dh[:, t]
        dx[:, t], dh_prev, dWx_t, dWh_t, db_t = rnn_step_backward(upstream, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dh_prev, dWx, dWh, db


def rnn_backward_forgets_next_step(dh, caches):
    return rnn_backward(dh, caches, carry_gradient=False)   # bug: drops dL/dh_t from step t+1


# ---- LSTM (gate order i, f, g, o) ---------------------------------------------

def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    a = x @ Wx + h_prev @ Wh + b
    ai, af, ag, ao = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c_next = f * c_prev + i * g
    h_next = o * np.tanh(c_next)
    return h_next, c_next, (x, h_prev, c_prev, Wx, Wh, i, f, g, o, c_next)


def lstm_step_backward(dh_next, dc_next, cache, forget_bug=False):
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, c_next = cache
    tanh_c = np.tanh(c_next)
    do = dh_next * tanh_c
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    di, df, dg = dc * g, dc * c_prev, dc * i
    dai = di * i * (1 - i)
    daf = df * (1 - f) if forget_bug else df * f * (1 - f)   # the bug: sigmoid' written as 1 - f
    dag = dg * (1 - g ** 2)
    dao = do * o * (1 - o)
    da = np.concatenate([dai, daf, dag, dao], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def lstm_step_backward_forget_bug(dh_next, dc_next, cache):
    return lstm_step_backward(dh_next, dc_next, cache, forget_bug=True)


def lstm_step_forward_ifog(x, h_prev, c_prev, Wx, Wh, b):
    """A CS231n-layout LSTM (blocks i, f, o, g)."""
    a = x @ Wx + h_prev @ Wh + b
    ai, af, ao, ag = np.split(a, 4, axis=1)
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    c_next = f * c_prev + i * g
    return o * np.tanh(c_next), c_next


# ---- GRU --------------------------------------------------------------------------

def gru_step_forward(x, h_prev, Wx, Wh, bx, bh, swap_update=False):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ Wh + bh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return z * n + (1 - z) * h_prev if swap_update else (1 - z) * n + z * h_prev


def gru_step_forward_swapped(x, h_prev, Wx, Wh, bx, bh):
    return gru_step_forward(x, h_prev, Wx, Wh, bx, bh, swap_update=True)


# ---- tests --------------------------------------------------------------------------

@given(seed=st.integers(0, 2 ** 16))
def test_correct_student_code_passes(seed):
    assert check.check_rnn_step(rnn_step_forward, rnn_step_backward, seed=seed, verbose=False).passed
    assert check.check_lstm_step(lstm_step_forward, lstm_step_backward, seed=seed, verbose=False).passed
    assert check.check_gru_step(gru_step_forward, seed=seed, verbose=False).passed
    assert check.check_rnn_sequence(rnn_forward, rnn_backward, seed=seed, verbose=False).passed


def test_forward_only_and_other_gate_order():
    assert check.check_lstm_step(lstm_step_forward_ifog, gate_order="ifog", verbose=False).passed
    assert check.check_rnn_step(lambda *a: rnn_step_forward(*a)[0], verbose=False).passed


def test_wrong_forget_gate_derivative_is_named(capsys):
    report = check.check_lstm_step(lstm_step_forward, lstm_step_backward_forget_bug)
    text = capsys.readouterr().out
    assert not report.passed
    wrong_parts = {part for _, _, part in report.failures}
    assert "gate f (forget gate)" in wrong_parts
    assert not {"gate i (input gate)", "gate g (candidate)", "gate o (output gate)"} & wrong_parts
    assert "dWx gate f (forget gate)" in text and "WRONG" in text
    assert "gradient wrong through: gate f (forget gate)" in text


def test_wrong_gate_order_gets_a_hint():
    report = check.check_lstm_step(lstm_step_forward_ifog, verbose=False)
    assert not report.passed
    assert any("order i,f,o,g" in line for line in report.lines)


def test_wrong_tanh_derivative_names_the_parameters():
    report = check.check_rnn_step(rnn_step_forward, rnn_step_backward_wrong_tanh, verbose=False)
    assert {name for _, name, _ in report.failures} == {"dx", "dh_prev", "dWx", "dWh", "db"}
    assert all(" ok " in line for line in report.lines if line.startswith("  h_next"))


def test_bptt_without_the_carried_gradient_names_the_time_steps():
    report = check.check_rnn_sequence(rnn_forward, rnn_backward_forgets_next_step, verbose=False)
    assert not report.passed
    dx_steps = {(trial, part) for trial, name, part in report.failures if name == "dx"}
    lengths = [int(re.search(r"T=(\d+)", line).group(1)) for line in report.lines if line.startswith("trial")]
    for trial, T in enumerate(lengths):
        assert (trial, f"t={T - 1}") not in dx_steps          # the last step has nothing to carry
        assert (trial, "t=0") in dx_steps                      # earlier steps miss it
    assert {"dWh", "dh0"} <= {name for _, name, _ in report.failures}


def test_gru_variant_is_recognised():
    report = check.check_gru_step(gru_step_forward_swapped, verbose=False)
    assert not report.passed
    assert any("update gate swapped" in line for line in report.lines)


def test_wrong_shapes_and_return_values_are_reported():
    report = check.check_rnn_step(lambda x, h, Wx, Wh, b: np.zeros((1, 7, 7)), verbose=False)
    assert any("WRONG SHAPE" in line for line in report.lines) and not report.passed
    with pytest.raises(TypeError, match="lstm_step_forward should return 2"):
        check.check_lstm_step(lambda *a: a[0], verbose=False)
    with pytest.raises(ValueError, match="gate_order"):
        check.check_lstm_step(lstm_step_forward, gate_order="ifgx")


def test_checks_are_exported():
    assert tr.check.check_rnn_step is check.check_rnn_step
