# %% [markdown]
# # Tutorial 7: architectures — what goes in, what comes out
#
# The same recurrent layer serves very different tasks depending on which
# inputs it reads and which outputs we use:
#
#     one-to-one      x -> y                          (no recurrence needed)
#     many-to-one     x_0 .. x_{T-1} -> y             sentiment, speaker identification
#     one-to-many     x -> y_0 .. y_{T-1}             image captioning
#     many-to-many    x_t -> y_t, aligned             tagging, next-word, series forecasting
#     many-to-many    x_0..x_{T-1} -> y_0..y_{S-1}    translation (encoder-decoder), S != T
#
# plus two ways to make the layer itself bigger: **bidirectional** (a second
# RNN reads the sequence backwards; merge by concat or sum) and **stacked**
# (layer 2 reads layer 1's outputs). This chapter builds each one and prints
# the shapes; the layout is PyTorch's: x (T, B, I), output (T, B, D*H),
# h_n (L*D, B, H) with L layers and D = 2 if bidirectional else 1.

# %%
import os

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import nn, viz

os.makedirs("figures", exist_ok=True)
tr.manual_seed(0)
T, B, I, H = 7, 3, 5, 8
x = tr.randn(T, B, I)
print("x", x.shape, "= (T, B, I)")

# %% [markdown]
# ## 1. Many-to-one: read everything, answer once
#
# Only the last hidden state h_{T-1} (a summary of the whole sequence) goes to
# the classifier. The loss sits at the last step, so every gradient travels
# back through time from there.

# %%
rnn, classify = nn.GRU(I, H), nn.Linear(H, 4)
output, h_n = rnn(x)
logits = classify(h_n[-1])
print("output", output.shape, " h_n", h_n.shape, " logits", logits.shape, "= (B, classes)")
assert np.allclose(output.data[-1], h_n.data[0])        # the last output is the final state

# %% [markdown]
# ## 2. One-to-many: one vector in, a sequence out
#
# A single input (say an image's feature vector) sets the initial state
# h_0 = tanh(W_v v); then the cell runs on its own, feeding each output back
# in as the next input (at training time, the true previous token: teacher
# forcing).

# %%
V = 6                                                   # output vocabulary
features = tr.randn(B, 10)                              # one vector per example
init, cell, readout = nn.Linear(10, H), nn.GRUCell(V, H), nn.Linear(H, V)
h = init(features).tanh()
token = tr.zeros(B, V)                                  # a "start" input
outputs = []
for t in range(5):
    h = cell(token, h)
    y_t = readout(h)
    outputs.append(y_t)
    token = tr.tensor(np.eye(V, dtype=np.float32)[y_t.data.argmax(-1)])   # feed back the choice (one-hot)
print("features", features.shape, "->", len(outputs), "outputs of shape", outputs[0].shape,
      "->", tr.stack(outputs).shape)

# %% [markdown]
# ## 3. Many-to-many, aligned: one output per input step
#
# Apply the read-out to every step of `output` (Linear works on the last axis).

# %%
tagger = nn.Linear(H, 4)
tags = tagger(output)
print("output", output.shape, "-> tag logits", tags.shape, "= (T, B, tags)")

# %% [markdown]
# ## 4. Many-to-many, unaligned: encoder-decoder
#
# The input and output sequences have different lengths. An encoder reads
# all T inputs; its final state starts a decoder that produces S outputs.
# (Tutorial 9 adds attention, which lets the decoder look back at every
# encoder output instead of one squeezed vector.)

# %%
S = 4
encoder, decoder = nn.GRU(I, H), nn.GRU(V, H)
_, summary = encoder(x)                                 # (1, B, H)
decoder_inputs = tr.zeros(S, B, V)                      # teacher forcing would put the shifted targets here
decoded, _ = decoder(decoder_inputs, summary)
print(f"encoder reads {x.shape} -> state {summary.shape}; decoder writes {decoded.shape} "
      f"-> logits {readout(decoded).shape}")

# %% [markdown]
# ## 5. Bidirectional: concat or sum
#
# A forward RNN sees x_0..x_t at step t; a backward RNN sees x_{T-1}..x_t. Merging
# them gives every step the context on both sides. Concatenation doubles the
# feature size; summing keeps it (and needs both directions to have size H).

# %%
for merge in ("concat", "sum"):
    bi = nn.RNN(I, H, bidirectional=True, merge=merge)
    out, h_n = bi(x)
    print(f"bidirectional, merge={merge!r:<9} output {out.shape}  h_n {h_n.shape} (forward, backward)")

# %% [markdown]
# The sequential Jacobian matrix ||dh_s/dx_t|| (every output step s, every
# input step t) shows the difference: a one-direction RNN is causal, zero
# above the diagonal; a bidirectional one depends on the future too.

# %%
one_way = nn.RNN(I, H, fused=False).double()
two_way = nn.RNN(I, H, bidirectional=True, fused=False).double()
sequence = np.random.default_rng(0).standard_normal((T, I))
J_one = viz.sequential_jacobian(one_way, sequence, full=True)
J_two = viz.sequential_jacobian(two_way, sequence, full=True)
above = np.triu_indices(T, k=1)
print(f"sum of ||dh_s/dx_t|| over t > s (the future): one-way {J_one[above].sum():.3f}, "
      f"bidirectional {J_two[above].sum():.3f}")
assert J_one[above].sum() == 0 and J_two[above].min() > 0
viz.plot_matrix(J_one, "figures/07_jacobian_one_way.png", title="one direction: ||dh_s/dx_t||",
                xlabel="input step t", ylabel="output step s", log=True, colorbar_label="||dh_s/dx_t||")
viz.plot_matrix(J_two, "figures/07_jacobian_bidirectional.png", title="bidirectional: ||dh_s/dx_t||",
                xlabel="input step t", ylabel="output step s", log=True, colorbar_label="||dh_s/dx_t||")

# %% [markdown]
# ## 6. Stacked layers
#
# Layer l + 1 reads the output sequence of layer l. h_n holds the final state
# of every layer (and direction), ordered layer by layer:
# index = layer * D + direction.

# %%
for layers, bidirectional in ((2, False), (3, False), (2, True)):
    stacked = nn.LSTM(I, H, num_layers=layers, bidirectional=bidirectional)
    out, (h_n, c_n) = stacked(x)
    names = [n for n, _ in stacked.named_parameters() if n.startswith("weight_ih")]
    print(f"LSTM num_layers={layers} bidirectional={bidirectional!s:<5}: output {out.shape} "
          f"h_n {h_n.shape} c_n {c_n.shape}; input weights {names}")
    assert h_n.shape == (layers * (2 if bidirectional else 1), B, H)

# %% [markdown]
# ## Exercises
#
# 1. Train the many-to-one model of section 1 on the embedded Reber grammar
#    (`tr.data.reber_classification_batch`) and report its accuracy.
# 2. In section 2, replace the fed-back argmax with sampling from
#    softmax(y_t / temperature). What does the temperature change?
# 3. Why does a bidirectional layer not fit next-character prediction, even
#    though its Jacobian shows it uses more context? (Hint: look at the
#    upper triangle of `J_two`.)
# 4. Compare the parameter counts of a 2-layer LSTM with H = 8 and a 1-layer
#    LSTM with the same number of parameters. Which one has the larger h_n?
# 5. Build a "CNN for local patterns, RNN for order, MLP for the decision"
#    model with `nn.Conv1d`, `nn.GRU` and `nn.Linear`, and print its shapes.
