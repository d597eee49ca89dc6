"""Small sequence worlds: the weekly routine, the (embedded) Reber grammar, sine and Mackey–Glass.

Every generator takes a `numpy.random.Generator` (or a seed), so the same
seed always gives the same data, and returns NumPy arrays laid out time-major,
(T, B, ...), the layout the recurrent layers expect.

The weekly routine
------------------
Someone exercises in a fixed cycle, run -> bike -> swim -> run ... On a rainy
day they sleep instead, and on the next sunny day the cycle resumes where it
left off. The model sees today's weather and yesterday's activity,

    x_t = [ one_hot(weather_t) (2) , one_hot(activity_{t-1}) (5: 4 activities + "start") ]

and must say today's activity y_t. After a rainy day yesterday's activity is
"sleep", which says nothing about the cycle: only the hidden state can
remember whether the last exercise was a run, a ride or a swim.

The embedded Reber grammar
--------------------------
Strings such as BTBTSSXSETE from a small finite automaton (the Reber
grammar), wrapped as B c <reber string> c E with c in {T, P}. Whether a
string is valid depends on its second symbol matching its second-to-last one:
a long-range dependency a vanilla RNN finds hard and an LSTM learns.

Series
------
`sine_series` and `mackey_glass`, the chaotic delay differential equation

    dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t)

(tau = 17, beta = 0.2, gamma = 0.1, n = 10: the classic chaotic regime),
integrated with Runge–Kutta 4 (the delayed term held from the stored history);
`forecast_windows` cuts a series into (inputs, next values) pairs.
"""
import numpy as np
from ..tensor import check_sizes

# ---- shared helpers -------------------------------------------------------------


def _check_probability(op, name, value):
    if not 0 <= value <= 1:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {value}")


# ---- the weekly routine ---------------------------------------------------------

ACTIVITIES = ("run", "bike", "swim", "sleep")
WEATHER = ("sun", "rain")
ROUTINE_INPUT_SIZE = len(WEATHER) + len(ACTIVITIES) + 1   # + "start": no activity yesterday
_START = len(ACTIVITIES)


def weekly_routine(days, rain_prob=0.3, rng=None):
    """One person's diary: (weather (days,), activity (days,)) as indices into WEATHER / ACTIVITIES.

    On a sunny day the next exercise of run -> bike -> swim is done; on a rainy
    day the activity is "sleep" and the cycle waits. The first exercise is a run.
    """
    check_sizes("weekly_routine", days=days)
    _check_probability("weekly_routine", "rain_prob", rain_prob)
    rainy = np.random.default_rng(rng).random(days) < rain_prob
    activity = np.empty(days, dtype=np.int64)
    next_exercise = 0
    for day in range(days):
        if rainy[day]:
            activity[day] = ACTIVITIES.index("sleep")
        else:
            activity[day] = next_exercise
            next_exercise = (next_exercise + 1) % 3
    return rainy.astype(np.int64), activity


def routine_batch(batch_size, days, rain_prob=0.3, rng=None):
    """inputs (T, B, 7) float32 and targets (T, B) int64 for the next-activity tagging task.

    inputs[t, b] = [one_hot(weather_t), one_hot(activity_{t-1} or "start")],
    targets[t, b] = activity_t.
    """
    check_sizes("routine_batch", batch_size=batch_size, days=days)
    rng = np.random.default_rng(rng)
    inputs = np.zeros((days, batch_size, ROUTINE_INPUT_SIZE), dtype=np.float32)
    targets = np.empty((days, batch_size), dtype=np.int64)
    for b in range(batch_size):
        weather, activity = weekly_routine(days, rain_prob, rng)
        yesterday = np.concatenate([[_START], activity[:-1]])
        inputs[np.arange(days), b, weather] = 1
        inputs[np.arange(days), b, len(WEATHER) + yesterday] = 1
        targets[:, b] = activity
    return inputs, targets


# ---- the embedded Reber grammar -----------------------------------------------------

REBER_SYMBOLS = "BTSXPVE"
# state -> [(symbol, next state)]; state 5 is the end of the inner string.
REBER_GRAPH = {
    0: [("T", 1), ("P", 2)],
    1: [("S", 1), ("X", 3)],
    2: [("T", 2), ("V", 4)],
    3: [("X", 2), ("S", 5)],
    4: [("P", 3), ("V", 5)],
}
_REBER_END = 5


def reber_string(rng=None):
    """A string of the Reber grammar, e.g. 'BTSSXXTVVE': B, a walk of the automaton, E."""
    rng = np.random.default_rng(rng)
    state, symbols = 0, ["B"]
    while state != _REBER_END:
        symbol, state = REBER_GRAPH[state][rng.integers(2)]
        symbols.append(symbol)
    return "".join(symbols) + "E"


def embedded_reber_string(rng=None):
    """'B' + c + reber_string() + c + 'E' with c drawn from {T, P}."""
    rng = np.random.default_rng(rng)
    c = "TP"[rng.integers(2)]
    return "B" + c + reber_string(rng) + c + "E"


def is_reber(string):
    """Whether the automaton accepts `string` (B ... E)."""
    if len(string) < 2 or string[0] != "B" or string[-1] != "E":
        return False
    state = 0
    for symbol in string[1:-1]:
        moves = dict(REBER_GRAPH.get(state, []))
        if symbol not in moves:
            return False
        state = moves[symbol]
    return state == _REBER_END


def is_embedded_reber(string):
    return (len(string) >= 5 and string[0] == "B" and string[-1] == "E" and string[1] in "TP"
            and string[-2] == string[1] and is_reber(string[2:-2]))


def corrupt_embedded_reber(string):
    """The same string with the second-to-last symbol swapped (T <-> P): invalid only through
    the long-range dependency on the second symbol."""
    swapped = "P" if string[-2] == "T" else "T"
    return string[:-2] + swapped + string[-1]


def reber_classification_batch(batch_size, rng=None):
    """Half valid, half corrupted embedded Reber strings for many-to-one classification.

    Returns inputs (T, B, 7) one-hot float32 padded with zeros, lengths (B,)
    sorted in decreasing order, labels (B,) int64 (1 = valid), and the strings.
    """
    check_sizes("reber_classification_batch", batch_size=batch_size)
    rng = np.random.default_rng(rng)
    labels = rng.integers(0, 2, size=batch_size)
    strings = [embedded_reber_string(rng) for _ in range(batch_size)]
    strings = [s if label else corrupt_embedded_reber(s) for s, label in zip(strings, labels)]
    order = np.argsort([-len(s) for s in strings], kind="stable")
    strings = [strings[i] for i in order]
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    inputs = np.zeros((lengths.max(), batch_size, len(REBER_SYMBOLS)), dtype=np.float32)
    for b, s in enumerate(strings):
        inputs[np.arange(len(s)), b, [REBER_SYMBOLS.index(c) for c in s]] = 1
    return inputs, lengths, labels[order].astype(np.int64), strings


# ---- series ---------------------------------------------------------------------------


def sine_series(length, period=20.0, phase=0.0, noise=0.0, rng=None):
    """x_k = sin(2 pi k / period + phase) + noise * N(0, 1),  k = 0 .. length-1;  float32."""
    check_sizes("sine_series", length=length)
    if period <= 0:
        raise ValueError(f"sine_series: period must be positive, got {period}")
    k = np.arange(length)
    series = np.sin(2 * np.pi * k / period + phase)
    if noise:
        series = series + noise * np.random.default_rng(rng).standard_normal(length)
    return series.astype(np.float32)


def mackey_glass(length, tau=17, beta=0.2, gamma=0.1, n=10, dt=0.1, sample_every=1.0, x0=1.2):
    """The Mackey–Glass series sampled every `sample_every` time units: (length,) float32.

    RK4 with step dt; x(t) = x0 for t <= 0 (the history before the start).
    The first 500 time units (the transient) are discarded.
    """
    check_sizes("mackey_glass", length=length)
    if dt <= 0 or sample_every < dt or tau <= 0:
        raise ValueError(f"mackey_glass: need tau > 0 and 0 < dt <= sample_every, got tau={tau}, "
                         f"dt={dt}, sample_every={sample_every}")
    delay = int(round(tau / dt))
    stride = int(round(sample_every / dt))
    transient = int(round(500 / dt))
    total = transient + length * stride
    x = np.full(total + delay + 1, x0)        # x[k + delay] is x at time k dt

    def rate(x_now, x_delayed):
        return beta * x_delayed / (1 + x_delayed ** n) - gamma * x_now

    for k in range(total):
        now, delayed = x[k + delay], x[k]
        half_delayed = 0.5 * (x[k] + x[k + 1])
        k1 = rate(now, delayed)
        k2 = rate(now + 0.5 * dt * k1, half_delayed)
        k3 = rate(now + 0.5 * dt * k2, half_delayed)
        k4 = rate(now + dt * k3, x[k + 1])
        x[k + delay + 1] = now + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    samples = x[delay + transient + stride::stride][:length]
    return samples.astype(np.float32)


def forecast_windows(series, window, horizon=1):
    """Cut a series into supervised pairs for forecasting.

    inputs (window, N, 1): series[s .. s+window-1] for every start s;
    targets (window, N, 1): the value `horizon` steps after each input step,
    series[s+horizon .. s+window-1+horizon] (a many-to-many forecast; the
    last step's target is the forecast of the future).
    """
    series = np.asarray(series, dtype=np.float32)
    check_sizes("forecast_windows", window=window, horizon=horizon)
    count = len(series) - window - horizon + 1
    if count <= 0:
        raise ValueError(f"forecast_windows: a series of length {len(series)} is too short for "
                         f"window={window} and horizon={horizon}")
    index = np.arange(window)[:, None] + np.arange(count)[None, :]      # (window, N)
    return series[index][..., None], series[index + horizon][..., None]
