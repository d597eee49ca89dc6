"""Optimizers and gradient clipping, with PyTorch's exact update formulas.

An optimizer holds a list of parameters (Tensors with ``requires_grad=True``)
and, per parameter, whatever running averages its rule needs. The training
loop is always the same three lines::

    opt.zero_grad()          # forget the last gradients (p.grad = None)
    loss.backward()          # fill p.grad for every parameter
    opt.step()               # p <- p - (a step computed from p.grad)

Below, for one parameter p with gradient g at step t (t = 1, 2, ...), every
optimizer first adds weight decay (an L2 penalty wd/2 |p|^2):

    g <- g + wd * p

then applies its rule. The formulas are those of ``torch.optim`` (same order
of operations), so the same run gives the same numbers to float precision.
A parameter whose ``.grad`` is None is skipped: it is not updated and its
step count does not advance.

``state_dict()`` returns the hyper-parameters (JSON-able numbers) and the
per-parameter state (NumPy arrays plus an integer step count), so
``tr.io.save(model, path, extra={"optimizer": opt.state_dict()})`` stores a
run and ``opt.load_state_dict(...)`` resumes it with identical state.

Gradient clipping (for exploding gradients in RNNs):

    clip_grad_norm_(params, max_norm)   scale all gradients together so their
                                        joint norm is at most max_norm
    clip_grad_value_(params, v)         clamp every gradient element to [-v, v]
"""
import math

import numpy as np

from .autograd import bump_version
from .tensor import Tensor


# --------------------------------------------------------------------------
# The base class: parameters, state, zero_grad, state_dict
# --------------------------------------------------------------------------

class Optimizer:
    """Shared plumbing: the parameter list, per-parameter state and checkpoints.

    Subclasses set ``self.hyperparameters`` (a dict of numbers) and define
    ``update(p, g, state)``, which changes ``p.data`` in place and keeps its
    running arrays in the dict ``state``.
    """

    def __init__(self, params, **hyperparameters):
        self.params = _parameter_list(type(self).__name__, params)
        check_number(type(self).__name__, "learning rate lr", hyperparameters["lr"], low=0)
        check_number(type(self).__name__, "weight_decay", hyperparameters.get("weight_decay", 0), low=0)
        self.hyperparameters = hyperparameters
        self.state = [{} for _ in self.params]   # per parameter: "step" and running arrays

    def __getattr__(self, name):
        """Read hyper-parameters as attributes: ``opt.lr``."""
        hyperparameters = self.__dict__.get("hyperparameters", {})
        if name in hyperparameters:
            return hyperparameters[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        """Change hyper-parameters as attributes, e.g. a schedule: ``opt.lr = 1e-4``."""
        if name in self.__dict__.get("hyperparameters", {}):
            self._check_hyperparameters({name: value})
            self.hyperparameters[name] = value
        else:
            super().__setattr__(name, value)

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None (the next backward starts fresh)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place (frozen ones are skipped)."""
        for p, state in zip(self.params, self.state):
            if p.grad is None or not p.requires_grad:
                continue
            state["step"] = state.get("step", 0) + 1
            g = p.grad.astype(p.data.dtype, copy=False)
            if self.hyperparameters.get("weight_decay", 0) != 0:
                g = g + self.hyperparameters["weight_decay"] * p.data
            self.update(p, g, state)
            bump_version(p)   # graphs built before this step can no longer backpropagate

    def update(self, p, g, state):
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------
    def state_dict(self):
        """{"type", "hyperparameters", "state"}: numbers, step counts and copies of arrays.

        ``state`` maps the parameter's position (a string, "0", "1", ...) to its
        step count and running arrays; parameters never updated are absent.
        """
        return {
            "type": type(self).__name__,
            "hyperparameters": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in self.hyperparameters.items()},
            "state": {str(i): {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
                      for i, s in enumerate(self.state) if s},
        }

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by `state_dict`.

        Everything is checked first (the hyper-parameters by the constructor's
        own checks, every array's shape and dtype, every step count), then
        copied: a bad state changes nothing.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or state_dict.get("type") != name:
            saved_type = state_dict.get("type") if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: the state was saved from a "
                             f"{saved_type!r} optimizer, not {name!r}")
        hyperparameters, saved_states = state_dict.get("hyperparameters"), state_dict.get("state")
        if not isinstance(hyperparameters, dict) or not isinstance(saved_states, dict):
            raise ValueError(f"{name}.load_state_dict: 'hyperparameters' and 'state' must be dicts")
        unknown = sorted(set(hyperparameters) - set(self.hyperparameters))
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unknown hyper-parameters {unknown}; "
                             f"{name} has {sorted(self.hyperparameters)}")
        hyperparameters = {k: tuple(v) if isinstance(v, list) else v for k, v in hyperparameters.items()}
        self._check_hyperparameters(hyperparameters)
        states = dict(self._checked_state(key, saved) for key, saved in saved_states.items())
        self.hyperparameters.update(hyperparameters)
        self.state = [states.get(i, {}) for i in range(len(self.params))]

    def _check_hyperparameters(self, changes):
        """Run the constructor's checks on the hyper-parameters as `changes` would leave them."""
        type(self)(self.params, **{**self.hyperparameters, **changes})

    def _checked_state(self, key, saved):
        """One parameter's saved state, checked and converted: (position, {name: value})."""
        name = type(self).__name__
        index = int(key) if isinstance(key, str) and key.isdigit() else -1
        if not 0 <= index < len(self.params):
            raise ValueError(f"{name}.load_state_dict: state for parameter {key!r}, but this optimizer "
                             f"has {len(self.params)} parameters; was it saved for another model?")
        if not isinstance(saved, dict):
            raise ValueError(f"{name}.load_state_dict: the state of parameter {index} must be a dict")
        shape, state = self.params[index].shape, {}
        for k, v in saved.items():
            if isinstance(v, np.ndarray):
                if v.shape != shape or v.dtype.kind not in "iuf":
                    raise ValueError(f"{name}.load_state_dict: '{k}' of parameter {index} is {v.dtype} "
                                     f"{v.shape} but the parameter is a float array of shape {shape}")
                state[k] = np.array(v, dtype=self.params[index].dtype)
            elif isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                state[k] = v
            else:
                raise ValueError(f"{name}.load_state_dict: '{k}' of parameter {index} must be an array "
                                 f"or a step count >= 0, got {v!r:.60}")
        return index, state

    def __repr__(self):
        options = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {options})"


def _parameter_list(op, params):
    """Check and list parameters: a Tensor or an iterable of Tensors, at least one requiring grad."""
    params = [params] if isinstance(params, Tensor) else list(params)
    if not params:
        raise ValueError(f"{op}: got an empty parameter list; pass model.parameters() of a model "
                         f"that has parameters")
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameter {k} is a {type(p).__name__}, expected a Tensor "
                            f"(pass model.parameters(), not the model)")
    if not any(p.requires_grad for p in params):   # frozen ones are kept (and skipped), as in PyTorch
        raise ValueError(f"{op}: no parameter requires grad (parameter 0 of shape {params[0].shape} does not "
                         f"require grad, nor do the others), so nothing can be trained")
    for k, p in enumerate(params):
        if p._ctx is not None:
            raise ValueError(f"{op}: parameter {k} (shape {p.shape}) is not a leaf: it was computed by "
                             f"{p._ctx.fn.__name__} and gets no .grad, so it could not be trained; pass the "
                             f"tensors you created (model.parameters()), or .detach() it to make a new leaf")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{op}: the same parameter appears more than once in the list")
    return params


# --------------------------------------------------------------------------
# The update rules
# --------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    With momentum mu and dampening d, a velocity buffer b is kept:

        b_1 = g_1,    b_t = mu * b_{t-1} + (1 - d) * g_t
        step = g_t + mu * b_t   (nesterov)    or    step = b_t
        p <- p - lr * step

    momentum = 0 gives plain SGD: p <- p - lr * g.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        check_number("SGD", "momentum", momentum, low=0)
        check_number("SGD", "dampening", dampening, low=0, high=1)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def update(self, p, g, state):
        lr, mu = self.lr, self.momentum
        if mu != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= mu
                buffer += (1 - self.dampening) * g
            g = g + mu * state["momentum_buffer"] if self.nesterov else state["momentum_buffer"]
        p.data -= lr * g


class Adagrad(Optimizer):
    """Adagrad: a per-element learning rate that shrinks with the gradients seen so far.

        s_t = s_{t-1} + g_t^2                     (s_0 = initial_accumulator_value)
        p <- p - lr_t * g_t / (sqrt(s_t) + eps),  lr_t = lr / (1 + (t - 1) * lr_decay)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10):
        for name, value in (("lr_decay", lr_decay), ("initial_accumulator_value", initial_accumulator_value),
                            ("eps", eps)):
            check_number("Adagrad", name, value, low=0)
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def update(self, p, g, state):
        if "sum" not in state:
            state["sum"] = np.full_like(p.data, self.initial_accumulator_value)
        lr_t = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        state["sum"] += g * g
        p.data -= lr_t * (g / (np.sqrt(state["sum"]) + self.eps))


class RMSprop(Optimizer):
    """RMSprop: divide by a running root-mean-square of the gradients.

        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
        centered:  m_t = alpha * m_{t-1} + (1 - alpha) * g_t,   d_t = sqrt(v_t - m_t^2) + eps
        else:      d_t = sqrt(v_t) + eps
        momentum mu > 0:  b_t = mu * b_{t-1} + g_t / d_t,   p <- p - lr * b_t
        else:             p <- p - lr * g_t / d_t
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        check_number("RMSprop", "alpha", alpha, low=0, high=1)
        check_number("RMSprop", "eps", eps, low=0)
        check_number("RMSprop", "momentum", momentum, low=0)
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def update(self, p, g, state):
        alpha = self.alpha
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p.data)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p.data)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (g - grad_avg)
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denominator = np.sqrt(square_avg) + self.eps
        if self.momentum > 0:
            buffer = state["momentum_buffer"]
            buffer *= self.momentum
            buffer += g / denominator
            p.data -= self.lr * buffer
        else:
            p.data -= self.lr * (g / denominator)


class Adam(Optimizer):
    """Adam: momentum on the gradient, RMSprop on its scale, both bias-corrected.

        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t          first moment
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2        second moment
        p <- p - (lr / (1 - beta1^t)) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    (m_0 = v_0 = 0, so without the corrections 1 - beta^t the first steps
    would be far too small.) weight_decay is the L2 penalty added to g, as in
    torch.optim.Adam (not AdamW's decoupled decay).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"Adam: betas must be two numbers in [0, 1) such as (0.9, 0.999), got {betas!r}")
        betas = tuple(betas)
        for name, beta in zip(("betas[0]", "betas[1]"), betas):
            check_number("Adam", name, beta, low=0, high=1, high_included=False)
        check_number("Adam", "eps", eps, low=0)
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, p, g, state):
        beta1, beta2 = self.betas
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        step_size = self.lr / (1 - beta1 ** t)
        denominator = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        p.data -= step_size * (m / denominator)


# --------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------

def clip_grad_norm_(params, max_norm, norm_type=2.0):
    """Scale all gradients together so their joint norm is at most `max_norm`; return that norm.

        total_norm = ( sum over parameters p of ||g_p||^q )^(1/q)     q = norm_type
                     (q = inf: the largest |g| of any element)
        if max_norm / (total_norm + 1e-6) < 1:   g_p <- g_p * max_norm / (total_norm + 1e-6)

    The direction of the full gradient is kept; only its length is capped.
    Returns total_norm before clipping (a float: log it to watch for
    exploding gradients). Parameters whose .grad is None are skipped.
    """
    check_number("clip_grad_norm_", "max_norm", max_norm, low=0)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.number)) \
            or not norm_type > 0:   # `not >` also refuses NaN
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type!r}")
    grads = [p.grad for p in _tensor_list("clip_grad_norm_", params)
             if p.grad is not None and p.requires_grad]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total_norm = max(float(np.max(np.abs(g), initial=0.0)) for g in grads)
    else:
        norms = np.array([np.linalg.norm(g.reshape(-1), ord=norm_type) for g in grads], dtype=grads[0].dtype)
        total_norm = float(np.linalg.norm(norms, ord=norm_type))
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1:
        for g in grads:
            g *= np.asarray(scale, dtype=g.dtype)
    return total_norm


def clip_grad_value_(params, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place (None grads skipped)."""
    check_number("clip_grad_value_", "clip_value", clip_value, low=0)
    for p in _tensor_list("clip_grad_value_", params):
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)


def check_number(op, name, value, low=None, high=None, low_included=True, high_included=True):
    """Refuse a hyper-parameter that is not a finite real number in [low, high]
    (an open end with low_included / high_included False).

    NaN and Inf are refused everywhere: a NaN learning rate or clip norm
    would silently turn every weight (or no gradient) into NaN.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{op}: {name} must be a finite number, got {value}")
    too_low = low is not None and (value < low if low_included else value <= low)
    too_high = high is not None and (value > high if high_included else value >= high)
    if too_low or too_high:
        if high is None:
            bounds = f"{'>=' if low_included else '>'} {low}"
        else:
            bounds = f"in {'[' if low_included else '('}{low}, {high}{']' if high_included else ')'}"
        raise ValueError(f"{op}: {name} must be {bounds}, got {value}")
    return value


def _tensor_list(op, params):
    params = [params] if isinstance(params, Tensor) else list(params)
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: item {k} is a {type(p).__name__}, expected a Tensor "
                            f"(pass model.parameters())")
    return params
