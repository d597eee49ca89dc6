"""Many-to-many, aligned: one label per input step (tagging).

    h_t      = RNN(x_t, h_{t-1})
    logits_t = h_t W^T + b                     (B, C) at every step
    L        = (1/TB) sum_t sum_b -log softmax(logits_t)[b, y_t]

The task is the weekly routine (`data.sequences.routine_batch`): x_t is
today's weather and yesterday's activity, y_t today's activity. After rain,
yesterday's activity is "sleep", so the model can only answer correctly if
its hidden state still holds where the run -> bike -> swim cycle stopped.
"""
import numpy as np

from .. import nn
from ..autograd import no_grad
from ..data.sequences import ACTIVITIES, ROUTINE_INPUT_SIZE, routine_batch
from ..tensor import Tensor, check_sizes
from .char_rnn import CELLS
from .training import Task


class SequenceTagger(nn.Module):
    """{LSTM, GRU, RNN}(I, H) -> Linear(H, C) at every step: x (T, B, I) -> logits (T, B, C)."""

    def __init__(self, input_size, hidden_size, num_tags, cell="gru", fused=True):
        if cell not in CELLS:
            raise ValueError(f"SequenceTagger: cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.config = dict(input_size=input_size, hidden_size=hidden_size, num_tags=num_tags, cell=cell,
                           fused=fused)
        self.rnn = CELLS[cell](input_size, hidden_size, fused=fused)
        self.head = nn.Linear(hidden_size, num_tags)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)

    def accuracy(self, x, tags):
        with no_grad():
            predicted = self(x).data.argmax(axis=-1)
        return float(np.mean(predicted == tags))


def build_task(hidden_size=16, batch_size=16, days=28, rain_prob=0.3, cell="gru", fused=True):
    """Predict today's activity of the weekly routine from today's weather and yesterday's activity."""
    check_sizes("routine tagger", hidden_size=hidden_size, batch_size=batch_size, days=days)
    model = SequenceTagger(ROUTINE_INPUT_SIZE, hidden_size, len(ACTIVITIES), cell, fused)
    test_x, test_tags = routine_batch(200, days, rain_prob, np.random.default_rng(12345))
    test_x = Tensor(test_x)
    return Task("routine", dict(hidden_size=hidden_size, batch_size=batch_size, days=days,
                                rain_prob=rain_prob, cell=cell, fused=fused), model,
                next_batch=lambda rng: routine_batch(batch_size, days, rain_prob, rng),
                loss=lambda model, batch: nn.cross_entropy(model(Tensor(batch[0])), batch[1]),
                evaluate=lambda model: {"test accuracy": model.accuracy(test_x, test_tags)},
                items_per_batch=batch_size * days, item_name="day")
