# %% [markdown]
# # Tutorial 12: write an LSTM in NumPy and let the grader check it
#
# CS231n's RNN assignment asks for an LSTM written in NumPy: a step forward,
# a step backward, and the same over whole sequences. This tutorial writes
# them in CS231n's layout (Wx (D, 4H), Wh (H, 4H), gate blocks i, f, o, g),
# then checks them with `tr.check`, which compares every output and gradient
# with the engine on random shapes and says *what* is wrong: a layout, a
# forward value, or which gradient, which gate, which time step.
#
# Then we plant two bugs students really make and read the grader's report.
#
#     a = x Wx + h_prev Wh + b          (N, 4H), blocks a_i, a_f, a_o, a_g
#     i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
#     c_next = f * c_prev + i * g
#     h_next = o * tanh(c_next)

# %%
import numpy as np

import tinygrad_rnn as tr


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# %% [markdown]
# ## 1. The step, forward and backward
#
# Backward, from the top: h_next = o * tanh(c_next) sends gradient to o and,
# through tanh, to c_next, where it joins the gradient dc_next arriving from
# step t+1:
#
#     dc = dc_next + dh_next * o * (1 - tanh(c_next)^2)
#     di = dc * g,   df = dc * c_prev,   dg = dc * i,   do = dh_next * tanh(c_next)
#
# then each gate's local derivative (sigmoid' = s (1 - s), tanh' = 1 - t^2)
# gives da, and da gives every other gradient.

# %%
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step: (next_h, next_c, cache). x (N, D), prev_h, prev_c (N, H), gate blocks i, f, o, g."""
    # BEGIN SOLUTION
    a = x @ Wx + prev_h @ Wh + b
    ai, af, ao, ag = np.split(a, 4, axis=1)
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    # END SOLUTION


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Gradients of one step: (dx, dprev_h, dprev_c, dWx, dWh, db)."""
    # BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    dai = dc * g * i * (1 - i)
    daf = dc * prev_c * f * (1 - f)
    dao = dnext_h * tanh_c * o * (1 - o)
    dag = dc * i * (1 - g ** 2)
    da = np.concatenate([dai, daf, dao, dag], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)
    # END SOLUTION


# %% [markdown]
# ## 2. The check
#
# The engine uses PyTorch's gate order i, f, g, o. Checked without saying
# which order we used, the report has exactly one finding: the layout, with
# the argument to pass. With `gate_order="ifog"` it passes.

# %%
report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward, verbose=False)
print("finding:", report.finding)
assert len(report.findings) == 1 and "gate_order='ifog'" in report.finding

report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward, gate_order="ifog")
assert report.passed

# %% [markdown]
# ## 3. Whole sequences
#
# `lstm_forward` runs the step over T steps from c0 = 0; `lstm_backward`
# walks back, adding the gradient carried from step t+1 (dprev_h, dprev_c)
# to the upstream gradient of step t.

# %%
def lstm_forward(x, h0, Wx, Wh, b):
    """All hidden states h (N, T, H) for x (N, T, D), starting from h0 and c0 = 0; and the caches."""
    # BEGIN SOLUTION
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev_h, prev_c, caches = h0, np.zeros_like(h0), []
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches
    # END SOLUTION


def lstm_backward(dh, caches):
    """BPTT for lstm_forward: (dx, dh0, dWx, dWh, db); dh (N, T, H) is the loss's gradient at each step alone."""
    # BEGIN SOLUTION
    N, T, H = dh.shape
    dx = np.zeros((N, T, caches[0][0].shape[1]))
    dWx, dWh, db = 0, 0, 0
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db
    # END SOLUTION


report = tr.check.check_lstm_sequence(lstm_forward, lstm_backward, gate_order="ifog")
assert report.passed

# %% [markdown]
# ## 4. A planted bug: dc without the path through h
#
# A common slip: dc = dnext_c, forgetting that h_next = o * tanh(c_next)
# also depends on c_next. Every gate's *local* derivative is still right,
# so a report that listed the gates whose gradients are wrong (i, f, g)
# would send the student to the wrong lines. The grader probes the step
# with dc_next alone and with dh_next alone, sees that only the path from h
# to c is broken, and says so.

# %%
def lstm_step_backward_planted(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c                                             # the bug
    dai, daf = dc * g * i * (1 - i), dc * prev_c * f * (1 - f)
    dao, dag = dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g ** 2)
    da = np.concatenate([dai, daf, dao, dag], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward_planted, gate_order="ifog", trials=1)
assert "through h" in report.finding

# %% [markdown]
# The first lines are the verdict and *the* finding; the details below it
# give, for each quantity, whether it is right and, if not, where the error
# is largest. Gradients of the weights are compared gate by gate.
#
# ## 5. A planted bug in the sequence: the carried gradient dropped
#
# Here `lstm_backward` forgets to pass dprev_c back to the earlier step. The
# grader puts a loss on the last step only: the last step's gradients are
# right (its local derivatives are), the earlier ones are wrong, so the
# error is in the gradient carried from step t+1.

# %%
def lstm_backward_planted(dh, caches):
    N, T, H = dh.shape
    dx = np.zeros((N, T, caches[0][0].shape[1]))
    dWx, dWh, db = 0, 0, 0
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, _, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, np.zeros((N, H)),
                                                                      caches[t])   # the bug: dprev_c dropped
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


report = tr.check.check_lstm_sequence(lstm_forward, lstm_backward_planted, gate_order="ifog", verbose=False)
print(report.finding)
assert "carried from step t+1" in report.finding

# %% [markdown]
# ## 6. For TAs: the same checks as an autograder
#
# A student's file with these function names (and `rnn_step_forward`,
# `rnn_forward`, `gru_step_forward`, ... as listed in `tr.check`) is graded
# with partial credit per function by
#
#     tinygrad-rnn grade student.py                      # a text report
#     tinygrad-rnn grade student.py --format gradescope  # Gradescope's results.json
#
# and in your own pytest tests:
#
#     def test_lstm_step():
#         report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward, gate_order="ifog", verbose=False)
#         assert report.passed, report
#
# ## Exercises
#
# 1. Plant the bug "forget-gate derivative without c_prev" (df = dc) and
#    predict the finding before you run the check.
# 2. Swap two gate blocks in `lstm_step_backward`'s concatenate only. What
#    does the grader say, and why is the forward still right?
# 3. Write `gru_step_forward` and `gru_step_backward` (signatures in
#    `tr.check`) and check them with `tr.check.check_gru_step`.
