# %% [markdown]
# # Tutorial 11: drawing digits pixel by pixel
#
# A char-RNN reads a text one character at a time and predicts the next
# character. Nothing in that recipe is about text. An image read in raster
# order (left to right, top to bottom) is a sequence too, and if every pixel
# takes one of a few grey levels, "the next pixel" is a softmax over those
# levels, exactly like "the next character" is a softmax over the alphabet:
#
#     v = round(x (L - 1))                      quantise: intensity x in [0, 1] -> level 0..L-1
#     x_t      = [one_hot(v_{t-1}) ; where_t]   the pixel before, and where pixel t is
#     h_t      = LSTM(x_t, h_{t-1})
#     logits_t = h_t W^T + b                    (B, L): a distribution over pixel t's level
#     loss     = mean_t -log softmax(logits_t)[v_t]
#
# The chain rule of probability, p(v_0 .. v_63) = prod_t p(v_t | v_<t), makes
# the loss the *negative log-likelihood per pixel* of the image — a number we
# can compare with any other model of the same images. Drawing a new image
# is sampling text: draw a level, feed it back in, repeat 64 times.
#
# `tinygrad_rnn.apps.pixel_rnn` holds the model; this chapter trains a tiny
# one, draws digits with it, completes half-digits, and shows that the
# gradient is the same backpropagation through time as for text.

# %%
import os
import time

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import optim, viz
from tinygrad_rnn.apps.pixel_rnn import (PixelRNN, ascii_art, baseline_nll, complete_halves, histogram_baseline,
                                         nll_per_pixel, quantize, save_completions, save_grid)
from tinygrad_rnn.data import digit_images

os.makedirs("figures", exist_ok=True)
tr.manual_seed(0)
LEVELS = 4

# %% [markdown]
# ## 1. Images as sequences of grey levels
#
# The digits are 8×8 renderings of hand-drawn templates, each slanted,
# thickened, shifted and blurred at random (`data.digit_images`). Four levels
# per pixel keep the softmax small; `quantize` returns the 64 levels of each
# image in reading order.

# %%
train_images, _ = digit_images(2000, np.random.default_rng(1))
test_images, test_labels = digit_images(300, np.random.default_rng(2))
train_codes, test_codes = quantize(train_images, LEVELS), quantize(test_images, LEVELS)
print("codes", test_codes.shape, "levels", np.unique(test_codes))
print(ascii_art(test_codes[:8].reshape(-1, 8, 8), LEVELS))

# %% [markdown]
# ## 2. A baseline that ignores the order
#
# Without reading earlier pixels, the best one can do is a histogram per
# position: p_i(v) = (count_i(v) + 1) / (N + L). Corners are almost always
# blank, the middle is a coin toss. Its NLL per pixel on held-out digits is
# the number the RNN must beat; what it wins comes from *memory*.

# %%
baseline = histogram_baseline(train_codes, LEVELS)
baseline_test = baseline_nll(baseline, test_codes)
print(f"per-position histogram: {baseline_test:.3f} nats/pixel on held-out digits")

# %% [markdown]
# ## 3. The model and one training step
#
# `step_inputs` builds x_t for all 64 steps: the one-hot level of the pixel
# before (zeros at t = 0, like a start symbol), then one-hot row and column
# of the pixel to predict, so the network need not count. The targets are
# the levels themselves: input shifted by one step, as in the char-RNN.

# %%
model = PixelRNN(levels=LEVELS, hidden_size=32)
batch = train_codes[:32]
units = batch.reshape(32, model.steps, model.width)
x = model.step_inputs(units, 0, model.steps)
logits, _ = model(x)
print("x", x.shape, "= (T, B, L + 16)   logits", logits.shape, "= (T, B, width, L)")
print(f"untrained NLL {model.loss(batch).item():.3f} nats/pixel (uniform guess: log 4 = {np.log(4):.3f})")

# %% [markdown]
# ## 4. Training: plain BPTT over 64 steps
#
# Each step draws 32 images from the training set; the loss averages over
# all 64 × 32 pixels, so W_hh receives a gradient summed over every step.

# %%
optimizer = optim.Adam(model.parameters(), lr=1e-2)
rng = np.random.default_rng(0)
start = time.perf_counter()
for step in range(150):
    batch = train_codes[rng.integers(0, len(train_codes), 32)]
    optimizer.zero_grad()
    loss = model.loss(batch)
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    if step % 30 == 0:
        print(f"step {step:3d}  loss {loss.item():.3f}")
rnn_test = nll_per_pixel(model, test_codes)
print(f"{time.perf_counter() - start:.1f} s. held-out NLL/pixel: RNN {rnn_test:.3f}, "
      f"histogram {baseline_test:.3f} ({1 - rnn_test / baseline_test:.0%} lower)")

# %% [markdown]
# ## 5. Drawing digits
#
# `generate` runs the network one pixel at a time, drawing each level from
# softmax(logits / temperature) and feeding it back in. A lower temperature
# gives cleaner, more typical strokes; a higher one, wilder ones.

# %%
for temperature in (1.0, 0.6):
    drawn = model.generate(10, temperature, rng=0)
    print(f"temperature {temperature}:")
    print(ascii_art(drawn, LEVELS))
    if viz.has_matplotlib():
        save_grid(drawn, LEVELS, f"figures/11_drawn_t{temperature:g}.png",
                  title=f"digits drawn pixel by pixel, temperature {temperature:g}")

# %% [markdown]
# ## 6. Completing a half-image (inpainting by sampling)
#
# Give the model the top half of a real digit as a *prefix*: it reads those
# 32 pixels (they set the hidden state), then draws the bottom half. The
# same top half, completed several times, shows what the model thinks could
# follow — for a top arc: a 0, a 2, a 3, an 8, a 9...

# %%
tops = np.repeat(test_images[:5], 4, axis=0)                      # each of 5 digits, 4 times
completed = complete_halves(model, tops, temperature=0.8, rng=1)
original = quantize(test_images[:5], LEVELS).reshape(-1, 8, 8)
print("real digits:")
print(ascii_art(original, LEVELS))
print("top halves kept, bottom halves drawn (4 tries each):")
print(ascii_art(completed, LEVELS))
if viz.has_matplotlib():
    save_completions(original, completed, LEVELS, "figures/11_completed.png",
                     title="top half given, bottom half drawn (4 tries each)")

# %% [markdown]
# ## 7. The same BPTT as text
#
# Nothing above is image-specific in the engine: the loss is a sum over
# time steps, the graph is the unrolled recurrence, `backward` walks it from
# the last step to the first. To see the gradient travel back through time,
# take the loss at one pixel, t = 44 (row 5, column 4), and ask how strongly
# it depends on each earlier input x_s: ||dL_44 / dx_s||. Input s carries
# pixel s - 1, so we can draw the answer as a map over the pixels read:
# the pixels just before it in the same row stand out, then the row above
# (a stroke continues), far-away pixels matter less, and pixels 44 and
# after get exactly zero — the model is causal, like a language model.

# %%
x = tr.Tensor(model.step_inputs(units, 0, model.steps), requires_grad=True)
logits, _ = model(x)
t = 44
target = units[:, t]                                                # (B, 1)
log_p = logits[t].reshape(len(units), LEVELS).log_softmax(axis=-1)
loss_t = -log_p[np.arange(len(units)), target[:, 0]].mean()
loss_t.backward()
influence = np.linalg.norm(x.grad.reshape(model.steps, -1), axis=1)       # (64,): one value per step s
assert np.all(influence[t + 1:] == 0)
pixel_map = np.zeros(64)
pixel_map[:t] = influence[1:t + 1] / influence.max()                      # pixel s - 1 <- step s
pixel_map = pixel_map.reshape(1, 8, 8)
print(f"how much pixel {t}'s loss depends on each pixel read before it (darker = more):")
print(ascii_art(np.rint(pixel_map * 3).astype(int), 4))
viz.plot_per_step({f"||dL_{t}/dx_s||": influence[:t + 1] + 1e-12}, "figures/11_influence.png",
                  title="gradient of one pixel's loss, back through time", xlabel="input step s",
                  ylabel="gradient norm")

# %% [markdown]
# ## 8. Row by row, and conditioning on the label
#
# `order="rows"` reads a whole row per step: 8 steps instead of 64, so BPTT
# is 8× shorter, but the 8 pixels of a row are drawn independently of one
# another given the rows above — a cruder model. `condition="input"` appends
# the digit's one-hot label to every x_t (`"state"` instead sets h_0 from
# it: a one-to-many generator from one vector), and `generate(label=3)`
# then draws 3s.

# %%
rows = PixelRNN(levels=LEVELS, hidden_size=32, order="rows", condition="input")
optimizer = optim.Adam(rows.parameters(), lr=1e-2)
train_labels = digit_images(2000, np.random.default_rng(1))[1]
for step in range(150):
    pick = rng.integers(0, len(train_codes), 32)
    optimizer.zero_grad()
    rows.loss(train_codes[pick], train_labels[pick]).backward()
    optimizer.step()
print(f"held-out NLL/pixel: rows + label {nll_per_pixel(rows, test_codes, test_labels):.3f}, "
      f"pixels {rnn_test:.3f}, histogram {baseline_test:.3f}")
print(ascii_art(rows.generate(10, 0.6, label=np.arange(10), rng=0), LEVELS))

# %% [markdown]
# The same model trains from the command line, with checkpoints, a progress
# bar and resume, and draws from its checkpoint:
#
#     tinygrad-rnn train --task pixels --hidden 64 --lr 0.01 --steps 400 --condition input
#     tinygrad-rnn draw pixels.npz --label 3 --temperature 0.8 --png threes.png
#     tinygrad-rnn draw pixels.npz --complete
