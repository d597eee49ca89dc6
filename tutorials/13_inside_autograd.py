# %% [markdown]
# # Tutorial 13: inside the engine — `Function.apply`, `backward`, and a Function of your own
#
# Every tutorial so far called `.backward()` and trusted it. This one opens
# `tinygrad_rnn/autograd.py` and reads the engine itself: how one op records
# a node of the graph (`Function.apply`), in which order the nodes are
# visited (`topological_order`), and how gradients flow (`backward`). The
# code shown below is printed from the live objects with `inspect`, so it
# is always the code you are running. Then you write a new op and check it.

# %%
import inspect

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import autograd


def show(obj):
    """Print the source code of a function or class, as the engine has it now."""
    print(inspect.getsource(obj))


# %% [markdown]
# ## 1. An op is a Function: forward on arrays, backward on gradients
#
# An op subclasses `Function` and defines two static methods. `forward`
# gets NumPy arrays and returns the output array; it may save arrays on the
# context `ctx` for later. `backward` gets dL/d(output) and returns
# dL/d(input), one per input. Here is the engine's tanh:

# %%
show(tr.functions.Tanh)

# %% [markdown]
# c = tanh(a) and dc/da = 1 - c^2, so backward needs only the output c:
# forward saves it, backward reads it back from `ctx.saved`.
#
# ## 2. `Function.apply`: running an op and recording the node
#
# `Tensor.tanh()` calls `Tanh.apply(self)`. Read `apply` from top to bottom:
#
# 1. it checks that the inputs are floating-point Tensors of one dtype;
# 2. it decides whether the output needs a gradient at all: only when
#    gradients are enabled and some input requires one;
# 3. it creates a `Context` holding the op's class and its parents (the
#    input Tensors), the node of the graph;
# 4. it calls `forward` on the inputs' raw arrays (`t.data`), turning a
#    NumPy shape error into one naming the op and the shapes;
# 5. it wraps the result in a new Tensor whose `_ctx` is that Context: the
#    output remembers how it was made. (An op with several outputs returns a
#    tuple of Tensors sharing one Context.)

# %%
show(tr.Function.apply)

# %% [markdown]
# Nothing else records the graph: an RNN unrolled over T steps is simply T
# times the same few `apply` calls, each making nodes that point at the
# previous step's output.

# %%
x = tr.tensor(np.array([0.5, -1.0]), requires_grad=True)
y = (x * x).tanh()
print("y was made by", y._ctx.fn.__name__, "from", [p.shape for p in y._ctx.parents])
print("its parent was made by", y._ctx.parents[0]._ctx.fn.__name__)

# %% [markdown]
# ## 3. The order: every node after the nodes it was computed from
#
# Backward must finish the gradient of a tensor before passing it on, so it
# visits the graph in reverse *topological* order. The engine gets that
# order for free: an op's output is always created after its inputs, so
# sorting the nodes by creation number is a topological order.
# `topological_order` makes that list (viz draws it); `backward`, below,
# visits the same nodes newest first.

# %%
show(autograd.topological_order)
print([t._ctx.fn.__name__ if t._ctx else "leaf" for t in autograd.topological_order(y)])

# %% [markdown]
# ## 4. `backward`: the chain rule, once per node
#
# `y.backward()` seeds dL/dy = 1 and calls the engine's `backward`. Read it
# line by line:
#
# - `grads` maps each tensor to the gradient accumulated so far;
# - `waiting` is a heap (Python's `heapq`) of the tensors that have received
#   a gradient, keyed by minus their creation number: `heappop` always gives
#   the newest one, so the loop visits the graph in reverse topological order
#   without sorting it first, and only the part that gradients reach;
# - when a tensor comes out of the heap its gradient is complete, since every
#   user was created later and came out earlier;
# - a tensor that asked for `retain_grad()` adds its gradient to `.grad`, and
#   the leaves (no `_ctx`) add theirs at the end;
# - for an op, `ctx.fn.backward(ctx, g)` returns one gradient per parent;
# - each parent's gradient is *added* into `grads`: a tensor used twice (a
#   weight used at every time step) gets the sum of its uses, which is
#   exactly the "sum over time" of BPTT;
# - without `retain_graph`, the node's saved arrays are released as soon as
#   they have been used.

# %%
show(autograd.backward)

y.sum().backward()
print("dL/dx by the engine:", x.grad)
print("by hand, 2x (1 - tanh(x^2)^2):", 2 * x.data * (1 - np.tanh(x.data ** 2) ** 2))
assert np.allclose(x.grad, 2 * x.data * (1 - np.tanh(x.data ** 2) ** 2))

# %% [markdown]
# ## 5. Your turn: a new op, Softplus
#
# softplus(a) = log(1 + e^a), a smooth ReLU. Its derivative is the sigmoid:
# d softplus(a)/da = 1 / (1 + e^-a). Write `forward` and `backward` (for a
# large a, log(1 + e^a) overflows: `np.logaddexp(0, a)` computes it safely).

# %%
class Softplus(tr.Function):
    """c = log(1 + e^a);   dc/da = sigmoid(a)"""

    @staticmethod
    def forward(ctx, a):
        """The output array softplus(a), saving what backward needs."""
        # BEGIN SOLUTION
        ctx.save_for_backward(a)
        return np.logaddexp(0, a)
        # END SOLUTION

    @staticmethod
    def backward(ctx, g):
        """dL/da from dL/dc = g."""
        # BEGIN SOLUTION
        (a,) = ctx.saved
        return g / (1 + np.exp(-a))
        # END SOLUTION


# %% [markdown]
# ## 6. Check it: central differences in float64
#
# `tr.gradcheck` compares your backward with (L(a + eps) - L(a - eps)) / 2 eps
# for every element, in float64 (tutorial 3 explains why that is a fair
# judge). It raises, with a report, when they disagree.

# %%
a = tr.tensor(np.random.default_rng(0).standard_normal((3, 4)) * 3, requires_grad=True)
print(tr.gradcheck(lambda a: Softplus.apply(a), [a], names=["a"]))

# %% [markdown]
# And a wrong backward is caught: here the sigmoid's sign is flipped.

# %%
class SoftplusWrong(Softplus):
    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / (1 + np.exp(a))                   # the bug: sigmoid(-a)


report = tr.gradcheck(lambda a: SoftplusWrong.apply(a), [a], names=["a"], raise_on_failure=False)
print(report)
assert not report.passed

# %% [markdown]
# ## Exercises
#
# 1. Write `Mish`, c = a tanh(softplus(a)), as one Function (derive dc/da by
#    hand) and gradcheck it.
# 2. Write an op with two inputs, c = a * sigmoid(b), whose backward returns
#    a tuple (dL/da, dL/db). What does `apply` record as its parents?
# 3. In section 4, call `y.sum().backward()` twice. Read the error message and
#    find the line of `backward` that raises it.
