# %% [markdown]
# # Tutorial 3: backpropagation through time, derived by hand
#
# We derive every gradient of a vanilla RNN with a loss at every time step,
# write the derivation as NumPy code line by line, and check each line
# against the engine (which knows nothing about RNNs: it only applies the
# chain rule to the unrolled graph) and against finite differences.
#
# The network, for one sequence x_0 .. x_{T-1} (column vectors), h_{-1} = 0:
#
#     a_t = W_hh h_{t-1} + W_xh x_t          pre-activation      (H,)
#     h_t = tanh(a_t)                        hidden state        (H,)
#     y_t = W_hy h_t                         output              (K,)
#     L_t = 1/2 ||y_t - d_t||^2              loss at step t      (d_t: the target)
#     L   = sum_t L_t
#
# W_xh (H, I), W_hh (H, H) and W_hy (K, H) are the same at every step.

# %%
import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import nn

rng = np.random.default_rng(0)
T, I, H, K = 6, 3, 4, 2
W_xh = rng.standard_normal((H, I)) * 0.5
W_hh = rng.standard_normal((H, H)) * 0.5
W_hy = rng.standard_normal((K, H)) * 0.5
xs = rng.standard_normal((T, I))
ds = rng.standard_normal((T, K))

# %% [markdown]
# ## 1. The forward pass, keeping what backward needs
#
# Backward will need every h_t (and h_{t-1}), so the forward pass stores
# them all: memory grows linearly with T. That is the price of BPTT on long
# sequences (and one reason for truncated BPTT, tutorial 5).

# %%
def forward(W_xh, W_hh, W_hy):
    hs, ys, loss = [np.zeros(H)], [], 0.0          # hs[0] is h_{-1} = 0; hs[t + 1] is h_t
    for t in range(T):
        a_t = W_hh @ hs[-1] + W_xh @ xs[t]
        h_t = np.tanh(a_t)
        y_t = W_hy @ h_t
        loss += 0.5 * np.sum((y_t - ds[t]) ** 2)
        hs.append(h_t)
        ys.append(y_t)
    return loss, hs, ys


loss, hs, ys = forward(W_xh, W_hh, W_hy)
print(f"L = {loss:.6f}")

# %% [markdown]
# ## 2. The backward pass, derived
#
# Go backwards in time. At step t the loss reaches h_t along two paths: through
# this step's output y_t, and through the next pre-activation a_{t+1} (which
# uses h_t via W_hh). The chain rule adds the two:
#
#     dL/dy_t = y_t - d_t                                         (from L_t only)
#     dL/dh_t = W_hy^T dL/dy_t  +  W_hh^T dL/da_{t+1}             (second term 0 at t = T-1)
#     dL/da_t = dL/dh_t * (1 - h_t^2)                             (tanh' = 1 - tanh^2, elementwise)
#
# Each weight is used at every step, so its gradient is the **sum over steps**
# of the local contribution (an outer product):
#
#     dL/dW_hy = sum_t dL/dy_t h_t^T
#     dL/dW_hh = sum_t dL/da_t h_{t-1}^T
#     dL/dW_xh = sum_t dL/da_t x_t^T
#
# The term W_hh^T dL/da_{t+1} is what makes this *through time*: the error at a
# late step flows back to early hidden states, multiplied by W_hh^T and
# tanh' once per step (tutorial 4 is about what that repeated product does).

# %%
def backward(hs, ys):
    """BPTT by hand: ({"W_xh": dL/dW_xh, "W_hh": ..., "W_hy": ...}, dh, da), where dh[t] = dL/dh_t
    and da[t] = dL/da_t, from the equations above (go backwards in time, add the two paths)."""
    # BEGIN SOLUTION
    dW_xh, dW_hh, dW_hy = np.zeros_like(W_xh), np.zeros_like(W_hh), np.zeros_like(W_hy)
    dh, da = {}, {}
    da_next = np.zeros(H)                                     # dL/da_T = 0: there is no step T
    for t in reversed(range(T)):
        h_t, h_prev = hs[t + 1], hs[t]
        dy_t = ys[t] - ds[t]                                  # dL/dy_t
        dh[t] = W_hy.T @ dy_t + W_hh.T @ da_next              # dL/dh_t: two paths
        da[t] = dh[t] * (1 - h_t ** 2)                        # dL/da_t
        dW_hy += np.outer(dy_t, h_t)
        dW_hh += np.outer(da[t], h_prev)
        dW_xh += np.outer(da[t], xs[t])
        da_next = da[t]
    return {"W_xh": dW_xh, "W_hh": dW_hh, "W_hy": dW_hy}, dh, da
    # END SOLUTION


grads, dh, da = backward(hs, ys)
for name, g in grads.items():
    print(f"dL/d{name} by hand:\n{g.round(4)}")

# %% [markdown]
# ## 3. The same network with the engine, compared line by line
#
# Write the forward pass with Tensors (same symbols, same order) and call
# `backward()`. `retain_grad()` asks the engine to keep dL/dh_t and dL/da_t
# for these intermediate tensors, so we can compare them step by step with
# the hand-derived `dh[t]` and `da[t]`.

# %%
params = {"W_xh": tr.tensor(W_xh, requires_grad=True), "W_hh": tr.tensor(W_hh, requires_grad=True),
          "W_hy": tr.tensor(W_hy, requires_grad=True)}


def engine_loss(W_xh, W_hh, W_hy, keep=None):
    h, total = tr.zeros(H, dtype=np.float64), 0.0
    for t in range(T):
        with tr.time_step(t):
            a_t = W_hh @ h + W_xh @ tr.tensor(xs[t])
            h = a_t.tanh()
            y_t = W_hy @ h
            total = total + 0.5 * ((y_t - tr.tensor(ds[t])) ** 2).sum()
        if keep is not None:
            keep.append((a_t.retain_grad(), h.retain_grad()))
    return total


kept = []
L = engine_loss(*params.values(), keep=kept)
L.backward()
print(f"L: by hand {loss:.12f}, engine {L.item():.12f}")
print(f"{'t':>3} {'max|dL/dh_t hand - engine|':>28} {'max|dL/da_t hand - engine|':>28}")
for t, (a_t, h_t) in enumerate(kept):
    err_h, err_a = np.abs(dh[t] - h_t.grad).max(), np.abs(da[t] - a_t.grad).max()
    print(f"{t:>3} {err_h:28.2e} {err_a:28.2e}")
    assert err_h < 1e-12 and err_a < 1e-12
for name, p in params.items():
    err = np.abs(grads[name] - p.grad).max()
    print(f"dL/d{name}: max |hand - engine| = {err:.2e}")
    assert err < 1e-12

# %% [markdown]
# They agree to rounding error (about 1e-16): the engine's generic reverse
# pass over the unrolled graph computes exactly the BPTT recursion above.
#
# ## 4. Both against finite differences
#
# Agreement between two implementations could hide a shared mistake in the
# derivation. Central differences need no derivation at all:
#
#     dL/dW[k] ~ (L(W + eps e_k) - L(W - eps e_k)) / (2 eps)
#
# `tr.gradcheck` does this for every element, in float64.

# %%
report = tr.gradcheck(lambda *ws: engine_loss(*ws), list(params.values()), names=list(params))
print(report)
def finite_differences(name, eps=1e-6):
    """dL/d(name) from the NumPy forward pass alone: no derivation involved."""
    numeric = np.zeros_like(grads[name])
    for k in np.ndindex(numeric.shape):
        plus = {n: p.data.copy() for n, p in params.items()}
        minus = {n: p.data.copy() for n, p in params.items()}
        plus[name][k] += eps
        minus[name][k] -= eps
        numeric[k] = (forward(**plus)[0] - forward(**minus)[0]) / (2 * eps)
    return numeric


for name in params:
    numeric = finite_differences(name)
    print(f"dL/d{name}: max |hand - finite differences| = {np.abs(grads[name] - numeric).max():.2e}")
    assert np.allclose(grads[name], numeric, atol=1e-7)

# %% [markdown]
# ## 5. Where the gradient of W_hh comes from
#
# dL/dW_hh is a sum of T contributions dL/da_t h_{t-1}^T. Printing their sizes
# shows how much each step adds. Step 0 contributes nothing (h_{-1} = 0);
# the others depend on how strongly later losses reach back to them.

# %%
for t in range(T):
    print(f"t={t}: ||dL/da_t h_(t-1)^T|| = {np.linalg.norm(np.outer(da[t], hs[t])):.4f}   "
          f"||dL/dh_t|| = {np.linalg.norm(dh[t]):.4f}")

# %% [markdown]
# The library can make this table for any cell: `tr.bptt.bptt_gradcheck`
# unrolls a cell with a separate copy W_(t) of each weight at each step, so
# it can check each step's contribution dL/dW_(t) against finite differences
# on its own (its loss is L = sum_t h_t . v_t with random directions v_t).

# %%
tr.manual_seed(0)
cell = nn.RNNCell(3, 4)
print(tr.bptt.bptt_gradcheck(cell, rng.standard_normal((4, 1, 3))))

# %% [markdown]
# ## Exercises
#
# 1. Add biases: a_t = W_hh h_{t-1} + W_xh x_t + b, y_t = W_hy h_t + c. Derive
#    dL/db and dL/dc, add them to `backward`, and check against the engine.
# 2. Replace the squared error with softmax cross-entropy,
#    L_t = -log softmax(y_t)[k_t]. Show that dL/dy_t = softmax(y_t) - one_hot(k_t)
#    and change one line of `backward`.
# 3. Put a loss on the last step only (many-to-one). Which term of dL/dh_t
#    disappears, and what happens to the contributions printed in section 5?
# 4. Measure memory: how many arrays does `forward` keep for T = 10, 100,
#    1000? Which of them could backward recompute instead of storing?
# 5. Break the derivation on purpose (drop the W_hh^T dL/da_{t+1} term) and
#    see which steps of the table in section 3 go wrong, and why the last
#    step stays right.
