# %% [markdown]
# # Tutorial 8: a character-level language model (char-RNN)
#
# The classic many-to-many, aligned task: read text one character at a time
# and, at every step, predict the next character. Train it on enough text and
# you can *sample* from it: feed each drawn character back in as the next
# input and it writes new text in the style of what it read.
#
#     e_t      = E[x_t]                    embedding: the row of E for character x_t   (B, 16)
#     h_t      = LSTM(e_t, h_{t-1})         the memory of the text so far               (B, H)
#     y_t      = W_hy h_t + c               logits, one per character                   (B, V)
#     L_t      = -log softmax(y_t)[x_{t+1}] surprise at the character that came next
#     L        = sum_t L_t                  the loss BPTT differentiates
#
# This chapter covers every piece a real char-RNN needs: turning text into
# numbers, the loss summed over time, truncated BPTT through a long stream
# with the state carried across chunks by `detach()`, gradient clipping, and
# sampling with a temperature and top-k. Our text is Python's own help pages
# (`pydoc_data.topics`, shipped with every Python: no download).

# %%
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before NumPy loads: small matrices run fastest on one BLAS thread

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, optim, viz
from tinygrad_rnn.apps.char_rnn import CharRNN, sample, sampling_distribution
from tinygrad_rnn.autograd import topological_order
from tinygrad_rnn.bptt import detach_state

os.makedirs("figures", exist_ok=True)
tr.manual_seed(0)

# %% [markdown]
# ## 1. From characters to numbers
#
# A `Vocabulary` lists the distinct characters, sorted, and gives each an
# index 0 .. V-1. A character is then either its index i (what `nn.Embedding`
# takes) or the one-hot vector e_i of length V (what tutorial 2 fed to its
# RNN). The two are the same thing: multiplying a one-hot vector by a matrix
# picks one row, so
#
#     one_hot(i) @ E  ==  E[i]
#
# and an embedding lookup is a one-hot input layer without the V - 1
# multiplications by zero.

# %%
corpus = data.CharCorpus.builtin()
vocab, V = corpus.vocab, len(corpus.vocab)
print(corpus, "—", vocab)
print(repr(corpus.text[:120]))

ids = vocab.encode("def f(x):")
one_hot = vocab.one_hot(ids)
print("'def f(x):' ->", ids, " one-hot:", one_hot.shape, " decoded back:", repr(vocab.decode(ids)))
embedding = nn.Embedding(V, 16)
assert np.allclose(embedding(ids).data, one_hot @ embedding.weight.data)
assert vocab.decode(ids) == "def f(x):"

# %% [markdown]
# ## 2. The model, and what "no knowledge" costs
#
# `CharRNN` (in `tinygrad_rnn/apps/char_rnn.py`) is exactly the four lines of
# equations above: Embedding(V, 16) -> LSTM(16, H) -> Linear(H, V).
#
# Before any training the logits are small and nearly equal, so the model
# gives every character probability about 1/V and pays -log(1/V) = log V nats
# at every step. That is the **uniform baseline**: any model that learned
# something must beat it. A second, harder baseline is a model that knows only
# how often each character occurs (no context at all): its loss is the
# entropy of the character frequencies, -sum_c p_c log p_c.

# %%
H, B, T = 128, 32, 48          # hidden units, parallel streams, steps per chunk
model = CharRNN(V, hidden_size=H, embedding_size=16)
for name, p in model.named_parameters():
    print(f"  {name:<22} {p.shape}")

frequencies = np.bincount(corpus.ids, minlength=V) / len(corpus.ids)
unigram_entropy = -np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0]))
print(f"uniform baseline log V = {np.log(V):.3f} nats/char; character-frequency baseline = {unigram_entropy:.3f}")

# %% [markdown]
# The loss of a sequence is the **sum** over its time steps: each L_t adds its
# own term, and backpropagation sends each one back through the steps before
# it (tutorial 3). `reduction="none"` shows the L_t one by one; we sum over
# time and average over the B sequences of the batch:
#
#     L = (1/B) sum_t sum_b L_{t,b}
#
# Averaging over the batch keeps the gradient's size independent of B;
# summing over time makes it grow with T — remember that when choosing a
# clipping threshold or an SGD learning rate for a different chunk length.

# %%
inputs, targets = corpus.batch(T, B, np.random.default_rng(0))       # (T, B) each: targets = inputs shifted by one
logits, _ = model(inputs)                                            # (T, B, V)
per_step = nn.cross_entropy(logits, targets, reduction="none")       # (T, B): L_{t,b}
loss = nn.cross_entropy(logits, targets, reduction="sum") / B
print("logits", logits.shape, " L_t (mean over b) for t = 0..4:", per_step.data.mean(axis=1)[:5].round(3))
print(f"L = {loss.item():.2f} = sum of {T} steps of about log V = {np.log(V):.3f} each")
assert np.isclose(loss.item(), per_step.data.sum() / B, rtol=1e-5)
assert abs(per_step.data.mean() - np.log(V)) < 0.1

# %% [markdown]
# ## 3. A long stream, cut into chunks: truncated BPTT
#
# Random windows (`corpus.batch` above) start every sequence with an empty
# memory. A real language model reads the text *continuously*. We cut the
# training text into B equal streams, side by side (time-major: row t holds
# character t of every stream), and walk down them chunk by chunk:
#
#                 chunk 0        chunk 1        chunk 2
#     stream 0    text[0:48]     text[48:96]    ...
#     stream 1    text[n:n+48]   text[n+48:..]  ...
#     ...         (n = the length of one stream)
#
# The state at the end of chunk k is exactly the memory the network should
# start chunk k+1 with, so we **carry it over**. But we `detach()` it: its
# value flows into the next chunk, its gradient does not flow back. Without
# the detach, the backward pass of chunk k+1 would run on through chunk k,
# k-1, ... back to the start of the text — the graph (and its memory) would
# grow with every chunk. That is truncated BPTT with k1 = k2 = T
# (tutorial 5), the way every char-RNN is trained.

# %%
held_out = 20_000                                      # the last 20,000 characters are for testing


def as_streams(ids, B):
    """inputs, targets (n, B): B equal consecutive pieces of `ids`, side by side; targets shifted by one."""
    n = (len(ids) - 1) // B
    return ids[:n * B].reshape(B, n).T, ids[1:n * B + 1].reshape(B, n).T


def chunk(streams, k):
    """Rows k*T .. (k+1)*T - 1 of a (n, B) stream array: the k-th chunk, (T, B)."""
    return streams[k * T:(k + 1) * T]


train_x, train_y = as_streams(corpus.ids[:-held_out], B)
test_x, test_y = as_streams(corpus.ids[-held_out:], B)
print(f"training streams {train_x.shape} (n, B): {train_x.shape[0] // T} chunks of {T} steps")


def graph_size_after_three_chunks(detach):
    """Tensors that backward() visits for the third chunk's loss, with or without detaching the carried state."""
    state = None
    for k in range(3):
        if state is not None and detach:
            state = detach_state(state)
        logits, state = model(chunk(train_x, k), state)
    return len(topological_order(nn.cross_entropy(logits, chunk(train_y, 2))))


with_detach, without_detach = graph_size_after_three_chunks(True), graph_size_after_three_chunks(False)
print(f"backward of chunk 2's loss visits {with_detach} tensors with detach, {without_detach} without "
      f"(it reaches back through chunks 1 and 0)")
assert without_detach > with_detach

# %% [markdown]
# ## 4. Training, with gradient clipping
#
# One update per chunk: forward from the carried state, the loss summed over
# the chunk's T steps, backward, **clip**, step, detach. `clip_grad_norm_`
# returns the gradient norm before clipping and, when it exceeds `max_norm`,
# scales all gradients down together (the direction is kept, only the length
# is capped). It guards against the exploding gradients of tutorial 4: a
# single huge step can undo everything learned so far. We watch the norms as
# we go. A few hundred updates (a few seconds) are enough to beat both
# baselines clearly.

# %%
optimizer = optim.Adam(model.parameters(), lr=1e-2)
max_norm = 12.0
losses, norms = [], []
state = None
for k in range(200):
    logits, state = model(chunk(train_x, k), state)
    loss = nn.cross_entropy(logits, chunk(train_y, k), reduction="sum") / B
    optimizer.zero_grad()
    loss.backward()
    norms.append(optim.clip_grad_norm_(model.parameters(), max_norm))
    optimizer.step()
    state = detach_state(state)
    losses.append(loss.item() / T)                     # report nats per character
    if k % 40 == 0 or k == 199:
        print(f"update {k:3d}: loss {losses[-1]:.3f} nats/char, gradient norm {norms[-1]:5.2f}"
              f"{' (clipped)' if norms[-1] > max_norm else ''}")

final = np.mean(losses[-20:])
clipped = np.array(norms) > max_norm
print(f"final loss {final:.3f} nats/char (uniform {np.log(V):.3f}, frequencies {unigram_entropy:.3f}); "
      f"clipped {clipped.sum()} of {len(norms)} updates, {clipped[:50].sum()} of them in the first 50")
viz.plot_per_step({"training loss": losses, "uniform baseline log V": np.full(len(losses), np.log(V)),
                   "character frequencies": np.full(len(losses), unigram_entropy)},
                  "figures/08_loss.png", title="char-LSTM on Python's help text", ylabel="nats per character",
                  xlabel="update (one chunk of 48 steps)", log=False)
viz.plot_per_step({"||gradient|| before clipping": norms, "max_norm": np.full(len(norms), max_norm)},
                  "figures/08_grad_norms.png", title="gradient norm per update", ylabel="norm",
                  xlabel="update", log=False)
assert final < 0.5 * np.log(V) and final < unigram_entropy - 0.5

# %% [markdown]
# ## 5. Why carry the state: test with and without it
#
# On the held-out text, run chunk after chunk once carrying the state and once
# starting every chunk from zero, and look at the loss at each position
# inside a chunk. A reset network must guess the first character of a chunk
# with no context at all; the carried state knows what came just before.

# %%
def loss_by_position(carry):
    """Mean loss at each step t = 0 .. T-1 of a chunk, over the held-out chunks (the first one skipped)."""
    state, rows = None, []
    with tr.no_grad():
        for k in range(test_x.shape[0] // T):
            logits, next_state = model(chunk(test_x, k), state if carry else None)
            state = next_state
            rows.append(nn.cross_entropy(logits, chunk(test_y, k), reduction="none").data.mean(axis=1))
    return np.mean(rows[1:], axis=0)


carried, reset = loss_by_position(carry=True), loss_by_position(carry=False)
print("held-out loss at steps 0..4 of a chunk, state carried:", carried[:5].round(2))
print("                                         state reset:  ", reset[:5].round(2))
print(f"whole chunk: carried {carried.mean():.3f}, reset {reset.mean():.3f} nats/char")
assert reset[0] > carried[0] + 0.5

# %% [markdown]
# ## 6. Sampling: temperature and top-k
#
# To write text, feed the model a prime ("The "), turn the last logits y into
# a distribution, draw a character, feed it back in, repeat. Two knobs shape
# the distribution:
#
#     p = softmax(y / tau)            tau < 1 sharpens it (safe, repetitive),
#                                     tau > 1 flattens it (varied, then garbled)
#     top-k: keep the k largest p, set the rest to 0, renormalise
#
# tau -> 0 is greedy decoding (always the most likely character); tau = 1 is
# the model's own distribution. The entropy -sum p log p measures how spread
# out p is: it grows with tau.

# %%
with tr.no_grad():
    logits, _ = model(vocab.encode("The ")[:, None])
next_logits = logits.data[-1, 0]                               # the logits after reading "The "
print(f"{'tau':>5} {'entropy':>8}   top 5 next characters")
entropies = []
for tau in (0.3, 0.8, 1.0, 1.5):
    p = sampling_distribution(next_logits, temperature=tau)
    entropies.append(-np.sum(p[p > 0] * np.log(p[p > 0])))
    top = np.argsort(-p)[:5]
    print(f"{tau:5.1f} {entropies[-1]:8.3f}   " + "  ".join(f"{vocab.symbols[i]!r} {p[i]:.2f}" for i in top))
assert np.all(np.diff(entropies) > 0)

top3 = sampling_distribution(next_logits, temperature=1.0, top_k=3)
print("top-k = 3 leaves", np.count_nonzero(top3), "characters with p > 0, summing to", round(top3.sum(), 6))
assert np.count_nonzero(top3) == 3

for tau in (0.3, 0.8, 1.5):
    text = sample(model, vocab, "The ", 150, temperature=tau, rng=np.random.default_rng(0))
    print(f"\n--- temperature {tau} ---\n{text}")
print("\n--- temperature 1.0, top-k 5 ---\n" + sample(model, vocab, "The ", 150, temperature=1.0, top_k=5,
                                                       rng=np.random.default_rng(0)))

# %% [markdown]
# At tau = 0.3 the model repeats its most frequent words ("the", "and");
# at 1.5 it reaches for characters that rarely occur; top-k keeps some
# variety while cutting off the long tail of unlikely characters that
# produce the garbage. After a few seconds of training the words are half-right: the
# LSTM has learned spelling fragments, spaces, quotes and indentation. Train
# for longer (the command line: `tinygrad-rnn demo`) and it learns words,
# then Python syntax.
#
# ## Exercises
#
# 1. Replace `reduction="sum"` by the mean over time steps (`reduction="mean"`)
#    and print the gradient norms. By what factor do they change? What
#    `max_norm` gives the same clipping as before?
# 2. Remove the `detach_state` call in the training loop. What error do you
#    get on the second chunk, and why? (Hint: what does `backward()` free?)
# 3. Train with `cell="rnn"` and `cell="gru"` (same H). Which reaches the
#    lowest loss in 200 updates? Plot the three curves in one figure.
# 4. Measure the held-out loss per position (section 5) for T = 16 and T = 96.
#    Does a longer chunk help the loss late in a chunk, early, or both?
# 5. Write `sample` yourself from `sampling_distribution`: prime the state with
#    the prime text, then draw one character at a time. Check you get the same
#    text as `sample` with the same `rng`.
# 6. Train on your own text: `data.CharCorpus.from_file("book.txt")`.
