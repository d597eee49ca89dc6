# %% [markdown]
# # Tutorial 1: the chain rule, by hand and by autograd
#
# Training a network means nudging its weights downhill on a loss, so we need
# the derivative of the loss with respect to every weight. This chapter builds
# that idea up in three steps:
#
# 1. one neuron, f = tanh(w x + b), differentiated by hand with the chain rule;
# 2. the same neuron written with `tr.Tensor`, where `backward()` applies the
#    chain rule for us;
# 3. a tiny recurrent network unrolled over 3 time steps, where the same
#    weight is used at every step and its gradient is the *sum* over steps:
#    backpropagation through time (BPTT).
#
# Run it as a script (`python tutorials/01_autograd.py`) or open it as a
# notebook in an editor that understands `# %%` cells.

# %%
import numpy as np

import tinygrad_rnn as tr

# %% [markdown]
# ## 1. One neuron by hand
#
# Split f = tanh(w x + b) into the steps a computer performs:
#
#     z = w * x + b          (an affine step)
#     f = tanh(z)            (a squashing step)
#
# The chain rule multiplies the local derivatives along the path from f back
# to each input:
#
#     df/dz = 1 - tanh(z)^2 = 1 - f^2
#     df/dw = df/dz * dz/dw = (1 - f^2) * x
#     df/db = df/dz * dz/db = (1 - f^2) * 1
#     df/dx = df/dz * dz/dx = (1 - f^2) * w
#
# Notice that df/dz is computed once and reused for all three: that sharing is
# what makes reverse-mode differentiation cheap.

# %%
w, x, b = 0.8, 1.5, -0.3

z = w * x + b
f = np.tanh(z)
df_dz = 1 - f ** 2
by_hand = {"w": df_dz * x, "b": df_dz, "x": df_dz * w}
print(f"f = tanh({w} * {x} + {b}) = {f:.6f}")
for name, value in by_hand.items():
    print(f"df/d{name} by hand = {value:.6f}")

# %% [markdown]
# How do we know the hand derivation is right? Wiggle one input by a tiny eps
# in both directions and measure the slope. This *central difference* has an
# error proportional to eps^2, so with eps = 1e-6 it agrees with the true
# derivative to many digits.

# %%
def neuron(w, x, b):
    return np.tanh(w * x + b)


eps = 1e-6
numeric_dw = (neuron(w + eps, x, b) - neuron(w - eps, x, b)) / (2 * eps)
print(f"df/dw by central difference = {numeric_dw:.6f}   (by hand: {by_hand['w']:.6f})")

# %% [markdown]
# ## 2. The same neuron with Tensors
#
# A `tr.Tensor` wraps a NumPy array. Every operation on tensors that need
# gradients records a node: which op made the result, and from which inputs.
# `backward()` walks those nodes from the output back to the inputs, applying
# each op's local derivative, and stores the result in `.grad`. We use
# float64 here so the numbers match the hand computation to the last digit.

# %%
def scalar(value):
    return tr.Tensor(np.array(value), requires_grad=True)


w_t, x_t, b_t = scalar(w), scalar(x), scalar(b)
f_t = (w_t * x_t + b_t).tanh()
f_t.backward()

for name, leaf in {"w": w_t, "b": b_t, "x": x_t}.items():
    print(f"df/d{name}: autograd {leaf.grad:.6f}   by hand {by_hand[name]:.6f}")
    assert np.isclose(leaf.grad, by_hand[name])

# %% [markdown]
# The graph behind `f_t` is visible: each tensor made by an op carries a
# context `_ctx` with the op's name and its parent tensors. Walking it from
# the output shows the computation in reverse, which is exactly the order in
# which `backward()` visits it.

# %%
def show_graph(tensor, depth=0):
    name = tensor._ctx.fn.__name__ if tensor._ctx is not None else f"leaf {tensor.data}"
    print("    " * depth + name)
    for parent in (tensor._ctx.parents if tensor._ctx is not None else ()):
        show_graph(parent, depth + 1)


show_graph((w_t * x_t + b_t).tanh())

# %% [markdown]
# ## 3. A tiny RNN and backpropagation through time
#
# A recurrent network reads a sequence x_1, x_2, x_3 one step at a time and
# keeps a hidden state h that summarises what it has seen so far:
#
#     h_t = tanh(w h_{t-1} + u x_t),     loss = sum_t (h_t - y_t)^2
#
# The same weights w and u are used at every step. Unrolled over 3 steps the
# network is just a longer chain of ops, and w appears in it three times.
# A weight used several times receives one gradient contribution per use, so
#
#     dloss/dw = sum_t (contribution of step t)
#
# That is all BPTT is. By hand, we run the chain rule backwards in time,
# carrying dloss/dh_t from step to step:
#
#     dloss/dh_t   = 2 (h_t - y_t) + (what step t+1 sends back)
#     dloss/dpre_t = dloss/dh_t * (1 - h_t^2)         (pre_t = w h_{t-1} + u x_t)
#     step t adds  dloss/dpre_t * h_{t-1}  to dloss/dw
#     and sends    dloss/dpre_t * w        back to h_{t-1}

# %%
xs, ys = [1.0, -0.5, 0.8], [0.3, 0.1, -0.2]
w, u, h0 = 0.6, 0.9, 0.0

hs = [h0]
for x_step in xs:
    hs.append(np.tanh(w * hs[-1] + u * x_step))

dw, from_later = 0.0, 0.0
for t in range(len(xs), 0, -1):
    dh = 2 * (hs[t] - ys[t - 1]) + from_later
    dpre = dh * (1 - hs[t] ** 2)
    print(f"step {t}: contributes {dpre * hs[t - 1]:+.6f} to dloss/dw")
    dw += dpre * hs[t - 1]
    from_later = dpre * w
print(f"dloss/dw by hand (BPTT) = {dw:.6f}")

# %% [markdown]
# Step 1 contributes nothing because h_0 = 0: at that step w multiplies the
# initial state, so nudging w changes nothing. Later steps multiply w by a
# non-zero h_{t-1} and do contribute.
#
# With tensors we write only the forward loop. The graph it records *is* the
# unrolled network, and `backward()` adds up the three contributions.

# %%
w_t, u_t = scalar(w), scalar(u)
h = tr.Tensor(np.array(h0))
loss = 0.0
for x_step, y_step in zip(xs, ys):
    h = (w_t * h + u_t * x_step).tanh()
    loss = loss + (h - y_step) ** 2
loss.backward()
print(f"dloss/dw by autograd    = {w_t.grad:.6f}")
assert np.isclose(w_t.grad, dw)

# %% [markdown]
# ## 4. Checking a real RNN with `tr.gradcheck`
#
# Real RNNs use matrices: a batch of B sequences, inputs of size I, a hidden
# state of size H, outputs of size O:
#
#     h_t = tanh(x_t W_xh + h_{t-1} W_hh)      x_t: (B, I), h_t: (B, H)
#     y_t = h_t W_hy                           y_t: (B, O)
#     loss = sum_t mean((y_t - target_t)^2)
#
# `tr.gradcheck(fn, inputs)` compares backward() with central differences for
# *every* element of every input, in float64, and prints the worst error per
# input. It is the first thing to run after writing a new op or model.

# %%
def rnn_loss(W_xh, W_hh, W_hy, h0, xs, targets):
    h, loss = h0, 0.0
    for x_step, target in zip(xs, targets):
        h = (x_step @ W_xh + h @ W_hh).tanh()
        loss = loss + ((h @ W_hy - target) ** 2).mean()
    return loss


rng = np.random.default_rng(0)
B, I, H, O, T = 2, 3, 4, 2, 3
weights = [0.5 * rng.standard_normal(shape) for shape in [(I, H), (H, H), (H, O), (B, H)]]
xs = [tr.Tensor(rng.standard_normal((B, I))) for _ in range(T)]
targets = [tr.Tensor(rng.standard_normal((B, O))) for _ in range(T)]

report = tr.gradcheck(lambda *params: rnn_loss(*params, xs, targets), weights,
                      names=["W_xh", "W_hh", "W_hy", "h0"])
print(report)

# %% [markdown]
# Every row should say `yes`, with errors around 1e-10: far below the
# tolerance. If you break a derivative in `tinygrad_rnn/functions.py` (try
# changing `1 - out * out` in `Tanh.backward` to `1 + out * out`) and run this
# file again, the check fails and the table points at the input whose
# gradient is wrong.
#
# ## Exercises
#
# 1. Extend the hand computation of section 1 to f = sigmoid(w x + b), using
#    sigmoid'(z) = s (1 - s), and check it against `backward()`.
# 2. In section 3, print the contribution of each step to dloss/du as well as
#    dloss/dw. Which step contributes most, and why?
# 3. Make the sequence in section 3 ten times longer with |w| < 1. How do the
#    contributions of the early steps change? (This is the vanishing gradient
#    problem, the subject of a later tutorial.)
# 4. Add a bias b of shape (H,) to `rnn_loss` (h_t = tanh(x_t W_xh + h_{t-1}
#    W_hh + b)) and gradcheck it. Why is b's gradient a sum over the batch?
# 5. Write your own `tr.Function` for f(a) = a^3 (forward and backward) and
#    verify it with `tr.gradcheck`.
