# %% [markdown]
# # Tutorial 4: vanishing and exploding gradients
#
# In tutorial 3 the gradient reached an early hidden state through the
# recursion dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)) (+ the local loss).
# Follow it k steps back and the error is multiplied k times by
#
#     J_t = dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh          (one step's Jacobian)
#
# so dh_T/dh_{T-k} = J_T J_{T-1} ... J_{T-k+1}. A product of k matrices
# shrinks or grows roughly like (size of one factor)^k: exponentially in k.
# Shrinking (vanishing) means the loss cannot tell the weights about inputs
# far in the past; growing (exploding) means one update can throw the
# weights anywhere. This chapter measures both, with the same tools for
# every model:
#
# - the eigenvalues of W_hh;
# - `viz.grad_norms_per_step`: ||dL/dh_t|| for a loss at the last step;
# - `viz.sequential_jacobian`: ||dh_T/dx_t||, how much input x_t can still move
#   the final state;
# - gradient clipping, the standard cure for explosions.

# %%
import os

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, optim, viz

os.makedirs("figures", exist_ok=True)
T, I, H = 40, 2, 16

# %% [markdown]
# ## 1. Repeated multiplication: the eigenvalues of W_hh
#
# Drop tanh for a moment: h_t = W_hh h_{t-1} + W_xh x_t gives
# dh_T/dh_{T-k} = W_hh^k. If W_hh = Q diag(lambda) Q^-1, then
# W_hh^k = Q diag(lambda^k) Q^-1: every direction is scaled by |lambda|^k. So the
# spectral radius rho = max |lambda| decides: rho < 1 vanishes, rho > 1 explodes.

# %%
def recurrent_matrix(rho, seed=0):
    """A random (H, H) matrix rescaled so that its spectral radius is exactly rho."""
    W = np.random.default_rng(seed).standard_normal((H, H))
    return rho * W / np.abs(np.linalg.eigvals(W)).max()


print(f"{'rho':>5} {'||W^1||':>10} {'||W^10||':>10} {'||W^40||':>10}")
for rho in (0.5, 1.0, 1.5):
    W = recurrent_matrix(rho)
    norms = [np.linalg.norm(np.linalg.matrix_power(W, k), 2) for k in (1, 10, 40)]
    print(f"{rho:5.1f} " + " ".join(f"{n:10.2e}" for n in norms))

# %% [markdown]
# ## 2. Gradient norms per step in a tanh RNN
#
# Now with tanh, whose derivative 1 - h^2 is at most 1 (and much less when a
# unit saturates). Put a loss on the last step only, L = sum(h_{T-1} * v),
# and measure ||dL/dh_t|| for every t: how much of the error reaches step t.

# %%
def rnn_cell_with(rho, seed=0):
    tr.manual_seed(seed)
    cell = nn.RNNCell(I, H).double()
    cell.weight_hh.data[:] = recurrent_matrix(rho, seed)
    return cell


x = tr.tensor(data.adding_problem(1, T, seed=0)[0].astype(np.float64))    # (T, 1, 2): one sequence
v = tr.tensor(np.random.default_rng(1).standard_normal((1, H)))
grad_norms = {}
for rho in (0.5, 1.0, 1.5, 3.0):
    hs, _ = viz.unroll(rnn_cell_with(rho), x)
    grad_norms[f"rho = {rho}"] = viz.grad_norms_per_step((hs[-1] * v).sum(), hs)
    g = grad_norms[f"rho = {rho}"]
    print(f"rho = {rho}: ||dL/dh_t|| at t = T-1: {g[-1]:.2e}, t = T-10: {g[-10]:.2e}, t = 0: {g[0]:.2e}")
viz.plot_per_step(grad_norms, "figures/04_grad_norms.png", title="tanh RNN, loss at the last step",
                  ylabel="||dL/dh_t||")
assert grad_norms["rho = 0.5"][0] < 1e-8 * grad_norms["rho = 0.5"][-1]

# %% [markdown]
# With rho = 0.5 the gradient reaching t = 0 is some 1e-15 of its size at the
# end: nothing of the error is left. rho = 1 still loses six orders of
# magnitude over 40 steps, because tanh' < 1 shrinks every factor further.
# Around rho = 1.5 the two effects roughly balance, and with rho = 3 the
# gradient *grows* going back in time: it explodes. (Push rho higher and the
# tanh units saturate, 1 - h^2 ~ 0, and the product shrinks again: a tanh
# RNN explodes only in a band of weights.)
#
# ## 3. The sequential Jacobian: vanilla RNN against LSTM
#
# `viz.sequential_jacobian(model, x)` measures ||dh_{T-1}/dx_t||_F for every
# input step t: how strongly the last hidden state still depends on each
# input. Here both models read the same adding-problem sequences (the task:
# remember two marked numbers until the end), with PyTorch's default
# initialisation; for the LSTM we also set the forget-gate bias to 1, the
# usual practice (Jozefowicz et al. 2015) that starts the forget gate near
# "keep". (Tutorial 6 explains why the LSTM's cell state lets gradients through.)

# %%
tr.manual_seed(0)
rnn = nn.RNN(I, H).double()
lstm = nn.LSTM(I, H).double()
lstm.bias_ih_l0.data[H:2 * H] = 1.0          # gate order i, f, g, o: the f block
lstm.bias_hh_l0.data[H:2 * H] = 0.0

xs = data.adding_problem(5, T, seed=2)[0].astype(np.float64)
jacobians = {name: np.mean([viz.sequential_jacobian(model, xs[:, b]) for b in range(5)], axis=0)
             for name, model in (("vanilla RNN", rnn), ("LSTM", lstm))}
print(f"{'':<12} {'t = T-1':>9} {'t = T-10':>9} {'t = T-20':>9} {'t = 0':>9}   decay ||dh/dx_0|| / ||dh/dx_T-1||")
decay = {}
for name, J in jacobians.items():
    decay[name] = J[0] / J[-1]
    print(f"{name:<12} {J[-1]:9.2e} {J[-10]:9.2e} {J[-20]:9.2e} {J[0]:9.2e}   {decay[name]:.1e}")
ratio = decay["LSTM"] / decay["vanilla RNN"]
for name in decay:
    print(f"{name}: the Jacobian shrinks by a factor {decay[name] ** (-1 / (T - 1)):.2f} per step on average")
print(f"the LSTM keeps {ratio:.0e} times more of the signal from x_0 than the vanilla RNN")
assert ratio > 1e3
viz.plot_per_step(jacobians, "figures/04_sequential_jacobian.png", title=f"sequential Jacobian, T = {T}",
                  ylabel="||dh_{T-1} / dx_t||")

# %% [markdown]
# Both curves fall as t moves into the past, but at very different rates:
# the vanilla RNN loses a factor of about 1.6 per step, so after 40 steps x_0
# moves h_{T-1} some 1e-8 as much as x_{T-1} does, while the LSTM keeps
# about 1e-3 — five orders of magnitude more. Gradients flow along exactly these paths, so the RNN cannot
# *learn* to use x_0 for a loss at step T-1: its gradient is lost in the
# float32 rounding noise of the recent steps.
#
# ## 4. Exploding gradients and clipping
#
# A linear-ish regime with rho > 1 (small inputs, no saturation) makes the
# gradient grow exponentially instead. One step of gradient descent with such
# a gradient can jump far out of the region where the loss was measured.
# **Gradient clipping** rescales the whole gradient when its norm exceeds a
# threshold: g <- g * max_norm / ||g||. The direction is kept; only the step
# length is capped.

# %%
cell = rnn_cell_with(1.8)
small_x = tr.tensor(0.01 * x.data)                     # tiny inputs keep the tanh units linear
hs, _ = viz.unroll(cell, small_x)
loss = (hs[-1] * v).sum() * 100
loss.backward()
before = {n: p.grad.copy() for n, p in cell.named_parameters()}
total = optim.clip_grad_norm_(cell.parameters(), max_norm=1.0)
after_norm = np.sqrt(sum(np.sum(p.grad ** 2) for p in cell.parameters()))
flat_before = np.concatenate([g.ravel() for g in before.values()])
flat_after = np.concatenate([p.grad.ravel() for p in cell.parameters()])
cosine = flat_before @ flat_after / (np.linalg.norm(flat_before) * np.linalg.norm(flat_after))
print(f"gradient norm before clipping: {total:.3e}, after: {after_norm:.3f}, cosine(before, after) = {cosine:.6f}")
assert total > 100 and abs(after_norm - 1.0) < 1e-4 and cosine > 0.999999

# %% [markdown]
# Clipping is cheap insurance and is used in practice for nearly every RNN
# (`optim.clip_grad_norm_` returns the norm before clipping: log it, and a
# spike tells you an explosion happened). It does nothing for *vanishing*
# gradients: a gradient of 1e-12 stays 1e-12. For that we need a different
# architecture (tutorial 6) or shorter paths (attention).
#
# ## Exercises
#
# 1. Plot ||W_hh^k|| against k for rho = 0.9, 1.0, 1.1 on a log axis. Why is
#    the slope log(rho)? What does a non-normal W_hh (e.g. upper triangular)
#    do for small k?
# 2. In section 2 use `nonlinearity="relu"` with an identity W_hh (the IRNN of
#    Le, Jaitly & Hinton 2015). What do the gradient norms do?
# 3. Compute the full matrix `viz.sequential_jacobian(rnn, x, full=True)`,
#    ||dh_s/dx_t|| for all s and t, and draw it with `viz.plot_matrix(..., log=True)`.
#    Why is it zero above the diagonal?
# 4. Set the LSTM forget-gate bias to -2 instead of 1. How does its curve in
#    section 3 change? And to 3?
# 5. Train a vanilla RNN on the adding problem with and without
#    `clip_grad_norm_` and a large learning rate; log the returned norm.
