# %% [markdown]
# # Tutorial 6: leaky units, LSTM and GRU — why gates keep gradients alive
#
# Tutorial 4 showed the vanilla RNN's gradient dying as the product of
# Jacobians J_t = diag(1 - h_t^2) W_hh. The fix in every cell below is the same
# idea: give the state an **additive** path from one step to the next whose
# Jacobian is close to the identity, so the product does not shrink.
#
#     leaky unit   h_t = (1 - alpha) h_{t-1} + alpha tanh(W_hh h_{t-1} + W_xh x_t + b)
#                  dh_t/dh_{t-1} = (1 - alpha) I + alpha diag(1 - tanh^2) W_hh
#     LSTM         c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
#                  dc_t/dc_{t-1} = diag(f)        (direct path: no W_hh, no tanh')
#     GRU          h_t = (1 - z) * n + z * h_{t-1}
#                  dh_t/dh_{t-1} = diag(z) + (terms through n, r and z)
#
# A leaky unit fixes the "keep" fraction to 1 - alpha. The LSTM's forget gate
# f and the GRU's update gate z *learn* it, per unit and per step: near 1
# they keep the memory (and its gradient), near 0 they reset it.
#
# We make the same measurements as in tutorial 4 for all four cells.

# %%
import os

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, viz

os.makedirs("figures", exist_ok=True)
T, I, H = 40, 2, 16

tr.manual_seed(0)
cells = {
    "vanilla RNN": nn.RNNCell(I, H).double(),
    "leaky RNN (alpha = 0.1)": nn.LeakyRNNCell(I, H, alpha=0.1).double(),
    "LSTM": nn.LSTMCell(I, H).double(),
    "GRU (z bias 0)": nn.GRUCell(I, H).double(),
    "GRU (z bias 1)": nn.GRUCell(I, H).double(),
}
lstm, gru = cells["LSTM"], cells["GRU (z bias 1)"]
lstm.bias_ih.data[H:2 * H], lstm.bias_hh.data[H:2 * H] = 1.0, 0.0      # forget-gate bias 1 (gates i, f, g, o)
gru.bias_ih.data[H:2 * H], gru.bias_hh.data[H:2 * H] = 1.0, 0.0        # update-gate bias 1 (gates r, z, n)
xs = data.adding_problem(5, T, seed=2)[0].astype(np.float64)          # (T, 5, 2): five sequences

# %% [markdown]
# ## 1. The sequential Jacobian ||dh_{T-1}/dx_t||
#
# `viz.sequential_jacobian` takes any function x (T, B, I) -> h (T, B, H); for
# a cell, `viz.unroll` runs it step by step.

# %%
def as_sequence_model(cell):
    return lambda x: tr.stack(viz.unroll(cell, x)[0])


jacobians = {name: np.mean([viz.sequential_jacobian(as_sequence_model(cell), xs[:, b]) for b in range(5)], axis=0)
             for name, cell in cells.items()}
print(f"{'':<24} {'t = T-1':>9} {'t = T-20':>9} {'t = 0':>9}   ||dh/dx_0|| / ||dh/dx_T-1||")
decay = {}
for name, J in jacobians.items():
    decay[name] = J[0] / J[-1]
    print(f"{name:<24} {J[-1]:9.2e} {J[-20]:9.2e} {J[0]:9.2e}   {decay[name]:.1e}")
viz.plot_per_step(jacobians, "figures/06_sequential_jacobian.png", title=f"sequential Jacobian, T = {T}",
                  ylabel="||dh_{T-1} / dx_t||")
for name in ("leaky RNN (alpha = 0.1)", "LSTM", "GRU (z bias 1)"):
    assert decay[name] > 100 * decay["vanilla RNN"], name

# %% [markdown]
# The leaky unit, the LSTM (forget bias 1) and the GRU with update-gate bias 1
# keep orders of magnitude more of x_0's influence than the vanilla RNN. The
# GRU with all biases near 0 does *not*: its update gate z ~ sigmoid(0) = 0.5
# keeps only half of h_{t-1} per step, 0.5^40 ~ 1e-12. A gate keeps the
# gradient alive only when it is open — which is why forget/update biases are
# initialised positive, and what training learns for the units that must
# remember. The leaky unit pays for its long memory with a small response to
# the current input (only alpha = 10% of the new value enters per step); the
# gated cells choose per unit and per step.
#
# ## 2. Gradient norms per step ||dL/dh_t||
#
# The same loss as in tutorial 4: L = sum(h_{T-1} * v), a loss at the last step only.

# %%
v = tr.tensor(np.random.default_rng(1).standard_normal((1, H)))
grad_norms = {}
for name, cell in cells.items():
    hs, _ = viz.unroll(cell, tr.tensor(xs[:, :1]))
    grad_norms[name] = viz.grad_norms_per_step((hs[-1] * v).sum(), hs)
    print(f"{name:<24} ||dL/dh_0|| / ||dL/dh_T-1|| = {grad_norms[name][0] / grad_norms[name][-1]:.1e}")
viz.plot_per_step(grad_norms, "figures/06_grad_norms.png", title="loss at the last step", ylabel="||dL/dh_t||")

# %% [markdown]
# ## 3. Inside the LSTM: the cell state is a gradient highway
#
# Along the cell state alone, dc_{T-1}/dc_t = diag(f_{t+1} * f_{t+2} * ... * f_{T-1}):
# a product of forget-gate values, elementwise, with no matrix and no
# squashing. We record the forget gates while running the cell and compare
# that product with ||dL/dc_t|| for a loss on the final cell state.

# %%
from tinygrad_rnn.nn.cells import affine  # noqa: E402  (x W^T + b, the cell's own helper)

x = tr.tensor(xs[:, :1])
h, c = tr.zeros(1, H, dtype=np.float64), tr.zeros(1, H, dtype=np.float64)
cs, forget = [], []
for t in range(T):
    gates = affine(x[t], lstm.weight_ih, lstm.bias_ih) + affine(h, lstm.weight_hh, lstm.bias_hh)
    forget.append(gates.data[0, H:2 * H])                    # pre-activation of f
    h, c = lstm(x[t], (h, c))
    cs.append(c)
forget = 1 / (1 + np.exp(-np.array(forget)))                 # f_t = sigmoid(...)
print(f"mean forget gate f over all steps and units: {forget.mean():.3f}")
norms = viz.grad_norms_per_step(cs[-1].sum(), cs)
keep_product = np.array([np.linalg.norm(np.prod(forget[t + 1:], axis=0)) for t in range(T)])
assert np.isclose(norms[-1], keep_product[-1]) and keep_product[T - 10] > 0.5 * norms[T - 10]
for t in (T - 1, T - 10, T - 20, 0):
    print(f"t = {t:2d}: ||dL/dc_t|| = {norms[t]:.2e}    ||f_(t+1) * ... * f_(T-1)|| = {keep_product[t]:.2e}")

# %% [markdown]
# Over the first steps back the product of forget gates accounts for most of
# the gradient; further back the other paths (through h_t and the gates,
# which do involve W_hh) add to it. Either way the rate is set by the forget
# gates, and those the network can learn to hold open. A forget gate that learns to stay at
# 0.99 keeps 0.99^100 = 37% of the gradient over 100 steps; the vanilla RNN's
# factor of about 0.6 per step keeps 1e-22.
#
# ## 4. Two GRUs: where the reset gate goes
#
# There are two GRUs in use. They differ in one place, the candidate n:
#
#     reset_after=True  (PyTorch, cuDNN; the default)   n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))
#     reset_after=False (the 2014 paper, Keras option)   n = tanh(W_in x_t + b_in + W_hn (r * h_{t-1}) + b_hn)
#
# The first applies r *after* the recurrent product, so W_hh h_{t-1} for all
# three gates is one matrix product per step (what fast kernels want). The
# second applies r *before* it, so each step needs r first, then a second
# product W_hn (r * h_{t-1}). With the reset gate wide open (r = 1) the two
# are the same function; otherwise they are different cells with the same
# parameter shapes. We give both the same weights and compare.

# %%
after, before = nn.GRUCell(I, H).double(), nn.GRUCell(I, H, reset_after=False).double()
before.load_state_dict({name: p.data for name, p in after.named_parameters()})
h_after, h_before = tr.zeros(5, H, dtype=np.float64), tr.zeros(5, H, dtype=np.float64)
x = tr.tensor(xs)
for t in range(T):
    h_after, h_before = after(x[t], h_after), before(x[t], h_before)
print(f"same weights, r free:  max |h_after - h_before| = {np.abs(h_after.data - h_before.data).max():.3f}")

for cell in (after, before):
    cell.bias_ih.data[:H] = 50.0                              # r = sigmoid(50 + ...) = 1: the reset gate open
h_after, h_before = tr.zeros(5, H, dtype=np.float64), tr.zeros(5, H, dtype=np.float64)
for t in range(T):
    h_after, h_before = after(x[t], h_after), before(x[t], h_before)
gap = np.abs(h_after.data - h_before.data).max()
print(f"same weights, r = 1:   max |h_after - h_before| = {gap:.1e}")
assert gap < 1e-12

# %% [markdown]
# Keras saves the two kinds with different biases: (2, 3H) for
# reset_after=True, (3H,) for reset_after=False; `tr.io.convert_weights(...,
# "keras")` reads both, and the second loads into `nn.GRU(..., reset_after=False)`.
#
# ## Exercises
#
# 1. Sweep alpha in {1, 0.5, 0.1, 0.02} for the leaky unit and plot the
#    sequential Jacobian. What is lost as alpha gets small? (Try the weekly
#    routine of tutorial 2 with a leaky cell.)
# 2. Set the LSTM forget-gate bias to -3. Which curve does the LSTM now
#    resemble? What does that say about initialising forget gates?
# 3. For the GRU, record z_t the same way as f_t in section 3 and compare
#    the product of z with ||dL/dh_t||. Why does it not match as closely?
# 4. Train the vanilla RNN and the LSTM on the adding problem
#    (`tr.data.adding_problem`) with T = 30 for a minute each. Which one beats
#    the baseline MSE of 0.167? Plot both sequential Jacobians after training.
