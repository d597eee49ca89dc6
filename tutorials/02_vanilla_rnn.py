# %% [markdown]
# # Tutorial 2: the vanilla RNN — memory, weight sharing and the unrolled graph
#
# A plain layer maps today's input to today's output and forgets it. Many
# problems need the past: the next word depends on the sentence so far, the
# next note on the melody. A recurrent network keeps a **hidden state** h_t, a
# summary of everything it has seen, and updates it with the *same* weights
# at every step:
#
#     h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)        the new memory
#     y_t = W_hy h_t + c                             the output (logits)
#     p_t = softmax(y_t)                             a distribution over classes
#
# This chapter shows why that memory is needed (a story a plain layer cannot
# follow), how the same weights are shared across time, and what the
# unrolled computation graph looks like.

# %%
import os

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, optim, viz

os.makedirs("figures", exist_ok=True)
tr.manual_seed(0)

# %% [markdown]
# ## 1. A story that needs memory: the weekly routine
#
# Someone exercises in a cycle: run → bike → swim → run → ... On a rainy day
# they sleep instead, and on the next sunny day the cycle **resumes where it
# left off**. Each day we see the weather and what they did yesterday, as
# one-hot vectors (a 1 in the slot of the category, 0 elsewhere):
#
#     x_t = [ one_hot(weather_t) (2) , one_hot(activity_{t-1}) (5: run, bike, swim, sleep, start) ]
#
# and we must predict today's activity. On most days yesterday's activity
# is enough (after "run" comes "bike"). But after a rainy day yesterday's
# activity is "sleep", which says nothing about where the cycle stands:
# only a memory of the days *before* the rain can tell.

# %%
WEATHER, ACTIVITIES = data.WEATHER, data.ACTIVITIES
weather, activity = data.weekly_routine(12, rng=np.random.default_rng(3))
for day in range(12):
    print(f"day {day:2d}: {WEATHER[weather[day]]:<4} -> {ACTIVITIES[activity[day]]}")

# %% [markdown]
# One batch for training is a tensor of shape (T, B, 7): T days, B people,
# 7 one-hot features; the targets are (T, B) activity indices.

# %%
x, y = data.routine_batch(batch_size=32, days=20, rng=np.random.default_rng(0))
print("inputs", x.shape, "targets", y.shape)
print("day 0 of person 0, one-hot:", x[0, 0], "->", ACTIVITIES[y[0, 0]])

# %% [markdown]
# ## 2. A recurrent layer next to a plain linear layer
#
# Both models end in the same linear read-out to 4 activity logits and are
# trained with the same cross-entropy loss (summed over days, averaged):
#
#     linear:     y_t = W x_t + c                               (sees only day t)
#     recurrent:  h_t = tanh(W_hh h_{t-1} + W_xh x_t + b),  y_t = W_hy h_t + c
#
# `fused=False` builds the layer from small per-step ops, the form this
# tutorial draws below (the fused default gives the same numbers, faster).

# %%
class Tagger(nn.Module):
    """Predict an activity for every day: (T, B, 7) -> logits (T, B, 4)."""

    def __init__(self, recurrent, hidden_size=16):
        self.rnn = nn.RNN(7, hidden_size, fused=False) if recurrent else None
        self.readout = nn.Linear(hidden_size if recurrent else 7, 4)

    def forward(self, x):
        features = self.rnn(x)[0] if self.rnn is not None else x
        return self.readout(features)


def train(model, steps=150, seed=0):
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=0.05)
    for step in range(steps):
        x, y = data.routine_batch(32, 20, rng=rng)
        loss = nn.cross_entropy(model(tr.tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def accuracy(model, x, y, where=None):
    with tr.no_grad():
        correct = model(tr.tensor(x)).data.argmax(-1) == y
    return correct.mean() if where is None else correct[where].mean()


linear, recurrent = Tagger(recurrent=False), Tagger(recurrent=True)
print(f"final training loss: linear {train(linear):.3f}, recurrent {train(recurrent):.3f}")

x_test, y_test = data.routine_batch(500, 30, rng=np.random.default_rng(1))
after_rain = np.zeros_like(y_test, dtype=bool)
after_rain[1:] = (x_test[1:, :, 0] == 1) & (x_test[:-1, :, 1] == 1)     # sunny today, rained yesterday
print(f"{'':<10} {'all days':>9} {'sunny day after rain':>21}")
for name, model in (("linear", linear), ("recurrent", recurrent)):
    print(f"{name:<10} {accuracy(model, x_test, y_test):9.3f} "
          f"{accuracy(model, x_test, y_test, after_rain):21.3f}")
assert accuracy(recurrent, x_test, y_test, after_rain) > 0.95
assert accuracy(linear, x_test, y_test, after_rain) < 0.7

# %% [markdown]
# The linear layer does fine on ordinary days but is close to guessing on the
# morning after rain: its input ("sunny, yesterday I slept") is the same
# whether a run, a ride or a swim is due. The recurrent layer gets those days
# right because h_t still holds where the cycle stood.

# %% [markdown]
# ## 3. The cell by hand, checked against the layer
#
# The layer stores PyTorch's names: `weight_ih_l0` is W_xh (H, I),
# `weight_hh_l0` is W_hh (H, H) and b = `bias_ih_l0 + bias_hh_l0`. With a
# batch, vectors become rows, so W h becomes h @ W^T. Here is one week run
# through the trained model with NumPy only.

# %%
rnn, readout = recurrent.rnn, recurrent.readout
W_xh, W_hh = rnn.weight_ih_l0.data, rnn.weight_hh_l0.data
b = rnn.bias_ih_l0.data + rnn.bias_hh_l0.data
W_hy, c = readout.weight.data, readout.bias.data
print("W_xh", W_xh.shape, " W_hh", W_hh.shape, " b", b.shape, " W_hy", W_hy.shape, " c", c.shape)

week = ["sun", "sun", "rain", "rain", "sun", "sun", "sun", "rain", "sun"]
days = len(week)
xs = np.zeros((days, 7), dtype=np.float32)
yesterday = "start"
cycle = ["run", "bike", "swim"]
truth = []
for t, w in enumerate(week):
    xs[t, WEATHER.index(w)] = 1
    xs[t, 2 + (ACTIVITIES + ("start",)).index(yesterday)] = 1
    today = "sleep" if w == "rain" else cycle[sum(d == "sun" for d in week[:t]) % 3]
    truth.append(today)
    yesterday = today

h = np.zeros(16, dtype=np.float32)
hidden = []
for t in range(days):
    h = np.tanh(W_hh @ h + W_xh @ xs[t] + b)        # h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)
    y_t = W_hy @ h + c                               # y_t = W_hy h_t + c
    p_t = np.exp(y_t - y_t.max()) / np.exp(y_t - y_t.max()).sum()   # softmax
    hidden.append(h)
    print(f"day {t}: {week[t]:<4} yesterday={ACTIVITIES[xs[t, 2:6].argmax()] if xs[t, 2:6].any() else 'start':<5} "
          f"-> predicts {ACTIVITIES[p_t.argmax()]:<5} (p = {p_t.max():.2f}, truth {truth[t]})")

with tr.no_grad():
    layer_h = rnn(tr.tensor(xs[:, None]))[0].data[:, 0]
print("max |by hand - layer| =", np.abs(np.array(hidden) - layer_h).max())
assert np.allclose(np.array(hidden), layer_h, atol=1e-5)

# %% [markdown]
# After the two rainy days (days 2 and 3) the input on day 4 is just "sun,
# yesterday sleep", yet the model says "swim": the hidden state carried
# "bike was last" through the rain. The picture below shows h_t day by day;
# columns that look alike are days with the same position in the cycle.

# %%
viz.plot_matrix(np.array(hidden).T, "figures/02_hidden_states.png", title="hidden state h_t of the trained RNN",
                xlabel="day", ylabel="hidden unit", xticklabels=[f"{d}:{w}" for d, w in enumerate(week)],
                colorbar_label="activation h_t[j]")

# %% [markdown]
# ## 4. Weight sharing: one set of weights for any length
#
# The same W_xh, W_hh, b are applied at every step, so the number of
# parameters does not depend on the sequence length, and a model trained on
# 20-day sequences runs on 100-day ones.

# %%
n_params = sum(p.data.size for p in rnn.parameters())
print(f"recurrent layer: {n_params} parameters = 16*7 + 16*16 + 16 + 16, whatever T is")
x_long, y_long = data.routine_batch(100, 100, rng=np.random.default_rng(2))
print(f"accuracy on 100-day sequences (trained on 20): {accuracy(recurrent, x_long, y_long):.3f}")

# %% [markdown]
# ## 5. The unrolled graph
#
# Running the loop builds one small graph per step; all steps point at the
# same weight tensors. `viz.to_dot` writes that graph as Graphviz DOT text,
# with one box (cluster) per time step and the shared weights outside the
# boxes, each with an arrow into every step. The text needs no Graphviz;
# with the `dot` program installed, `render_dot` also draws an SVG.

# %%
small = nn.RNN(7, 3, fused=False)
x3 = tr.tensor(x[:3, :1])                           # 3 days, 1 person
out, h_n = small(x3)
loss = out.sum()
dot = viz.to_dot(loss, names=dict(small.named_parameters()) | {"x": x3})
svg = viz.render_dot(dot, "figures/02_unrolled.dot")
print("\n".join(dot.splitlines()[:16]) + "\n  ...")
print("drawn to", svg or "figures/02_unrolled.dot (install graphviz to get an SVG: dot -Tsvg)")

steps = viz.ops_by_step(loss)
for t in (0, 1, 2):
    print(f"step {t}: {sorted(steps[t])}")
print("outside the steps:", sorted(steps[None]))
edges_from_W_hh = sum(line.startswith(f"  n{id(small.weight_hh_l0)} ->") for line in dot.splitlines())
print("arrows out of weight_hh_l0:", edges_from_W_hh, "(one per time step)")
assert edges_from_W_hh == 3

# %% [markdown]
# Each step holds the same ops (two matrix products with transposed weights,
# the additions, a tanh): the graph *is* the network unrolled in time.
# Backpropagating through it is backpropagation through time (BPTT), and the
# gradient of W_hh is the sum of what each step contributes — the subject
# of the next tutorial.
#
# ## Exercises
#
# 1. Train the recurrent tagger with `hidden_size=2` and 3. What is the
#    smallest hidden state that still gets the days after rain right? Why
#    can it not be 1 (how many situations must h_t tell apart)?
# 2. Remove "yesterday's activity" from the input (keep only the weather).
#    Does the recurrent model still learn the routine? What must h_t now count?
# 3. Make it rain for 5 days in a row in the week of section 3. Does the
#    model still resume correctly? Plot h_t and look at the rainy columns.
# 4. Replace tanh with ReLU (`nn.RNN(..., nonlinearity="relu")`). Does it
#    train as well?
# 5. Draw the graph of a 2-layer RNN with `to_dot`: how many clusters and how
#    many arrows out of `weight_hh_l1`?
