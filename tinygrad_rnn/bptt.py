"""Backpropagation through time: full, truncated, and checked step by step.

Full BPTT unrolls the network over all T steps, sums the per-step losses
L = sum_t L_t and backpropagates once. For a shared weight W the gradient is
the sum of what each step contributes,

    dL/dW = sum_t dL/dW_(t)        W_(t): the copy of W used at step t

Truncated BPTT(k1, k2) (Williams & Peng, 1990) bounds the cost: every k1
steps, the losses of those k1 steps are backpropagated through the last k2
steps only (k2 >= k1), then the weights are updated and the hidden state is
carried into the next chunk with ``detach()``: its value flows forward, its
gradient does not flow back. k1 = k2 = k is the common "detach every k
steps"; k1 = k2 = T is full BPTT.

    steps    0 1 2 3 4 5 6 7 8 9        k1 = 3, k2 = 5
    chunk          [3 4 5]              losses of steps 3..5
    window     [1 2 3 4 5]              backpropagated through steps 1..5

Here each window is re-run forward from the detached state saved at its
first step, so the graph is always fresh (built with the current weights);
when k2 > k1 that costs k2/k1 forward steps per step.

`run` works with any cell through a per-step interface:

    step_fn(x_t, state) -> (y_t, new_state)    state: a Tensor or a tuple of Tensors
    loss_fn(y_t, t) -> scalar Tensor, or None for a step without a target

`bptt_gradcheck(model, x)` checks, in float64, each step's contribution
dL/dW_(t) to each parameter against central differences, and prints the
table: time step x parameter. `unrolled_rnn_loss` is BPTT with no helper at
all: a tanh RNN unrolled by hand from primitive ops, which `gradcheck` can
check as one function of its weights.
"""
from dataclasses import dataclass, field

import numpy as np

from .autograd import no_grad, time_step
from .gradcheck import GradcheckError
from .nn.cells import GRUCell, LeakyRNNCell, LSTMCell, RNNCell, gru_step, leaky_step, lstm_step, rnn_step
from .nn.recurrent import GRU, LSTM, RNN
from .optim import clip_grad_norm_
from .tensor import Tensor, check_sizes


# --------------------------------------------------------------------------
# Training over one sequence: full or truncated BPTT
# --------------------------------------------------------------------------

@dataclass
class BPTTResult:
    """losses (T,): the loss of each step (NaN where loss_fn gave None); state: the final state, detached."""

    losses: np.ndarray
    state: object


def detach_state(state):
    """Cut a state (a Tensor or a tuple of Tensors) from the graph, keeping its values."""
    if isinstance(state, (tuple, list)):
        return tuple(s.detach() for s in state)
    return state.detach()


def run(step_fn, xs, state, loss_fn, k1=None, k2=None, optimizer=None, clip_norm=None,
        randomize=False, seed=None):
    """Run a sequence through `step_fn`, backpropagating with full or truncated BPTT.

    step_fn    (x_t, state) -> (y_t, new_state)
    xs         the inputs, indexable by time: a Tensor (T, B, ...) or a list of T items
    state      the initial state (a Tensor or tuple of Tensors); gradient reaches it
               only from windows that start at step 0
    loss_fn    (y_t, t) -> scalar Tensor L_t, or None when step t has no loss
    k1, k2     update every k1 steps, backpropagating through the last k2 steps
               (k2 >= k1; k2 defaults to k1; k1 = None means full BPTT, k1 = k2 = T)
    optimizer  if given: zero_grad() before and step() after every backward, so
               the weights change after each chunk; if None, gradients of all
               chunks accumulate in .grad (nothing is updated)
    clip_norm  if given, clip_grad_norm_(optimizer.params, clip_norm) before each step
    randomize  draw each chunk's length uniformly from [k1 // 2, k1 + k1 // 2]
               (at least 1; the window still reaches k2 - k1 steps further back)
    Returns a `BPTTResult`: per-step losses (T,) and the final state, detached,
    to carry into the next batch of a long stream.
    """
    T = len(xs)
    if T == 0:
        raise ValueError("bptt.run: the input sequence is empty")
    k1, k2 = _check_truncation(T, k1, k2)
    if clip_norm is not None and optimizer is None:
        raise ValueError("bptt.run: clip_norm needs an optimizer (whose parameters it clips)")
    rng = np.random.default_rng(seed)
    losses = np.full(T, np.nan)
    states = {0: state}                 # states[t]: the (detached) state entering step t
    start = 0
    while start < T:
        length = int(rng.integers(max(1, k1 // 2), k1 + k1 // 2 + 1)) if randomize else k1
        end = min(start + length, T)
        window_start = max(0, start - (k2 - k1))
        total = _forward_window(step_fn, xs, states, loss_fn, losses, window_start, start, end)
        if total is not None and total.requires_grad:
            _backward_and_update(total, optimizer, clip_norm)
        for t in [t for t in states if t < end - (k2 - k1)]:
            del states[t]                   # no later window starts before end - (k2 - k1)
        start = end
    return BPTTResult(losses, detach_state(states[T]))


def _check_truncation(T, k1, k2):
    if k1 is None:
        if k2 is not None:
            raise ValueError("bptt.run: k2 given without k1; pass both (or neither, for full BPTT)")
        return T, T
    k2 = k1 if k2 is None else k2
    check_sizes("bptt.run", k1=k1, k2=k2)
    if k2 < k1:
        raise ValueError(f"bptt.run: k2={k2} < k1={k1}: the losses of the last k1 steps must be "
                         f"backpropagated through at least k1 steps; use k2 >= k1")
    return k1, k2


def _forward_window(step_fn, xs, states, loss_fn, losses, window_start, start, end):
    """Steps window_start..end-1 from the saved state; return the sum of the losses of start..end-1.

    States entering steps start+1..end are saved, detached, for later windows.
    """
    state = states[window_start]
    total = None
    for t in range(window_start, end):
        with time_step(t):
            y, state = step_fn(xs[t], state)
        if t < start:
            continue                     # re-run only to rebuild the graph back to window_start
        states[t + 1] = detach_state(state)
        loss = loss_fn(y, t)
        if loss is not None:
            losses[t] = float(loss.item())
            total = loss if total is None else total + loss
    return total


def _backward_and_update(total, optimizer, clip_norm):
    if optimizer is not None:
        optimizer.zero_grad()
    total.backward()
    if optimizer is not None:
        if clip_norm is not None:
            clip_grad_norm_(optimizer.params, clip_norm)
        optimizer.step()


# --------------------------------------------------------------------------
# The per-step gradient check
# --------------------------------------------------------------------------

LAYER_WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass
class BPTTGradcheckReport:
    """Per time step t and parameter W: the analytic contribution dL/dW_(t) and its numeric estimate.

    The loss is L = sum_t sum(h_t * v_t) with fixed random directions v_t
    (`directions`, shape (T, B, H)); analytic[name] and numeric[name] have
    shape (T, *W.shape), and analytic[name].sum(axis=0) is the full dL/dW.
    """

    model_name: str
    names: list
    analytic: dict
    numeric: dict
    directions: np.ndarray
    eps: float
    atol: float
    rtol: float
    ok: np.ndarray = field(init=False)          # (T, P): does every element of that cell pass?

    def __post_init__(self):
        self.ok = np.array([[_passes(self.analytic[n][t], self.numeric[n][t], self.atol, self.rtol)
                             for n in self.names] for t in range(self.steps)], dtype=bool).reshape(self.steps, -1)

    @property
    def steps(self):
        return self.directions.shape[0]

    @property
    def passed(self):
        return bool(self.ok.all())

    @property
    def errors(self):
        """(T, P): max |analytic - numeric| over the elements of each parameter, per step."""
        return np.array([[np.abs(self.analytic[n][t] - self.numeric[n][t]).max(initial=0.0)
                          for n in self.names] for t in range(self.steps)]).reshape(self.steps, -1)

    @property
    def norms(self):
        """(T, P): ||dL/dW_(t)||, the size of each step's contribution (watch it vanish as t falls)."""
        return np.array([[np.linalg.norm(self.analytic[n][t]) for n in self.names]
                         for t in range(self.steps)]).reshape(self.steps, -1)

    def gradient(self, name):
        """The full gradient dL/dW = sum_t dL/dW_(t)."""
        return self.analytic[name].sum(axis=0)

    def __str__(self):
        verdict = "passed" if self.passed else "FAILED"
        width = max(22, *(len(n) + 2 for n in self.names))
        lines = [f"bptt_gradcheck {verdict}: {self.model_name}, T={self.steps}, float64, central differences "
                 f"(eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})",
                 "each cell: ||dL/dW_(t)|| (the step's contribution)  max|analytic - numeric|  ok",
                 "   t  " + "".join(f"{n:>{width}}" for n in self.names)]
        errors, norms = self.errors, self.norms
        for t in range(self.steps):
            cells = [f"{norms[t, j]:.2e} {errors[t, j]:.1e} {'ok' if self.ok[t, j] else 'NO'}"
                     for j in range(len(self.names))]
            lines.append(f"{t:>4}  " + "".join(f"{cell:>{width}}" for cell in cells))
        return "\n".join(lines)


def _passes(analytic, numeric, atol, rtol):
    return bool(np.all(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)))


def bptt_gradcheck(model, x, state=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_on_failure=True):
    """Check each time step's gradient contribution to each parameter, in float64.

    model  a cell (RNNCell, LeakyRNNCell, LSTMCell, GRUCell) or a one-layer,
           one-direction RNN/LSTM/GRU layer
    x      inputs (T, B, I) ((B, T, I) for a batch_first layer); state: optional
           initial state (h, or (h, c) for LSTM) of shape (B, H), default zeros

    The cell is unrolled with a separate float64 leaf copy W_(t) of every
    parameter W at every step t (all equal to W), for the loss
    L = sum_t sum(h_t * v_t). One backward gives every dL/dW_(t); the numeric
    side perturbs only step t's copy:

        dL/dW_(t)[k] ~ (L(W_(t)[k] + eps) - L(W_(t)[k] - eps)) / (2 eps)

    Returns a `BPTTGradcheckReport` (print it for the table); raises
    `GradcheckError` with it if any element fails and raise_on_failure is set.
    """
    step = _unrolled_step(model)
    params = dict(model.named_parameters())
    xs = _time_major_float64(model, x)
    T, B = xs.shape[0], xs.shape[1]
    initial = _initial_state_float64(model, state, B)
    directions = np.random.default_rng(seed).standard_normal((T, B, model.hidden_size))

    copies = [{n: Tensor(p.data.astype(np.float64), requires_grad=True) for n, p in params.items()}
              for _ in range(T)]

    def loss():
        s, total = initial, 0.0
        for t in range(T):
            with time_step(t):
                s = step(xs[t], s, copies[t])
            total = total + (s[0] * directions[t]).sum()
        return total

    loss().backward()
    analytic = {n: np.stack([c[n].grad if c[n].grad is not None else np.zeros_like(c[n].data)
                             for c in copies]) for n in params}
    numeric = {n: np.zeros_like(analytic[n]) for n in params}
    with no_grad():
        for t in range(T):
            for n in params:
                flat = copies[t][n].data.reshape(-1)       # a view: perturbs step t's copy only
                out = numeric[n][t, ...].reshape(-1)       # a view (also for a scalar alpha)
                for k in range(flat.size):
                    original = flat[k]
                    flat[k] = original + eps
                    up = loss().item()
                    flat[k] = original - eps
                    down = loss().item()
                    flat[k] = original
                    out[k] = (up - down) / (2 * eps)
    report = BPTTGradcheckReport(type(model).__name__, list(params), analytic, numeric, directions,
                                 eps, atol, rtol)
    if raise_on_failure and not report.passed:
        raise GradcheckError(report)
    return report


def _unrolled_step(model):
    """step(x_t, state_tuple, weights_by_name) -> new state tuple, for a cell or a one-layer layer."""
    if isinstance(model, (RNN, LSTM, GRU)):
        if model.num_layers != 1 or model.bidirectional:
            raise ValueError(f"bptt_gradcheck: {type(model).__name__} has num_layers={model.num_layers}, "
                             f"bidirectional={model.bidirectional}; it checks one-layer, one-direction "
                             f"layers (check each layer separately)")
        return lambda x, s, w: model.step(x, s, tuple(w.get(f"{kind}_l0") for kind in LAYER_WEIGHT_KINDS))
    if isinstance(model, LSTMCell):
        return lambda x, s, w: lstm_step(x, s[0], s[1], *_cell_weights(w))
    if isinstance(model, GRUCell):
        return lambda x, s, w: (gru_step(x, s[0], *_cell_weights(w)),)
    if isinstance(model, LeakyRNNCell):
        return lambda x, s, w: (leaky_step(x, s[0], *_cell_weights(w), w.get("alpha", model.alpha)),)
    if isinstance(model, RNNCell):
        return lambda x, s, w: (rnn_step(x, s[0], *_cell_weights(w), model.nonlinearity),)
    raise TypeError(f"bptt_gradcheck: expected a cell (RNNCell, LeakyRNNCell, LSTMCell, GRUCell) or a "
                    f"one-layer RNN/LSTM/GRU, got {type(model).__name__}")


def _cell_weights(w):
    return tuple(w.get(kind) for kind in LAYER_WEIGHT_KINDS)


def _time_major_float64(model, x):
    data = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
    if getattr(model, "batch_first", False):
        data = data.transpose(1, 0, 2)
    if data.ndim != 3 or data.shape[2] != model.input_size:
        raise ValueError(f"bptt_gradcheck: {type(model).__name__} expected x of shape "
                         f"(T, B, {model.input_size}), got {data.shape}")
    return Tensor(data)


def _initial_state_float64(model, state, B):
    count = 2 if isinstance(model, LSTMCell) or getattr(model, "has_cell_state", False) else 1
    if state is None:
        return tuple(Tensor(np.zeros((B, model.hidden_size))) for _ in range(count))
    parts = tuple(state) if isinstance(state, (tuple, list)) else (state,)
    if len(parts) != count or any(np.shape(p.data if isinstance(p, Tensor) else p) != (B, model.hidden_size)
                                  for p in parts):
        raise ValueError(f"bptt_gradcheck: {type(model).__name__} expected an initial state of "
                         f"{count} array(s) of shape (B, H) = ({B}, {model.hidden_size})")
    return tuple(Tensor(np.asarray(p.data if isinstance(p, Tensor) else p, dtype=np.float64)) for p in parts)


def unrolled_rnn_loss(W_xh, W_hh, W_hy, h0, xs, targets):
    """A tanh RNN unrolled by hand from primitive ops, with an MSE loss at every step.

        h_t = tanh(x_t W_xh + h_{t-1} W_hh),   y_t = h_t W_hy,   L = sum_t mean((y_t - y*_t)^2)
    """
    h, loss = h0, 0.0
    for x_t, target_t in zip(xs, targets):
        h = (x_t @ W_xh + h @ W_hh).tanh()
        loss = loss + ((h @ W_hy - target_t) ** 2).mean()
    return loss
