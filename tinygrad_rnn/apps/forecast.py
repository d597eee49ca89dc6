"""Many-to-many regression: forecast a time series (Mackey–Glass) `horizon` steps ahead.

    h_t    = LSTM(x_t, h_{t-1})                 x_t (B, 1): the series at step t
    yhat_t = h_t W^T + b                        (B, 1): the forecast of x_{t+horizon}
    L      = mean_{t >= warmup, b} (yhat_t - x_{t+horizon})^2

The first `warmup` steps of each window are not scored: the hidden state needs
a few steps of history before a forecast is fair. The yardstick is the
*persistence* forecast x_{t+horizon} ~ x_t: a model that beats it clearly has
learned something about the dynamics.

The series is standardised with its training mean and standard deviation;
the model is fitted on the first 75 % and scored on the rest.
"""
from .. import nn
from ..autograd import no_grad
from ..data.sequences import forecast_windows, mackey_glass
from ..tensor import Tensor, check_sizes
from .char_rnn import CELLS
from .training import Task


class Forecaster(nn.Module):
    """{LSTM, GRU, RNN}(1, H) -> Linear(H, 1): x (T, B, 1) -> forecasts (T, B, 1)."""

    def __init__(self, hidden_size=32, cell="lstm", fused=True):
        if cell not in CELLS:
            raise ValueError(f"Forecaster: cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.config = dict(hidden_size=hidden_size, cell=cell, fused=fused)
        self.rnn = CELLS[cell](1, hidden_size, fused=fused)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def scored_mse(prediction, target, warmup):
    """mean over t >= warmup of (prediction - target)^2 (arrays or Tensors, shapes (T, B, 1))."""
    return ((prediction[warmup:] - target[warmup:]) ** 2).mean()


def build_task(hidden_size=32, batch_size=32, window=40, horizon=5, warmup=10, length=2000, cell="lstm",
               fused=True):
    """Forecast the Mackey–Glass series `horizon` samples ahead."""
    check_sizes("forecast", hidden_size=hidden_size, batch_size=batch_size, window=window,
                horizon=horizon, length=length)
    if not 0 <= warmup < window:
        raise ValueError(f"forecast: warmup must be in [0, window={window}), got {warmup}")
    series = mackey_glass(length)
    split = int(0.75 * length)
    mean, std = series[:split].mean(), series[:split].std()
    series = (series - mean) / std
    train_x, train_y = forecast_windows(series[:split], window, horizon)
    test_x, test_y = forecast_windows(series[split:], window, horizon)
    model = Forecaster(hidden_size, cell, fused)

    def next_batch(rng):
        pick = rng.integers(0, train_x.shape[1], size=batch_size)
        return train_x[:, pick], train_y[:, pick]

    def evaluate(model):
        with no_grad():
            mse = float(scored_mse(model(Tensor(test_x)).data, test_y, warmup))
        persistence = float(scored_mse(test_x, test_y, warmup))
        return {"test MSE": mse, "persistence MSE": persistence}

    return Task("mackey-glass", dict(hidden_size=hidden_size, batch_size=batch_size, window=window,
                                     horizon=horizon, warmup=warmup, length=length, cell=cell, fused=fused),
                model, next_batch,
                loss=lambda model, batch: scored_mse(model(Tensor(batch[0])), Tensor(batch[1]), warmup),
                evaluate=evaluate, items_per_batch=batch_size * window, item_name="step")
