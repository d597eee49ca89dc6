# %% [markdown]
# # Tutorial 5: truncated BPTT (k1, k2) and what it cannot learn
#
# Full BPTT over a sequence of T steps stores T hidden states and waits until
# the end before the first weight update. For a long stream (a book, a sensor
# log) that is impossible. **Truncated BPTT** (Williams & Peng 1990) runs
# forward over the stream and, every k1 steps, backpropagates the losses of
# those k1 steps through the last k2 steps only (k2 >= k1), then updates the
# weights and carries the hidden state on with `detach()`: its *value* flows
# into the next chunk, its *gradient* does not flow back.
#
#     steps    0 1 2 3 4 5 6 7 8 9        k1 = 3, k2 = 5
#     chunk          [3 4 5]              losses of steps 3..5
#     window     [1 2 3 4 5]              backpropagated through steps 1..5
#
# k1 = k2 = k is the common "detach every k steps"; k1 = k2 = T is full BPTT.
# The price: the loss at step t gets no gradient through any path longer than
# k2 steps. A dependency longer than that is invisible to learning.

# %%
import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import bptt, nn, optim

# %% [markdown]
# ## 1. The task: echo a bit from D steps ago
#
# The input is a stream of random bits (as -1 / +1); the target at step t is
# the bit from step t - D. The network must hold D bits in its hidden state.
# We take D = 4.

# %%
D, H = 4, 16


def echo_stream(T, B, seed):
    """x (T, B, 1) in {-1, +1}; y (T, B, 1) with y_t = bit_{t-D} (0 for t < D)."""
    bits = np.random.default_rng(seed).integers(0, 2, size=(T, B)).astype(np.float32)
    targets = np.zeros_like(bits)
    targets[D:] = bits[:-D]
    return tr.tensor(2 * bits[:, :, None] - 1), tr.tensor(targets[:, :, None])


x, y = echo_stream(12, 1, seed=0)
print("input bits :", (x.data[:, 0, 0] > 0).astype(int))
print(f"targets    : {y.data[:, 0, 0].astype(int)}   (the input shifted right by D = {D})")

# %% [markdown]
# ## 2. Truncation removes paths: the gradient is exactly zero
#
# `tr.bptt.run(step_fn, xs, state, loss_fn, k1, k2, optimizer)` runs a cell
# over a stream with truncated BPTT. Here we ask it for the gradient of the
# loss at one step t = 10 with respect to the *inputs* (no optimizer, so
# nothing is updated). With k1 = 1 every step's loss is backpropagated
# through exactly k2 steps: x_{t-k2+1} .. x_t get a gradient, earlier
# inputs get exactly 0, whatever the weights.

# %%
class Echo(nn.Module):
    """An RNN cell with a logit read-out, used one step at a time."""

    def __init__(self):
        self.cell, self.head = nn.RNNCell(1, H), nn.Linear(H, 1)

    def step(self, x_t, h):
        """(x_t, h_{t-1}) -> (y_t, h_t), with y_t = W_hy h_t + c a logit."""
        h = self.cell(x_t, h)
        return self.head(h), h


tr.manual_seed(0)
model = Echo()
t_loss = 10
for k2 in (2, 4, 8):
    xs = tr.tensor(x.data, requires_grad=True)
    bptt.run(model.step, xs, tr.zeros(1, H), lambda out, t: out.sum() if t == t_loss else None, k1=1, k2=k2)
    reach = np.abs(xs.grad[:, 0, 0])
    print(f"k2 = {k2}: |dL_10/dx_t| for t = 0..10:", " ".join(f"{g:.0e}" if g else "0" for g in reach[:11]))
    assert np.all(reach[:t_loss - k2 + 1] == 0) and np.all(reach[t_loss - k2 + 1:t_loss + 1] > 0)

# %% [markdown]
# With k2 = 2 the loss at step 10 cannot reach x_6, the bit it must echo
# (D = 4): the gradient that would teach the network to remember it is not
# small, it is zero. With k2 = 8 it is there.
#
# ## 3. Training with different truncation lengths
#
# Now train on a stream of 1500 steps (batch 16) with k1 = k2 = k, Adam, and
# measure accuracy on a fresh stream (run forward without truncation: the
# forward pass is never truncated, only the backward pass).

# %%
def train_and_test(k, seed=0):
    tr.manual_seed(seed)
    model = Echo()
    opt = optim.Adam(model.parameters(), lr=0.02)
    xs, ys = echo_stream(1500, 16, seed)
    bptt.run(model.step, xs, tr.zeros(16, H),
             lambda out, t: nn.bce_with_logits(out, ys[t]) if t >= D else None,
             k1=k, k2=k, optimizer=opt)
    xs, ys = echo_stream(300, 64, seed=99)
    h, correct = tr.zeros(64, H), []
    with tr.no_grad():
        for t in range(300):
            out, h = model.step(xs[t], h)
            if t >= D:
                correct.append(np.mean((out.data > 0) == (ys.data[t] > 0.5)))
    return float(np.mean(correct))


accuracy = {k: train_and_test(k) for k in (2, 3, 4, 5, 8)}
for k, acc in accuracy.items():
    verdict = "learns" if acc > 0.9 else "chance"
    print(f"k1 = k2 = {k}: accuracy {acc:.3f}  ({verdict}; dependency length D = {D}, "
          f"longest gradient path {k - 1} steps back)")
assert all(accuracy[k] < 0.7 for k in (2, 3, 4)) and all(accuracy[k] > 0.95 for k in (5, 8))

# %% [markdown]
# The cut-off is sharp. With k <= D = 4 the network stays at chance (0.5): the
# loss at step t can only reach inputs x_{t-k+1} .. x_t, never x_{t-D}. With
# k = 5 one step per chunk (the last) reaches back D steps, and that is enough
# signal to learn the echo; k = 8 learns it faster and more surely.
#
# Truncated BPTT cannot learn a dependency longer than k2 *from the gradient*.
# The forward pass is not truncated: a network that already knows how to
# carry information for 100 steps still does so. But nothing teaches it to.
#
# ## 4. What truncation costs and saves
#
# - memory: k2 hidden states per sequence in the batch, instead of T;
# - updates: T / k1 weight updates per pass over the stream, instead of 1;
# - compute: with k1 < k2 each window re-runs k2 steps forward, so k2 / k1
#   forward steps per step (k1 = k2 costs nothing extra).
#
# Randomising k1 (`bptt.run(..., randomize=True)`) varies where the chunks
# start, so no step is always at the start of a chunk with the shortest reach.
#
# ## Exercises
#
# 1. Use k1 = 1, k2 = 5 (every step's loss backpropagates 5 steps). Does it
#    learn the D = 4 echo faster than k1 = k2 = 5? How much slower is it?
# 2. Replace `nn.RNNCell` with `nn.LSTMCell` (the state becomes a tuple
#    (h, c)). Set D = 12 and find the smallest k that learns.
# 3. Train with k1 = k2 = 3 and then test with D = 4 after *pre-training*
#    with k = 8 for a few hundred steps. Does continued training with k = 3
#    destroy the memory?
# 4. Write the truncated loop yourself without `bptt.run`: run k steps,
#    backward, step the optimizer, `h = h.detach()`, repeat. Check that you
#    get the same losses as `bptt.run(..., k1=k, k2=k)`.
