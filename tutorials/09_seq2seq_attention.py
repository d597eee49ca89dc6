# %% [markdown]
# # Tutorial 9: sequence to sequence with attention — translating dates
#
# Many-to-many, **unaligned**: the output has its own length and order.
#
#     "23 November 2026"          ->  "2026-11-23"
#     "the 3rd of May 1999"       ->  "1999-05-03"
#     "tuesday, march 4, 1958"    ->  "1958-03-04"
#
# No step-by-step tagger can do this: the year moves to the front, a month
# *name* becomes two digits, "3rd" becomes "03". An **encoder** RNN reads the
# whole source; a **decoder** RNN then writes the target one character at a
# time, feeding back each character it wrote (Sutskever et al., 2014).
#
# A plain encoder–decoder squeezes the source into one vector (the encoder's
# final state). **Attention** removes that bottleneck: at every output step
# the decoder scores every encoder state m_s, turns the scores into weights
# that sum to 1, and reads their weighted average (Bahdanau et al., 2015):
#
#     e_{t,s} = v^T tanh(W_q h_t + W_k m_s)    how well source position s fits the question h_t
#     a_t     = softmax(e_t)                   attention weights over s (padding gets exactly 0)
#     c_t     = sum_s a_{t,s} m_s              the context: what the decoder reads now
#     h~_t    = tanh(W_c [c_t; h_t])           combined with the decoder state
#     p(y_t | y_<t, x) = softmax(W_o h~_t + b_o)
#
# All of it is differentiable, so *where to look* is learned by plain
# backpropagation — soft attention. We train `nn.Seq2Seq` for a few seconds
# and then look at a_t: writing the year, the decoder looks at the year.

# %%
import os
import re

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before NumPy loads: small matrices run fastest on one BLAS thread

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, optim, viz
from tinygrad_rnn.apps.translate import build_model, sequence_loss, show_attention, translate, translation_scores
from tinygrad_rnn.data.dates import PAD_INDEX, SOS_INDEX

os.makedirs("figures", exist_ok=True)
tr.manual_seed(0)

# %% [markdown]
# ## 1. The data: characters in, characters out
#
# `data.date_pairs(n, seed)` draws dates between 1950 and 2049 and writes each
# in one of ten human formats. Both sides are character sequences with three
# special tokens at the start of each vocabulary: `<pad>` (0) fills short
# sequences up to the longest in the batch, `<sos>` (1) starts every target,
# `<eos>` (2) ends it. A batch is time-major, like the recurrent layers:
#
#     source          (S, B)  source character indices, padded
#     source_lengths  (B,)    true lengths (the encoder and attention ignore the padding)
#     target          (T, B)  <sos> y_1 .. y_10 <eos>

# %%
for source, target in data.date_pairs(6, seed=3):
    print(f"  {source:<28} -> {target}")
print("source vocabulary:", len(data.SOURCE_VOCAB), "symbols;  target vocabulary:", data.TARGET_VOCAB)

batch = data.make_batch(data.date_pairs(4, seed=3))
print("source", batch.source.shape, "lengths", batch.source_lengths, "target", batch.target.shape)
print("target column 0:", batch.target[:, 0], "=", repr(data.decode_target(batch.target[:, 0])))
assert (batch.target[0] == SOS_INDEX).all()

# %% [markdown]
# ## 2. The model, one decoder step at a time
#
# `build_model` (from `tinygrad_rnn/apps/translate.py`) makes an `nn.Seq2Seq`:
# character embeddings (16), a **bidirectional** GRU encoder (32 units each
# way, so every m_s sees the characters on both sides of s: 64 features), a
# GRU decoder cell of 64 units started from both encoder directions' final
# states, and additive attention. Let us run the pieces by hand on the
# batch above: encode once, then one decoder step from `<sos>`.

# %%
model = build_model(hidden_size=32, embedding_size=16, cell="gru", bidirectional=True, attention="additive")
memory, mask, state = model.encode(batch.source, batch.source_lengths)
print("memory m", memory.shape, "= (B, S, 2H);  mask", mask.shape, ";  decoder state", state[0].shape)

feed = model.initial_feed(batch.source.shape[1], memory.dtype)
logits, state, feed, weights = model.decode_step(batch.target[0], state, feed, memory, mask)
print("one step: logits", logits.shape, "= (B, V);  attention weights a_1", weights.shape, "= (B, S)")
print("weights of example 0:", weights.data[0].round(3))
assert np.allclose(weights.data.sum(axis=1), 1, atol=1e-5)          # a distribution over source positions
assert np.all(weights.data[~mask] == 0)                             # padding gets exactly nothing

# %% [markdown]
# Untrained, the weights are nearly uniform over the real characters, and
# exactly 0 on the padding: the mask replaced those scores by -1e9 before
# the softmax.
#
# ## 3. Teacher forcing and the loss
#
# In training, the decoder's input at step t is the **true** previous
# character y_{t-1}, not its own guess: *teacher forcing*. All steps then get
# a useful input from the first update on, and the loss is the summed
# cross-entropy of the target given the true prefix,
#
#     L = - sum_t log p(y_t | y_<t, x)       (padding ignored: ignore_index=<pad>)
#
# (`sequence_loss` averages it over the batch's real target characters).
# The price, *exposure bias*: at test time the decoder must read its own
# outputs, mistakes included, which it never practised. A
# `teacher_forcing_ratio` below 1 mixes in its own guesses during training.
#
# Training: fresh random dates in every batch of 64, Adam, gradient
# clipping, 60 updates (a few seconds). An untrained model spreads its
# probability over the 14 target symbols: log 14 = 2.64 nats per character.

# %%
optimizer = optim.Adam(model.parameters(), lr=2e-2)
batches = data.date_batches(data.date_pairs(60 * 64, seed=1), batch_size=64, rng=np.random.default_rng(0))
losses = []
for k, batch in enumerate(batches):
    loss = sequence_loss(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    losses.append(loss.item())
    if k % 10 == 0 or k == 59:
        print(f"update {k:2d}: loss {losses[-1]:.3f} nats per character")
viz.plot_per_step({"training loss": losses}, "figures/09_loss.png", title="date translation, teacher forcing",
                  ylabel="nats per character", xlabel="update", log=True)
assert np.mean(losses[-5:]) < losses[0] / 5

# %% [markdown]
# The loss falls by more than a factor of 5. Now measure exposure bias on
# fresh test dates: the same loss with the decoder reading the true prefix
# (ratio 1) and its own previous guesses (ratio 0).

# %%
test_pairs = data.date_pairs(200, seed=99)
test_batch = data.make_batch(test_pairs)
with tr.no_grad():
    forced = sequence_loss(model, test_batch, teacher_forcing_ratio=1.0).item()
    free = sequence_loss(model, test_batch, teacher_forcing_ratio=0.0).item()
print(f"test loss, reading the true prefix: {forced:.3f};  reading its own outputs: {free:.3f}")

# %% [markdown]
# Here the gap is small: this model rarely makes a mistake, so its own
# prefixes are nearly always the true ones. Exercise 4 looks at it again.
#
# ## 4. Decoding: greedy and beam search
#
# To translate, feed `<sos>` and let the decoder run on its own outputs until
# it writes `<eos>`.
#
# - **greedy**: take the most likely character at each step. Fast, but a
#   choice can never be taken back.
# - **beam search**: keep the `beam_width` most probable prefixes
#   (log p(y_1..y_t | x) summed over steps), extend each by every character,
#   keep the best `beam_width` again; finished hypotheses are ranked by
#   log p / n^alpha (alpha > 0 stops short outputs from winning just because
#   they have fewer terms).
#
# We score both by exact match and per-character accuracy. For an honest
# "chance" we use the best a model could do *without reading the source*:
# at each of the 10 output positions, always write the character most often
# found there (e.g. "19", "-", "0" for the month's tens digit).

# %%
targets = np.array([list(target) for _, target in data.date_pairs(5000, seed=7)])       # (5000, 10)
majority = [max(set(column), key=list(column).count) for column in targets.T]
no_source_accuracy = np.mean(targets == np.array(majority))
print(f"reading no source: always write {''.join(majority)!r}: {no_source_accuracy:.1%} of characters right")

scores = {beam: translation_scores(model, test_pairs, beam_width=beam) for beam in (1, 3)}
for beam, score in scores.items():
    name = "greedy          " if beam == 1 else f"beam search (k={beam})"
    print(f"{name}: exact match {score['exact match']:.1%}, characters {score['char accuracy']:.1%}")
assert scores[1]["char accuracy"] > no_source_accuracy + 0.3

# %% [markdown]
# Beam search maximises log p(y | x) more thoroughly than greedy. We can
# check that with the model itself: the teacher-forced forward pass on a
# candidate output y gives -log p(y_t | y_<t, x) at every step, and their sum
# is -log p(y | x).

# %%
def log_prob(model, sources, outputs):
    """log p(y | x) of each output string (its <eos> included) under the model, (n,)."""
    batch = data.make_batch(list(zip(sources, outputs)))
    with tr.no_grad():
        logits = model(batch.source, batch.target, batch.source_lengths)
        per_step = nn.cross_entropy(logits, batch.target[1:], ignore_index=PAD_INDEX, reduction="none")
    return -per_step.data.sum(axis=0)


sources = [source for source, _ in test_pairs]
greedy, beam = translate(model, sources), translate(model, sources, beam_width=3)
greedy_lp, beam_lp = log_prob(model, sources, greedy), log_prob(model, sources, beam)
print(f"mean log p(y|x): greedy {greedy_lp.mean():.3f}, beam {beam_lp.mean():.3f}; "
      f"they differ on {sum(g != b for g, b in zip(greedy, beam))} of {len(sources)} dates")
for source, (_, truth), g, b in list(zip(sources, test_pairs, greedy, beam))[:4]:
    print(f"  {source:<28} greedy {g}  beam {b}  truth {truth}")
assert beam_lp.mean() >= greedy_lp.mean() - 1e-3

# %% [markdown]
# ## 5. Where does the decoder look?
#
# `show_attention` translates one date with `return_attention=True`: row t of
# the matrix holds a_t, the weights over the source characters while writing
# output character t. It saves a heatmap (`viz.attention_heatmap`) when
# matplotlib is installed; here we also print it as text, one symbol per
# weight, darker for more (` .:-=+*#%@` from 0 to 1).

# %%
SHADES = " .:-=+*#%@"


def print_attention(weights, source, output):
    """The (n_out, n_source) matrix as text: a row per output character, a column per source character."""
    print("      " + source)
    for character, row in zip(output, weights):
        print(f"  {character}   " + "".join(SHADES[min(int(w * len(SHADES)), len(SHADES) - 1)] for w in row))


for k, text in enumerate(["23 November 2026", "the 3rd of May 1999"]):
    iso, weights = show_attention(model, text, path=f"figures/09_attention_{k}.png")
    print(f"\n{text!r} -> {iso!r}")
    print_attention(weights, text, iso)

# %% [markdown]
# Writing the four year digits, the decoder looks at the year at the end of
# the source; writing the month, at the month's name; then at the day. Nobody
# told it where the year is — it differs between formats ("2026/11/23" puts
# it first) — it learned where to look because looking there lowered the
# loss. Across all test dates: how much of the attention goes to the
# source's four year digits while the decoder writes the year?

# %%
def year_attention(model, pairs):
    """Mean attention mass on the source's 4-digit year while writing output characters 0-3."""
    outputs, attention = translate(model, [source for source, _ in pairs], return_attention=True)
    masses = []
    for (source, _), weights in zip(pairs, attention):
        year = re.search(r"\d{4}", source).span()
        masses.append(weights[:4, year[0]:year[1]].sum(axis=1).mean())
    return float(np.mean(masses))


mass = year_attention(model, test_pairs)
print(f"attention on the source year while writing the year: {mass:.1%} "
      f"(4 of about {np.mean([len(s) for s in sources]):.0f} source characters)")
assert mass > 0.6

# %% [markdown]
# ## Exercises
#
# 1. Build the model with `attention=None` (the plain Sutskever encoder–
#    decoder: only the final state reaches the decoder) and train it the same
#    60 updates. How much worse is it? Which output characters suffer most?
# 2. Train with `bidirectional=False`. Does attention still find the year?
#    Is the heatmap sharper or blurrier, and why might it shift by one
#    position? (Hint: what has a one-way encoder read when it reaches s?)
# 3. Try `attention="dot"` and `"general"` (Luong). Which learns fastest here?
# 4. Train with `teacher_forcing_ratio=0.5` in `sequence_loss`. Does the gap
#    between the forced and free-running test losses of section 3 shrink?
# 5. Find dates where greedy and beam search disagree (train for fewer
#    updates to get more of them). Is the beam output always the correct one?
# 6. Add a new format to `tinygrad_rnn/data/dates.py` (e.g. "23/11/26" with a
#    two-digit year) and look at the attention when the century must be
#    guessed.
