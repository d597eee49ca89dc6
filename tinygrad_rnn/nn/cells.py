"""Recurrent cells: one time step, written from the equations.

Each cell's step is a plain function of Tensors (``rnn_step``, ``lstm_step``,
``gru_step``, ``leaky_step``) so that the cell modules here and the layers in
``recurrent.py`` share one definition. Parameters use PyTorch's names, shapes
and gate order, so PyTorch weights load directly:

    weight_ih (G*H, I),  weight_hh (G*H, H),  bias_ih (G*H,),  bias_hh (G*H,)

with G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n), all initialised
from U(-1/sqrt(H), 1/sqrt(H)).
"""
import numpy as np

from .. import functions as F
from ..fused import check_nonlinearity, gru_cell, lstm_cell, rnn_cell
from ..tensor import Tensor, zeros
from .module import (Module, check_flags, check_recurrent_sizes, init_bound, parameter_dtype,
                     uniform_parameter)


def affine(x, W, b):
    """x W^T + b, with b optional.   x (B, I), W (G*H, I) -> (B, G*H)"""
    y = x @ W.T
    return y + b if b is not None else y


def rnn_step(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh or relu"""
    pre = affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def leaky_step(x, h, W_ih, W_hh, b_ih, b_hh, alpha):
    """h_t = (1 - alpha) h_{t-1} + alpha tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    alpha in (0, 1] is the leak rate: alpha = 1 is the vanilla RNN; a small
    alpha keeps most of h_{t-1}, so gradients shrink more slowly over time.
    """
    return (1 - alpha) * h + alpha * rnn_step(x, h, W_ih, W_hh, b_ih, b_hh, "tanh")


def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr=None):
    """One LSTM step (PyTorch's equations and gate order i, f, g, o):

        i = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     input gate
        f = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)     forget gate
        g = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     candidate
        o = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)     output gate
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)          or, with a projection W_hr (P, H),  h_t = W_hr (o * tanh(c_t))

    The cell state c_t is the "gradient highway": dc_t/dc_{t-1} = f, with no
    weight matrix and no squashing in between.  x (B, I), h (B, P or H), c (B, H).
    """
    gates = affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)   # (B, 4H)
    i, f, g, o = F.split(gates, 4, axis=1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c_next = f * c + i * g
    h_next = o * c_next.tanh()
    return (h_next if W_hr is None else h_next @ W_hr.T), c_next


def gru_step(x, h, W_ih, W_hh, b_ih, b_hh, reset_after=True):
    """One GRU step (PyTorch's equations and gate order r, z, n):

        r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)     reset gate
        z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)     update gate
        n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))  candidate
        h_t = (1 - z) * n + z * h_{t-1}

    Note the reset gate multiplies (W_hn h + b_hn), the hidden part *after*
    its bias, as in PyTorch and cuDNN.

    reset_after=False is the GRU of the original paper (Cho et al. 2014) and
    Keras' reset_after=False: the reset gate scales h_{t-1} *before* the product,

        n = tanh(W_in x_t + b_in + W_hn (r * h_{t-1}) + b_hn)

    Keras' variant has one bias (3H,), added with the input part (b_in here)
    and no b_hn: with b_hh = 0 (what ``io.convert_weights`` gives) the two agree.
    """
    x_r, x_z, x_n = F.split(affine(x, W_ih, b_ih), 3, axis=1)   # each (B, H)
    if reset_after:
        h_r, h_z, h_n = F.split(affine(h, W_hh, b_hh), 3, axis=1)
    else:
        W_hrz, W_hn = W_hh[:2 * h.shape[1]], W_hh[2 * h.shape[1]:]
        b_hrz, b_hn = (None, None) if b_hh is None else (b_hh[:2 * h.shape[1]], b_hh[2 * h.shape[1]:])
        h_r, h_z = F.split(affine(h, W_hrz, b_hrz), 2, axis=1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh() if reset_after else (x_n + affine(r * h, W_hn, b_hn)).tanh()
    return (1 - z) * n + z * h


def state_or_hx(module, state, hx):
    """The initial state passed as the second argument or as ``hx=``, PyTorch's name for it."""
    if hx is None:
        return state
    if state is not None:
        raise TypeError(f"{type(module).__name__}: got the initial state twice, positionally and as hx=; "
                        f"pass it once")
    return hx


class RecurrentCell(Module):
    """Parameters and input checks shared by every cell.

    A cell also takes one unbatched sample, as PyTorch's cells do:
    x (I,), h (H,) -> h' (H,).
    """

    gates = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=None, device=None):
        name = type(self).__name__
        check_recurrent_sizes(name, input_size, hidden_size)
        check_flags(name, bias=bias)
        dtype = parameter_dtype(name, dtype, device)
        self.config = dict(input_size=input_size, hidden_size=hidden_size, bias=bias)
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = init_bound(hidden_size)
        G = self.gates
        self.weight_ih = uniform_parameter((G * hidden_size, input_size), bound, dtype)
        self.weight_hh = uniform_parameter((G * hidden_size, hidden_size), bound, dtype)
        self.bias_ih = uniform_parameter((G * hidden_size,), bound, dtype) if bias else None
        self.bias_hh = uniform_parameter((G * hidden_size,), bound, dtype) if bias else None

    def weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def _check_input(self, x):
        """Check x; True when it is one unbatched sample of shape (I,)."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expected a Tensor input of shape (B, {self.input_size}), "
                            f"got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name} expected input of shape (B, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}"
                             + ("; a cell takes one time step: loop over x[t] or use the layer"
                                if x.ndim == 3 else ""))
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from parameter dtype "
                            f"{self.weight_ih.dtype}; convert the input or call .to(dtype) on the cell")
        return x.ndim == 1

    def _unbatched(self, x, state):
        """Run one sample x (I,) as a batch of one: states (H,) -> (1, H), results back to (H,)."""
        name, H = type(self).__name__, self.hidden_size

        def batch_of_one(s, what):
            if s is None:
                return None
            if not isinstance(s, Tensor) or s.ndim != 1:
                got = s.shape if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{name}: for unbatched input of shape {x.shape} the state {what} must "
                                 f"be unbatched too, of shape ({H},), got {got}")
            return s.reshape(1, s.shape[0])

        if isinstance(state, (tuple, list)):
            state = tuple(batch_of_one(s, what) for s, what in zip(state, ("h", "c")))
        else:
            state = batch_of_one(state, "h")
        out = self.forward(x.reshape(1, x.shape[0]), state)
        if isinstance(out, tuple):
            return tuple(o.reshape(o.shape[1]) for o in out)
        return out.reshape(out.shape[1])

    def _state(self, state, x, what="h"):
        B, H = x.shape[0], self.hidden_size
        if state is None:
            return zeros(B, H, dtype=x.dtype)
        if state.shape != (B, H):
            raise ValueError(f"{type(self).__name__} expected {what} of shape (B, H) = ({B}, {H}), "
                             f"got {state.shape}")
        return state


class _FusableCell(RecurrentCell):
    """A cell with a fused kernel too: ``fused=True`` runs each step as one graph node."""

    def __init__(self, input_size, hidden_size, bias=True, fused=False, dtype=None, device=None):
        super().__init__(input_size, hidden_size, bias, dtype, device)
        check_flags(type(self).__name__, fused=fused)
        self.config["fused"] = self.fused = fused

    def _use_kernel(self):
        """Fused, unless H = 0: a cell with no state has nothing to fuse (and no kernel launch to make)."""
        return self.fused and self.hidden_size > 0


class RNNCell(_FusableCell):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).   x (B, I), h (B, H) -> h' (B, H)"""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", fused=False,
                 dtype=None, device=None):
        check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, fused, dtype, device)
        self.config["nonlinearity"] = self.nonlinearity = nonlinearity

    def forward(self, x, h=None, *, hx=None):
        h = state_or_hx(self, h, hx)
        if self._check_input(x):
            return self._unbatched(x, h)
        h = self._state(h, x)
        if self._use_kernel():
            return rnn_cell(x, h, *self.weights(), nonlinearity=self.nonlinearity)
        return rnn_step(x, h, *self.weights(), self.nonlinearity)


class LeakyRNNCell(RecurrentCell):
    """h' = (1 - alpha) h + alpha tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)

    alpha is fixed (a float) or learned (``learn_alpha=True``: a scalar
    parameter named ``alpha``, trained like any weight).
    """

    def __init__(self, input_size, hidden_size, alpha=0.5, learn_alpha=False, bias=True,
                 dtype=None, device=None):
        if not 0 < alpha <= 1:
            raise ValueError(f"LeakyRNNCell: alpha must be in (0, 1], got {alpha}")
        super().__init__(input_size, hidden_size, bias, dtype, device)
        self.config.update(alpha=alpha, learn_alpha=learn_alpha)
        self.alpha = (Tensor(np.array(alpha, dtype=self.weight_ih.dtype), requires_grad=True)
                      if learn_alpha else alpha)

    def forward(self, x, h=None, *, hx=None):
        h = state_or_hx(self, h, hx)
        if self._check_input(x):
            return self._unbatched(x, h)
        return leaky_step(x, self._state(h, x), *self.weights(), self.alpha)


class LSTMCell(_FusableCell):
    """(h', c') = LSTM step (see `lstm_step`).   x (B, I), h, c (B, H) -> h', c' (B, H)"""

    gates = 4

    def forward(self, x, state=None, *, hx=None):
        state = state_or_hx(self, state, hx)
        if state is not None and (not isinstance(state, (tuple, list)) or len(state) != 2):
            got = f"a {type(state).__name__} of {len(state)}" if isinstance(state, (tuple, list)) else \
                type(state).__name__
            raise ValueError(f"LSTMCell expected the state as a pair (h, c), each of shape (B, "
                             f"{self.hidden_size}), got {got}")
        if self._check_input(x):
            return self._unbatched(x, (None, None) if state is None else state)
        h, c = (None, None) if state is None else state
        h, c = self._state(h, x, "h"), self._state(c, x, "c")
        if self._use_kernel():
            return lstm_cell(x, h, c, *self.weights())
        return lstm_step(x, h, c, *self.weights())


class GRUCell(_FusableCell):
    """h' = GRU step (see `gru_step`; reset_after=False is the paper's/Keras' variant).
    x (B, I), h (B, H) -> h' (B, H)"""

    gates = 3

    def __init__(self, input_size, hidden_size, bias=True, fused=False, reset_after=True, **options):
        super().__init__(input_size, hidden_size, bias, fused, **options)
        check_flags("GRUCell", reset_after=reset_after)
        self.config["reset_after"] = self.reset_after = reset_after

    def forward(self, x, h=None, *, hx=None):
        h = state_or_hx(self, h, hx)
        if self._check_input(x):
            return self._unbatched(x, h)
        h = self._state(h, x)
        if self._use_kernel():
            return gru_cell(x, h, *self.weights(), reset_after=self.reset_after)
        return gru_step(x, h, *self.weights(), reset_after=self.reset_after)
