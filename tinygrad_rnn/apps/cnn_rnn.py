"""CNN + RNN + MLP: convolution finds local patterns, the LSTM keeps their order, an MLP decides.

The task ("motif order") needs both. A sequence of L symbols from a small
alphabet hides two three-symbol motifs, A = (0, 1, 2) and B = (2, 1, 0), once
each, at random places; the noise around them uses the same symbols but never
spells either motif. The label says which motif comes first:

    3 5 4 0 1 2 5 3 4 4 2 1 0 3 ...   ->  1   (A before B)
    4 2 1 0 5 5 3 0 1 2 4 3 3 5 ...   ->  0   (B before A)

- Single symbols say nothing (every symbol is everywhere) and neither do
  symbol counts: only the *local pattern* of three neighbours identifies a
  motif — a job for a width-3 convolution.
- Which motif comes first is a question about *order* over the whole
  sequence — a job for a recurrent layer reading the convolution's output.

The model, with the shapes (B batch, V alphabet size, L length, C channels,
H hidden size):

    x        one-hot symbols                   (B, V, L)   channels first, as Conv1d wants
    f        relu(Conv1d(V, C, k=3, pad=1)(x))  (B, C, L)   a motif detector per channel
    h_t      LSTM(C, H) over f as (L, B, C)     (L, B, H)
    logits   Linear(H, H) -> relu -> Linear(H, 2) on h_{L-1}
"""
import numpy as np

from .. import nn
from ..autograd import no_grad
from ..tensor import Tensor, check_sizes
from .training import Task

MOTIFS = ((0, 1, 2), (2, 1, 0))   # A, B


def _contains(sequence, motif):
    k = len(motif)
    return [i for i in range(len(sequence) - k + 1) if tuple(sequence[i:i + k]) == motif]


def motif_order_sequence(length, alphabet_size, rng):
    """One sequence with motif A and motif B exactly once each, and its label (1 if A comes first)."""
    k = len(MOTIFS[0])
    while True:
        sequence = rng.integers(0, alphabet_size, size=length)
        first, second = sorted(rng.choice(length - 2 * k + 1, size=2, replace=False))
        starts = (first, second + k)                  # non-overlapping positions, in order
        label = int(rng.integers(0, 2))               # 1: A at the earlier position
        order = MOTIFS if label == 1 else MOTIFS[::-1]
        for start, motif in zip(starts, order):
            sequence[start:start + k] = motif
        if all(len(_contains(sequence, motif)) == 1 for motif in MOTIFS):
            return sequence, label


def motif_order_batch(batch_size, length=24, alphabet_size=6, rng=None):
    """x (B, V, L) float32 one-hot (channels first) and labels (B,) int64."""
    check_sizes("motif_order_batch", batch_size=batch_size, length=length, alphabet_size=alphabet_size)
    if length < 2 * len(MOTIFS[0]) + 1 or alphabet_size < 3:
        raise ValueError(f"motif_order_batch: needs length >= 7 and alphabet_size >= 3, "
                         f"got length={length}, alphabet_size={alphabet_size}")
    rng = np.random.default_rng(rng)
    sequences, labels = zip(*(motif_order_sequence(length, alphabet_size, rng) for _ in range(batch_size)))
    one_hot = np.eye(alphabet_size, dtype=np.float32)[np.array(sequences)]   # (B, L, V)
    return one_hot.transpose(0, 2, 1), np.array(labels, dtype=np.int64)


class ConvRecurrentClassifier(nn.Module):
    """Conv1d -> relu -> LSTM -> MLP head (see the module doc).   x (B, V, L) -> logits (B, classes)"""

    def __init__(self, input_channels, conv_channels=16, hidden_size=32, num_classes=2, kernel_size=3,
                 fused=True):
        self.config = dict(input_channels=input_channels, conv_channels=conv_channels, hidden_size=hidden_size,
                           num_classes=num_classes, kernel_size=kernel_size, fused=fused)
        self.conv = nn.Conv1d(input_channels, conv_channels, kernel_size, padding=kernel_size // 2)
        self.rnn = nn.LSTM(conv_channels, hidden_size, fused=fused)
        self.hidden = nn.Linear(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        features = self.conv(x).relu()                     # (B, C, L)
        _, (h_n, _) = self.rnn(features.transpose(2, 0, 1))   # read (L, B, C)
        return self.head(self.hidden(h_n[0]).relu())

    def accuracy(self, x, labels):
        with no_grad():
            predicted = self(Tensor(x)).data.argmax(axis=-1)
        return float(np.mean(predicted == labels))


def build_task(conv_channels=16, hidden_size=32, batch_size=32, length=24, alphabet_size=6, test_size=500,
               fused=True):
    """Classify motif order with ConvRecurrentClassifier."""
    check_sizes("cnn-rnn", conv_channels=conv_channels, hidden_size=hidden_size, batch_size=batch_size,
                test_size=test_size)
    model = ConvRecurrentClassifier(alphabet_size, conv_channels, hidden_size, fused=fused)
    test_x, test_labels = motif_order_batch(test_size, length, alphabet_size, np.random.default_rng(12345))
    options = dict(conv_channels=conv_channels, hidden_size=hidden_size, batch_size=batch_size, length=length,
                   alphabet_size=alphabet_size, test_size=test_size, fused=fused)
    return Task("cnn-rnn", options, model,
                next_batch=lambda rng: motif_order_batch(batch_size, length, alphabet_size, rng),
                loss=lambda model, batch: nn.cross_entropy(model(Tensor(batch[0])), batch[1]),
                evaluate=lambda model: {"test accuracy": model.accuracy(test_x, test_labels)},
                items_per_batch=batch_size, item_name="sequence")
