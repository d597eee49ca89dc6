"""Reusable Hypothesis strategies for the property tests.

Gradient checks compare backward() with central differences
(f(x + eps) - f(x - eps)) / 2eps, which is only meaningful where f is smooth
on [x - eps, x + eps]. So the array strategies here keep values away from
the points where an op has a kink or is undefined:

    abs, relu, clip   |x| > 0.1 and away from the clip bounds
    log, sqrt, x**p   x > 0.1
    max               all values at least 0.1 apart (no ties)

Everything is float64 and small (at most 4 elements per axis) so that a
gradcheck, which runs the function twice per input element, stays fast.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_SIDE = 4


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=MAX_SIDE):
    """Array shapes such as (3,), (2, 4) or (1, 3, 2)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def broadcastable_shapes(draw, min_dims=1, max_dims=3):
    """A pair (shape_a, shape_b) that NumPy broadcasts, e.g. ((2, 3), (3,)) or ((4, 1), (1, 2))."""
    a, b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=min_dims, max_dims=max_dims,
                                                  min_side=1, max_side=MAX_SIDE)).input_shapes
    return a, b


def _values(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def arrays(draw, shape, low=-2.0, high=2.0):
    """A float64 array of `shape` with values in [low, high]."""
    return draw(hnp.arrays(np.float64, shape, elements=_values(low, high)))


@st.composite
def away_from(draw, shape, points=(0.0,), margin=0.1, low=-2.0, high=2.0):
    """A float64 array in [low, high] with every value at least `margin` from each of `points`.

    away_from(shape) keeps |x| >= 0.1, clear of the kink of abs and relu at 0;
    away_from(shape, points=(-0.5, 0.5)) keeps clear of clip(x, -0.5, 0.5)'s corners.
    """
    values = draw(arrays(shape, low, high))
    for point in points:
        near = np.abs(values - point) < margin
        values[near] = point + np.where(values[near] >= point, margin, -margin)
    return values


def positive(shape, low=0.1, high=3.0):
    """A float64 array with values in [low, high] (log, sqrt and powers are smooth there)."""
    return arrays(shape, low, high)


@st.composite
def distinct(draw, shape, gap=0.1):
    """A float64 array whose values are pairwise at least `gap` apart (max has no ties).

    Built as a shuffled ladder -gap*n/2, ..., +gap*n/2 plus a small jitter.
    """
    size = int(np.prod(shape))
    order = draw(st.permutations(range(size)))
    jitter = draw(arrays((size,), 0.0, gap / 4))
    ladder = (np.array(order, dtype=np.float64) - size / 2) * gap * 3 + jitter
    return ladder.reshape(shape)


@st.composite
def array_and_axis(draw, values=arrays, min_dims=1, max_dims=3):
    """(array, axis, keepdims) for a reduction: axis is None, an int (maybe negative) or a tuple."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return draw(values(shape)), axis, draw(st.booleans())


@st.composite
def permutation_of(draw, ndim):
    """A tuple that reorders `ndim` axes."""
    return tuple(draw(st.permutations(range(ndim))))


@st.composite
def rnn_configs(draw, max_batch=2, max_steps=4, max_input=3, max_hidden=4):
    """A small RNN configuration (B, T, I, H): batch, time steps, input size, hidden size."""
    return (draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps)),
            draw(st.integers(1, max_input)), draw(st.integers(1, max_hidden)))
