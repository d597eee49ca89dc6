"""Recurrent layers: a cell applied at every time step, stacked and bidirectional.

    output, h_n         = RNN(...)(x, h0=None, lengths=None)
    output, (h_n, c_n)  = LSTM(...)(x, (h0, c0)=None, lengths=None)

Shapes as in PyTorch (T time steps, B batch, I input size, H hidden size,
L layers, D = 2 if bidirectional else 1):

    x       (T, B, I)          or (B, T, I) with batch_first=True
    h0, c0  (L*D, B, H)
    output  (T, B, D*H)        (T, B, H) with merge="sum"; batch-first if x was
    h_n     (L*D, B, H)        final state of every layer and direction

One unbatched sequence works too, as in PyTorch: x (T, I), h0 and c0
(L*D, H) -> output (T, D*H), h_n (L*D, H) (batch_first does not apply; a
single sequence needs no lengths).

``dropout`` (the probability p in [0, 1] of zeroing an activation between
stacked layers, in training only) is read at every forward, so
``layer.dropout = 0.2`` after construction takes effect, as in PyTorch. With
one layer there is nothing between layers to drop: the constructor warns, as
PyTorch's does.

The flags ``bias``, ``batch_first``, ``bidirectional`` and ``fused`` must be
bools (``batch_first="False"`` would otherwise count as true). ``dtype=``
(np.float32 or np.float64) and ``device="cpu"`` are accepted as in PyTorch.
A sequence must have at least one step, and a layer at least one hidden unit
(PyTorch's rules; only a cell accepts ``hidden_size=0``).

With ``fused=False`` the layer loops over time in Python, calling the cell's
step function: the graph then holds every step, exactly the unrolled network
of the textbooks. With ``fused=True`` (the default) each layer and direction
is one node whose forward and backward run a whole-sequence kernel
(``tinygrad_rnn.fused``); both give the same numbers.

``lengths`` (B,) gives each sequence's true length in a padded batch: at steps
t >= lengths[b] the state of sequence b is carried unchanged, its output is 0,
and no gradient flows through those steps. A reverse direction reads each
sequence backwards from its own last valid step.
"""
import warnings

import numpy as np

from .. import functions as F
from ..autograd import time_step
from ..fused import check_lengths, check_nonlinearity, gru_sequence, lstm_sequence, rnn_sequence
from ..tensor import Tensor, zeros
from .cells import gru_step, lstm_step, rnn_step, state_or_hx
from .module import (Module, check_flags, check_recurrent_sizes, dropout, init_bound, parameter_dtype,
                     uniform_parameter)

MERGES = ("concat", "sum")


def reverse_sequences(x, lengths):
    """Reverse each sequence of x (T, B, ...) within its own length.

    Without lengths this is x[::-1]. With lengths, sequence b's steps
    0..L_b-1 are reversed and its padding stays where it is, so the reverse
    direction starts at the sequence's real last element, not at padding.
    """
    if lengths is None:
        return x[::-1]
    T, B = x.shape[0], x.shape[1]
    t = np.arange(T)[:, None]                       # (T, 1)
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)   # (T, B)
    return x[source, np.arange(B)[None, :]]


class RecurrentLayer(Module):
    """Parameters, input checks and the layer/direction loops shared by RNN, LSTM and GRU."""

    gates = 1
    has_cell_state = False
    proj_size = 0           # an LSTM with projections has h of proj_size units (see LSTM)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, merge="concat", fused=True, dtype=None, device=None):
        dtype = self._check_options(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                                    bidirectional, merge, fused, dtype, device)
        self.config = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                           bias=bias, batch_first=batch_first, dropout=dropout,
                           bidirectional=bidirectional, merge=merge, fused=fused)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.bidirectional, self.merge, self.fused = batch_first, bidirectional, merge, fused
        self.dropout = dropout
        self.num_directions = 2 if bidirectional else 1
        G, H = self.gates, hidden_size
        P = self.proj_size or H          # the width of h: H, or an LSTM's projection size
        bound = init_bound(H)
        merged = P * self.num_directions if merge == "concat" else P
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else merged
            for suffix in self._suffixes():
                setattr(self, f"weight_ih_l{layer}{suffix}",
                        uniform_parameter((G * H, layer_input), bound, dtype))
                setattr(self, f"weight_hh_l{layer}{suffix}", uniform_parameter((G * H, P), bound, dtype))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", uniform_parameter((G * H,), bound, dtype))
                    setattr(self, f"bias_hh_l{layer}{suffix}", uniform_parameter((G * H,), bound, dtype))
                if self.proj_size:
                    setattr(self, f"weight_hr_l{layer}{suffix}", uniform_parameter((P, H), bound, dtype))

    def _check_options(self, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                       bidirectional, merge, fused, dtype, device):
        """Check the constructor's arguments as PyTorch does; return the parameters' dtype."""
        name = type(self).__name__
        check_recurrent_sizes(name, input_size, hidden_size, num_layers=num_layers)
        if hidden_size == 0:   # as in PyTorch: only a cell may have no hidden units
            raise ValueError(f"{name}: hidden_size must be greater than zero, got 0 "
                             f"(a cell such as nn.{name}Cell(input_size, 0) accepts 0)")
        check_flags(name, bias=bias, batch_first=batch_first, bidirectional=bidirectional, fused=fused)
        if merge not in MERGES:
            raise ValueError(f"{name}: merge must be one of {MERGES}, got {merge!r}")
        _check_dropout(name, dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} acts between stacked layers, so with num_layers=1 "
                          f"it does nothing; use num_layers > 1 or nn.Dropout on the output", stacklevel=3)
        return parameter_dtype(name, dtype, device)

    def get_config(self):
        """The constructor arguments, with the dropout rate as it is now (it may be changed)."""
        return dict(self.config, dropout=self.dropout)

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    def layer_weights(self, layer, reverse=False):
        """(W_ih, W_hh, b_ih, b_hh) of one layer and direction (biases None without bias)."""
        suffix = f"l{layer}" + ("_reverse" if reverse else "")
        return tuple(getattr(self, f"{kind}_{suffix}", None)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    @property
    def all_weights(self):
        """The parameters of each layer and direction (l0, l0_reverse, l1, ...), as PyTorch's
        ``all_weights``: [weight_ih, weight_hh, bias_ih, bias_hh, and weight_hr with a projection]."""
        return [[w for w in self.layer_weights(layer, reverse) if w is not None]
                for layer in range(self.num_layers) for reverse in range(self.num_directions)]

    def flatten_parameters(self):
        """Nothing to do: PyTorch copies its weights into one block for cuDNN here; these layers
        keep each weight as an array of its own. Kept so that PyTorch code runs unchanged."""

    # ---- the forward pass ----------------------------------------------------
    def forward(self, x, h0=None, lengths=None, enforce_sorted=True, *, hx=None):
        h0 = state_or_hx(self, h0, hx)
        if isinstance(x, Tensor) and x.ndim == 2:
            return self._unbatched(x, h0, lengths)
        _check_dropout(type(self).__name__, self.dropout)
        x = self._time_major(x, h0, lengths)
        T, B = x.shape[0], x.shape[1]
        lengths = self._check_lengths(lengths, T, B, enforce_sorted)
        initial = self._initial_states(h0, B, x.dtype)   # per (layer, direction): (h,) or (h, c)
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                out, final = self._run_direction(layer_input, initial[k], self.layer_weights(layer, d == 1),
                                                 reverse=d == 1, lengths=lengths, layer=layer)
                outputs.append(out)
                finals.append(final)
            if self.merge == "concat":
                layer_input = outputs[0] if len(outputs) == 1 else F.concat(outputs, axis=2)
            else:
                layer_input = outputs[0] if len(outputs) == 1 else outputs[0] + outputs[1]
            if layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout, self.training)
        output = layer_input.transpose(1, 0, 2) if self.batch_first else layer_input
        h_n = F.stack([final[0] for final in finals], axis=0)
        if self.has_cell_state:
            return output, (h_n, F.stack([final[1] for final in finals], axis=0))
        return output, h_n

    def _unbatched(self, x, state, lengths):
        """One sequence x (T, I): run it as a batch of one, x (T, 1, I), h0 (L*D, 1, H), and drop
        that axis again: output (T, D*H), h_n (L*D, H)."""
        name = type(self).__name__
        if x.shape[1] != self.input_size:
            raise ValueError(f"{name} expected one unbatched sequence of shape (T, {self.input_size}), "
                             f"got {x.shape}; the last axis must be input_size={self.input_size}")
        if lengths is not None:
            raise ValueError(f"{name}: lengths= is for a padded batch; unbatched input {x.shape} is one "
                             f"sequence of length {x.shape[0]}, so pass no lengths (or add a batch axis)")
        parts = list(state) if self.has_cell_state and state is not None else [state]
        for label, part in zip(("h0", "c0"), parts):
            if part is not None and (not isinstance(part, Tensor) or part.ndim != 2):
                got = f"{part.ndim}-D shape {part.shape}" if isinstance(part, Tensor) else type(part).__name__
                raise ValueError(f"{name}: for unbatched 2-D input {x.shape}, {label} should also be 2-D, "
                                 f"(num_layers*num_directions, H), but got {got}")
        parts = [None if p is None else p.reshape(p.shape[0], 1, p.shape[1]) for p in parts]
        state = tuple(parts) if self.has_cell_state and state is not None else parts[0]
        T, I = x.shape
        output, final = self.forward(x.reshape((1, T, I) if self.batch_first else (T, 1, I)), state)
        output = output.reshape(T, output.shape[2])   # the batch axis of size 1 dropped, either layout
        if self.has_cell_state:
            return output, tuple(s.reshape(s.shape[0], s.shape[2]) for s in final)
        return output, final.reshape(final.shape[0], final.shape[2])

    def _run_direction(self, x, state, weights, reverse, lengths, layer=0):
        """One layer, one direction over the whole sequence: (out (T, B, H), final state)."""
        if reverse:
            x = reverse_sequences(x, lengths)
        if self.fused:
            out, state = self.fused_sequence(x, state, weights, lengths, where=(layer, reverse))
        else:
            out, state = self._unrolled_sequence(x, state, weights, lengths)
        if reverse:
            out = reverse_sequences(out, lengths)
        return out, state

    def _unrolled_sequence(self, x, state, weights, lengths):
        """The composite path: a Python loop over time, one small graph per step."""
        outputs = []
        for t in range(x.shape[0]):
            with time_step(t):
                new_state = self.step(x[t], state, weights)
                if lengths is None:
                    state, out_t = new_state, new_state[0]
                else:
                    running = (t < lengths)[:, None]        # (B, 1): which sequences are still going
                    state = tuple(F.where(running, new, old) for new, old in zip(new_state, state))
                    out_t = F.where(running, new_state[0], 0.0)
            outputs.append(out_t)
        return F.stack(outputs, axis=0), state

    # ---- checks ------------------------------------------------------------------
    def _time_major(self, x, state, lengths):
        name, I = type(self).__name__, self.input_size
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expected a Tensor input of shape {layout}, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[2] != I:
            expected = f"(B, T, {I})" if self.batch_first else f"(T, B, {I})"
            hint = f"; the last axis must be input_size={I}" if x.ndim == 3 else ""
            other = "" if x.ndim == 3 else f" (or (T, {I}) for one unbatched sequence)"
            raise ValueError(f"{name} expected input of shape {expected}{other}, got {x.shape}{hint}")
        if x.shape[1 if self.batch_first else 0] == 0:
            raise ValueError(f"{name}: Expected sequence length to be larger than 0 in RNN, got input of "
                             f"shape {x.shape} (T = 0 time steps)")
        if x.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from parameter dtype "
                            f"{self.weight_ih_l0.dtype}; convert the input or call .to(dtype) on the layer")
        batch_axis = 0 if self.batch_first else 1
        batch_size, other = x.shape[batch_axis], x.shape[1 - batch_axis]
        if other != batch_size and self._batch_of(state, lengths) == other:
            flip = "False" if self.batch_first else "True"
            raise ValueError(f"{name} expected input of shape {'(B, T, I)' if self.batch_first else '(T, B, I)'}"
                             f" with batch size B={self._batch_of(state, lengths)} (from the initial state "
                             f"or lengths), got {x.shape} — did you mean batch_first={flip}?")
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _batch_of(self, state, lengths):
        if lengths is not None:
            return len(np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths).reshape(-1))
        h0 = state[0] if isinstance(state, (tuple, list)) else state
        return h0.shape[1] if isinstance(h0, Tensor) and h0.ndim == 3 else None

    def _check_lengths(self, lengths, T, B, enforce_sorted):
        lengths = check_lengths(type(self).__name__, lengths, T, B)
        if lengths is not None and enforce_sorted and np.any(np.diff(lengths) > 0):
            raise ValueError(f"{type(self).__name__}: lengths {lengths.tolist()} are not sorted in decreasing "
                             f"order; sort the batch by length or pass enforce_sorted=False")
        return lengths

    def _initial_states(self, state, B, dtype):
        """Split h0 (and c0) of shape (L*D, B, H) into one state tuple per layer and direction.

        With an LSTM projection h0 is (L*D, B, P) and c0 stays (L*D, B, H).
        """
        name = type(self).__name__
        count = self.num_layers * self.num_directions
        h_units = self.proj_size or self.hidden_size
        shapes = [(count, B, h_units), (count, B, self.hidden_size)][:2 if self.has_cell_state else 1]
        if state is None:
            parts = [zeros(*shape, dtype=dtype) for shape in shapes]
        else:
            parts = list(state) if self.has_cell_state else [state]
            if self.has_cell_state and len(parts) != 2:
                raise ValueError(f"{name} expected the initial state as a tuple (h0, c0)")
            for label, part, shape, units in zip(("h0", "c0"), parts, shapes, ("P" if self.proj_size else "H", "H")):
                if not isinstance(part, Tensor) or part.shape != shape:
                    got = part.shape if isinstance(part, Tensor) else type(part).__name__
                    raise ValueError(f"{name} expected {label} of shape (num_layers*num_directions, B, {units}) "
                                     f"= {shape}, got {got}")
                if part.dtype != dtype:
                    raise TypeError(f"{name}: {label} dtype {part.dtype} differs from the input's {dtype}")
        return [tuple(part[k] for part in parts) for k in range(count)]


def _check_dropout(op, p):
    """PyTorch's rule: dropout is a number in [0, 1] (1 drops every activation between layers)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout should be a number in range [0, 1] (the probability of zeroing "
                         f"an activation between layers), got {p!r}")


class RNN(RecurrentLayer):
    """Elman RNN layer:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),  act = tanh or relu."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", proj_size=0, **options):
        check_nonlinearity("RNN", nonlinearity)
        _refuse_proj_size("RNN", proj_size)
        super().__init__(input_size, hidden_size, num_layers, **options)
        self.config["nonlinearity"] = self.nonlinearity = nonlinearity

    def step(self, x, state, weights):
        return (rnn_step(x, state[0], *weights, self.nonlinearity),)

    def fused_sequence(self, x, state, weights, lengths, where=None):
        out, h = rnn_sequence(x, state[0], *weights, lengths=lengths, nonlinearity=self.nonlinearity, where=where)
        return out, (h,)


class LSTM(RecurrentLayer):
    """LSTM layer (gates i, f, g, o as in `cells.lstm_step`); state is the pair (h, c).

    proj_size = P > 0 gives PyTorch's LSTM with projections: each layer and
    direction has one more weight, weight_hr_l{k} (P, H), and

        h_t = W_hr (o * tanh(c_t))          h_t has P units, c_t keeps H

    so weight_hh is (4H, P), a layer above the first reads P (or 2P
    bidirectional) features, output is (T, B, D*P), h0 and h_n are (L*D, B, P)
    and c0 and c_n (L*D, B, H). P must be smaller than H; 0 means no projection.
    """

    gates = 4
    has_cell_state = True

    def __init__(self, input_size, hidden_size, num_layers=1, proj_size=0, **options):
        _check_proj_size(proj_size, hidden_size)
        self.proj_size = proj_size               # read by RecurrentLayer.__init__ to size the weights
        super().__init__(input_size, hidden_size, num_layers, **options)
        self.config["proj_size"] = proj_size

    def layer_weights(self, layer, reverse=False):
        """(W_ih, W_hh, b_ih, b_hh), and W_hr (P, H) last with a projection."""
        weights = super().layer_weights(layer, reverse)
        if not self.proj_size:
            return weights
        return (*weights, getattr(self, f"weight_hr_l{layer}" + ("_reverse" if reverse else "")))

    def step(self, x, state, weights):
        return lstm_step(x, state[0], state[1], *weights)

    def fused_sequence(self, x, state, weights, lengths, where=None):
        W_ih, W_hh, b_ih, b_hh, *W_hr = weights
        out, h, c = lstm_sequence(x, state[0], state[1], W_ih, W_hh, b_ih, b_hh, lengths=lengths,
                                  W_hr=W_hr[0] if W_hr else None, where=where)
        return out, (h, c)


class GRU(RecurrentLayer):
    """GRU layer (gates r, z, n as in `cells.gru_step`).

    reset_after=True (the default) is PyTorch's and cuDNN's GRU; reset_after=False
    applies the reset gate to h_{t-1} before the recurrent product (the original
    GRU, Keras' reset_after=False), see `cells.gru_step`.
    """

    gates = 3

    def __init__(self, input_size, hidden_size, num_layers=1, reset_after=True, proj_size=0, **options):
        _refuse_proj_size("GRU", proj_size)
        if not isinstance(reset_after, bool):
            raise TypeError(f"GRU: reset_after should be of type bool (True: PyTorch's GRU, False: the reset "
                            f"gate before the recurrent product), got {reset_after!r}")
        super().__init__(input_size, hidden_size, num_layers, **options)
        self.config["reset_after"] = self.reset_after = reset_after

    def step(self, x, state, weights):
        return (gru_step(x, state[0], *weights, reset_after=self.reset_after),)

    def fused_sequence(self, x, state, weights, lengths, where=None):
        out, h = gru_sequence(x, state[0], *weights, lengths=lengths, reset_after=self.reset_after, where=where)
        return out, (h,)


def _check_proj_size(proj_size, hidden_size):
    if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or proj_size < 0:
        raise ValueError(f"LSTM: proj_size should be a positive integer or zero to disable projections, "
                         f"got {proj_size!r}")
    if proj_size >= hidden_size and proj_size > 0:
        raise ValueError(f"LSTM: proj_size has to be smaller than hidden_size (it projects h from H units "
                         f"down to P), got proj_size={proj_size}, hidden_size={hidden_size}")


def _refuse_proj_size(name, proj_size):
    if proj_size != 0:
        raise ValueError(f"{name}: proj_size is only supported by LSTM (PyTorch's LSTM with projections), "
                         f"got proj_size={proj_size!r}; use nn.LSTM(..., proj_size=P) or leave it 0")
