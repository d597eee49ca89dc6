"""Every primitive op: forward equals NumPy, backward equals central differences.

Each property test draws shapes and float64 values with Hypothesis (see
strategies.py), runs the op forward and compares with the NumPy expression,
then gradchecks it: the analytic gradient from backward() must match
(L(x + eps) - L(x - eps)) / 2eps for every input element.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr
from strategies import (away_from, array_and_axis, arrays, broadcastable_shapes, distinct,
                        permutation_of, positive, shapes)


def check_op(op, numpy_op, *arrays):
    """op(*tensors) equals numpy_op(*arrays) forward, and passes gradcheck."""
    out = op(*[tr.Tensor(a) for a in arrays])
    np.testing.assert_allclose(out.data, numpy_op(*arrays), rtol=1e-10, atol=1e-12)
    assert out.shape == np.shape(numpy_op(*arrays))
    assert tr.gradcheck(op, list(arrays)).passed


# --------------------------------------------------------------------------
# Arithmetic with broadcasting
# --------------------------------------------------------------------------

BINARY_OPS = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
}


@pytest.mark.parametrize("name", BINARY_OPS)
@given(data=st.data())
def test_binary_op_with_broadcasting(name, data):
    op, numpy_op = BINARY_OPS[name]
    shape_a, shape_b = data.draw(broadcastable_shapes())
    check_op(op, numpy_op, data.draw(arrays(shape_a)), data.draw(arrays(shape_b)))


@given(data=st.data())
def test_div_with_broadcasting(data):
    shape_a, shape_b = data.draw(broadcastable_shapes())
    check_op(lambda a, b: a / b, np.divide,
             data.draw(arrays(shape_a)), data.draw(away_from(shape_b, margin=0.5)))


@given(data=st.data())
def test_pow_tensor_exponent(data):
    """a ** b with a > 0: both the base and the exponent get gradients."""
    shape_a, shape_b = data.draw(broadcastable_shapes())
    check_op(lambda a, b: a ** b, np.power, data.draw(positive(shape_a, 0.5)), data.draw(arrays(shape_b)))


@given(base=shapes().flatmap(positive), exponent=st.floats(-2.0, 3.0))
def test_pow_scalar_exponent(base, exponent):
    check_op(lambda a: a ** exponent, lambda a: a ** exponent, base)


@given(base=shapes().flatmap(arrays), exponent=st.sampled_from([2, 3]))
def test_pow_integer_exponent_of_negative_base(base, exponent):
    check_op(lambda a: a ** exponent, lambda a: a ** exponent, base)


@given(x=shapes().flatmap(arrays))
def test_neg(x):
    check_op(lambda a: -a, np.negative, x)


@pytest.mark.parametrize("python_op", [lambda x: 2.0 - x, lambda x: 3.0 / x, lambda x: 2.0 ** x,
                                       lambda x: 1.5 + x, lambda x: 0.5 * x],
                         ids=["rsub", "rtruediv", "rpow", "radd", "rmul"])
def test_reflected_operators_with_a_number_on_the_left(python_op):
    x = np.array([0.7, 1.3, 2.1])
    check_op(python_op, python_op, x)


def test_broadcast_bias_gradient_is_the_sum_over_the_batch():
    """b of shape (H,) is added to every row of a (B, H) batch: db = sum over rows of g."""
    x = tr.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    b = tr.Tensor(np.zeros(2), requires_grad=True)
    g = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (x + b).backward(g)
    np.testing.assert_array_equal(b.grad, [9.0, 12.0])
    np.testing.assert_array_equal(x.grad, g)


@pytest.mark.parametrize("grad_shape,shape", [((1, 4), (4,)), ((1, 1, 3), (3,)), ((1, 3, 1), (3, 1)),
                                                ((1, 1), ()), ((1, 0), (0,)), ((5, 4), (4,)), ((3, 4), (1, 4))])
def test_unbroadcast_sums_the_broadcast_axes(grad_shape, shape):
    """A batch of one is only reshaped (nothing to add up); a real batch is summed over. The oracle is
    NumPy's broadcasting itself: entry i of the gradient is the sum of g where x[i] was copied to."""
    from tinygrad_rnn.functions import unbroadcast
    g = np.arange(np.prod(grad_shape), dtype=np.float64).reshape(grad_shape)
    want = np.zeros(shape)
    for i in np.ndindex(*shape):
        copied_to = np.broadcast_to(np.arange(np.prod(shape)).reshape(shape) == np.ravel_multi_index(i, shape),
                                    grad_shape)
        want[i] = g[copied_to].sum()
    got = unbroadcast(g, shape)
    assert got.shape == shape
    np.testing.assert_array_equal(got, want)


def test_bias_gradient_of_a_batch_of_one_is_its_own_array():
    """b + x with x (1, H): b.grad holds g's values, in memory of its own (not a view of g)."""
    x = tr.Tensor(np.ones((1, 3)), requires_grad=True)
    b = tr.Tensor(np.zeros(3), requires_grad=True)
    g = np.array([[1.0, 2.0, 3.0]])
    (x + b).backward(g)
    np.testing.assert_array_equal(b.grad, [1.0, 2.0, 3.0])
    assert b.grad.shape == (3,) and not np.shares_memory(b.grad, g)


def test_broadcast_of_size_one_axis_keeps_its_shape():
    a = tr.Tensor(np.ones((3, 1)), requires_grad=True)
    b = tr.Tensor(np.ones((1, 4)), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4)
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad, np.full((1, 4), 3.0))


# --------------------------------------------------------------------------
# Matrix multiplication
# --------------------------------------------------------------------------

@st.composite
def matmul_shapes(draw):
    """Shape pairs np.matmul accepts: 2-D, batched, broadcast batch, and 1-D on either side."""
    n, k, m, batch = (draw(st.integers(1, 4)) for _ in range(4))
    return draw(st.sampled_from([
        ((n, k), (k, m)),
        ((batch, n, k), (k, m)),
        ((batch, n, k), (batch, k, m)),
        ((1, n, k), (batch, k, m)),
        ((k,), (k, m)),
        ((n, k), (k,)),
        ((k,), (k,)),
        ((k,), (batch, k, m)),
    ]))


@given(data=st.data())
def test_matmul(data):
    shape_a, shape_b = data.draw(matmul_shapes())
    check_op(lambda x, y: x @ y, np.matmul, data.draw(arrays(shape_a)), data.draw(arrays(shape_b)))


def test_batched_matmul_broadcasts_a_shared_matrix():
    """(B, N, K) @ (K, M): the shared right matrix gets the sum of the per-batch gradients."""
    rng = np.random.default_rng(0)
    check_op(lambda x, y: x @ y, np.matmul, rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2)))


# --------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY_OPS = {
    "exp": (lambda x: x.exp(), np.exp, arrays),
    "log": (lambda x: x.log(), np.log, positive),
    "tanh": (lambda x: x.tanh(), np.tanh, arrays),
    "sigmoid": (lambda x: x.sigmoid(), _sigmoid, lambda shape: arrays(shape, -6.0, 6.0)),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), away_from),
    "abs": (lambda x: x.abs(), np.abs, away_from),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, positive),
    "clip": (lambda x: x.clip(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
             lambda shape: away_from(shape, points=(-0.5, 0.5))),
}


@pytest.mark.parametrize("name", UNARY_OPS)
@given(data=st.data())
def test_elementwise(name, data):
    op, numpy_op, values = UNARY_OPS[name]
    check_op(op, numpy_op, data.draw(shapes().flatmap(values)))


@pytest.mark.parametrize("low, high", [(None, 0.5), (-0.5, None)])
def test_clip_with_one_bound(low, high):
    x = np.array([-1.0, -0.2, 0.3, 1.0])
    check_op(lambda a: a.clip(low, high), lambda a: np.clip(a, low, high), x)


def test_kinked_ops_pass_zero_gradient_on_the_flat_side():
    x = tr.Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    (x.relu() + x.clip(-0.5, 0.5)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])


# --------------------------------------------------------------------------
# Reductions and normalisers
# --------------------------------------------------------------------------

REDUCTIONS = {
    "sum": (lambda x, axis, keep: x.sum(axis=axis, keepdims=keep), np.sum, arrays),
    "mean": (lambda x, axis, keep: x.mean(axis=axis, keepdims=keep), np.mean, arrays),
    "max": (lambda x, axis, keep: x.max(axis=axis, keepdims=keep), np.max, distinct),
    "logsumexp": (lambda x, axis, keep: x.logsumexp(axis=axis, keepdims=keep),
                  lambda a, axis, keepdims: np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims)),
                  arrays),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reduction(name, data):
    op, numpy_op, values = REDUCTIONS[name]
    x, axis, keepdims = data.draw(array_and_axis(values=values))
    check_op(lambda a: op(a, axis, keepdims), lambda a: numpy_op(a, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("grad,shape", [
    (np.asarray(2.0), (3, 4)), (np.asarray(2.0), ()), (np.asarray(1.0), (0,)), (np.ones((1, 4)), (3, 4)),
    (np.arange(3.0).reshape(3, 1), (3, 5)), (np.zeros((1, 0)), (3, 0)), (np.zeros((0, 1)), (0, 5)),
    (np.ones((2, 1, 3))[:, :, ::2], (2, 4, 2)),                       # not contiguous
    (np.broadcast_to(np.asarray(1.5), (3, 1)), (3, 7)),               # itself a stride-0 view (a sum of a sum)
    (np.float32(3).reshape(()), (2, 2))])
def test_a_reductions_gradient_is_a_read_only_view_as_broadcasting_makes_it(grad, shape):
    """The gradient of sum/mean repeats g over the reduced axes: the same array as np.broadcast_to
    makes (values, shape, dtype), read-only, and holding no copy of a big input's size."""
    from tinygrad_rnn.functions import _repeated
    got, want = _repeated(grad, shape), np.broadcast_to(grad, shape)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable
    assert got.size == 0 or got.base is not None and got.base.nbytes <= grad.nbytes


def test_max_splits_the_gradient_between_ties():
    x = tr.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])


def _softmax_reference(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@st.composite
def array_and_int_axis(draw):
    shape = draw(shapes())
    return draw(arrays(shape, -3.0, 3.0)), draw(st.integers(-len(shape), len(shape) - 1))


@given(x_axis=array_and_int_axis())
def test_softmax(x_axis):
    x, axis = x_axis
    check_op(lambda a: a.softmax(axis=axis), lambda a: _softmax_reference(a, axis), x)


@given(x_axis=array_and_int_axis())
def test_log_softmax(x_axis):
    x, axis = x_axis
    check_op(lambda a: a.log_softmax(axis=axis), lambda a: np.log(_softmax_reference(a, axis)), x)


def test_softmax_rows_sum_to_one():
    s = tr.Tensor(np.random.default_rng(0).standard_normal((3, 5))).softmax(axis=1)
    np.testing.assert_allclose(s.data.sum(axis=1), np.ones(3))


HUGE = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1003.0]])
SHIFTED = HUGE - HUGE.max(axis=1, keepdims=True)  # same softmax, small numbers: the naive formula is exact


@pytest.mark.parametrize("name, op, naive_reference", [
    ("softmax", lambda x: x.softmax(axis=1),
     np.exp(SHIFTED) / np.exp(SHIFTED).sum(axis=1, keepdims=True)),
    ("log_softmax", lambda x: x.log_softmax(axis=1),
     SHIFTED - np.log(np.exp(SHIFTED).sum(axis=1, keepdims=True))),
    ("logsumexp", lambda x: x.logsumexp(axis=1),
     HUGE.max(axis=1) + np.log(np.exp(SHIFTED).sum(axis=1))),
])
def test_normalisers_are_stable_for_huge_inputs(name, op, naive_reference):
    """exp(1000) overflows; the max-shifted forms must still be finite and exact."""
    x = tr.Tensor(HUGE, requires_grad=True)
    out = op(x)
    np.testing.assert_allclose(out.data, naive_reference, rtol=1e-12)
    out.sum().backward()
    assert np.all(np.isfinite(x.grad)), f"{name}: non-finite gradient {x.grad}"
    assert tr.gradcheck(op, [HUGE]).passed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_exact_and_quiet_at_huge_inputs(dtype):
    """sigmoid(-1000) = e^-1000 / (1 + e^-1000) underflows to 0 and sigmoid(1000) is 1, with no
    overflow warning (e^1000 is never formed), in the input's dtype; tiny values keep their digits."""
    a = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype)
    x = tr.Tensor(a, requires_grad=True)
    with np.errstate(all="raise"):
        out = x.sigmoid()
        out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype
    assert out.data[0] == 0 and out.data[2] == 0.5 and out.data[-1] == 1
    np.testing.assert_allclose(out.data[1], np.exp(-50.0), rtol=1e-6 if dtype == np.float32 else 1e-15)
    np.testing.assert_array_equal(x.grad[[0, -1]], [0, 0])


# --------------------------------------------------------------------------
# Shapes and indexing
# --------------------------------------------------------------------------

@given(x=shapes().flatmap(arrays))
def test_reshape(x):
    check_op(lambda a: a.reshape(x.shape[::-1]), lambda a: a.reshape(x.shape[::-1]), x)
    check_op(lambda a: a.reshape(-1, 1), lambda a: a.reshape(-1, 1), x)


@given(data=st.data())
def test_permute(data):
    x = data.draw(shapes().flatmap(arrays))
    axes = data.draw(permutation_of(x.ndim))
    check_op(lambda a: a.permute(axes), lambda a: a.transpose(axes), x)


@given(x=shapes(min_dims=2, max_dims=2).flatmap(arrays))
def test_transpose_property(x):
    check_op(lambda a: a.T, lambda a: a.T, x)


INDICES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, None),
    "step slice": slice(None, None, 2),
    "int then slice": (0, slice(0, 2)),
    "integer array": np.array([2, 0]),
    "repeated integer array": np.array([1, 1, 0, 1]),
    "list with repeats": [0, 0, 2],
    "array pair": (np.array([0, 1, 1]), np.array([2, 2, 0])),
    "slice then array": (slice(None), np.array([0, 0, 1])),
    "boolean mask": np.array([True, False, True]),
}


@pytest.mark.parametrize("name", INDICES)
def test_getitem(name):
    index = INDICES[name]
    x = np.random.default_rng(0).standard_normal((3, 3))
    check_op(lambda a: a[index], lambda a: a[index], x)


def test_repeated_indices_accumulate_their_gradients():
    """An embedding lookup of a repeated word: row 1 is picked three times, so its grad is 3."""
    table = tr.Tensor(np.zeros((3, 2)), requires_grad=True)
    table[np.array([1, 1, 0, 1])].sum().backward()
    np.testing.assert_array_equal(table.grad, [[1, 1], [3, 3], [0, 0]])


def test_tensor_index_is_accepted():
    x = tr.Tensor(np.arange(4.0), requires_grad=True)
    x[tr.tensor([3, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 0, 2])


@given(data=st.data())
def test_concat(data):
    """One to four pieces of 1-3 axes, joined on any axis (negative too): each gets its slice of g."""
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(data.draw(st.integers(1, 4))):
        piece_shape = list(shape)
        piece_shape[axis] = data.draw(st.integers(1, 3))
        pieces.append(data.draw(arrays(tuple(piece_shape))))
    check_op(lambda *xs: tr.concat(xs, axis=axis), lambda *xs: np.concatenate(xs, axis=axis), *pieces)


@given(data=st.data())
def test_iteration(data):
    """for row in x (one Unbind node): row k scaled by k + 1, stacked again; every row's gradient
    comes back to its place."""
    a = data.draw(arrays(data.draw(shapes(min_dims=1, max_dims=3))))
    weights = np.arange(1.0, len(a) + 1).reshape((-1,) + (1,) * (a.ndim - 1))
    check_op(lambda x: tr.stack([row * (k + 1.0) for k, row in enumerate(x)]), lambda x: x * weights, a)


@given(data=st.data())
def test_stack(data):
    shape = data.draw(shapes(max_dims=2))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    a, b, c = (data.draw(arrays(shape)) for _ in range(3))
    check_op(lambda *xs: tr.stack(xs, axis=axis), lambda *xs: np.stack(xs, axis=axis), a, b, c)


@pytest.mark.parametrize("sections, axis", [(2, 0), ([1, 3], 1), ([2, 1, 1], -1)])
def test_split(sections, axis):
    x = np.random.default_rng(0).standard_normal((4, 4))
    pieces = tr.split(tr.Tensor(x), sections, axis=axis)
    expected = np.split(x, sections if isinstance(sections, int) else np.cumsum(sections)[:-1], axis=axis)
    for piece, want in zip(pieces, expected):
        np.testing.assert_array_equal(piece.data, want)
    weights = [float(k + 1) for k in range(len(pieces))]  # each piece weighted differently
    assert tr.gradcheck(lambda t: sum(w * p.sum() for w, p in zip(weights, tr.split(t, sections, axis=axis))),
                        [x]).passed
    assert tr.gradcheck(lambda t: (tr.split(t, sections, axis=axis)[-1] ** 2).sum(), [x]).passed   # one piece used
    assert len({id(p._ctx) for p in tr.split(tr.Tensor(x, requires_grad=True), sections, axis=axis)}) == 1  # one node


@given(data=st.data())
def test_where(data):
    shape_a, shape_b = data.draw(broadcastable_shapes())
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    condition = data.draw(arrays(np.broadcast_shapes(shape_a, shape_b))) > 0
    check_op(lambda x, y: tr.where(condition, x, y), lambda x, y: np.where(condition, x, y), a, b)


def test_where_with_a_number():
    x = np.array([-1.0, 2.0, -3.0])
    check_op(lambda a: tr.where(x > 0, a, 0.0), lambda a: np.where(a > 0, a, 0.0), x)


# --------------------------------------------------------------------------
# PyTorch as an oracle (skipped when torch is not installed)
# --------------------------------------------------------------------------

TORCH_CASES = {
    "matmul+tanh": (lambda x, w: (x @ w).tanh(), lambda x, w: (x @ w).tanh(), [(3, 4), (4, 2)]),
    "sigmoid*exp": (lambda x, y: x.sigmoid() * y.exp(), lambda x, y: x.sigmoid() * y.exp(), [(2, 3), (3,)]),
    "log_softmax": (lambda x: x.log_softmax(axis=-1), lambda x: x.log_softmax(dim=-1), [(3, 5)]),
    "softmax": (lambda x: x.softmax(axis=0), lambda x: x.softmax(dim=0), [(3, 5)]),
    "logsumexp": (lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(dim=1), [(3, 5)]),
    "max(axis)": (lambda x: x.max(axis=1), lambda x: x.max(dim=1).values, [(3, 5)]),
    "mean/div": (lambda x, y: (x / y).mean(axis=0), lambda x, y: (x / y).mean(dim=0), [(3, 4), (4,)]),
    "index+stack": (lambda x: tr.stack([x[2], x[0], x[2]]), lambda x: __import__("torch").stack([x[2], x[0], x[2]]),
                    [(3, 4)]),
}


@pytest.mark.parametrize("name", TORCH_CASES)
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours_fn, torch_fn, input_shapes = TORCH_CASES[name]
    rng = np.random.default_rng(0)
    arrays_ = [rng.uniform(0.5, 2.0, shape) for shape in input_shapes]  # positive: safe for /
    ours = [tr.Tensor(a, requires_grad=True) for a in arrays_]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays_]
    out, ref = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------
# PyTorch's names and Tensor semantics (issue 13 item 2, issue 14)
# --------------------------------------------------------------------------

def test_size_is_numpys_count_and_pytorchs_shape():
    x = tr.zeros(3, 4)
    assert x.size == 12 and x.size + 1 == 13          # NumPy: an int
    assert x.size() == (3, 4) and x.size(1) == 4 and x.size(-2) == 3   # PyTorch: a call
    assert x.numel() == 12 and x.dim() == 2
    with pytest.raises(IndexError, match=r"dim 2 is out of range for a tensor of shape \(3, 4\)"):
        x.size(2)


def test_flatten_view_and_reshape_with_minus_one():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = tr.Tensor(a)
    assert x.flatten().shape == (24,)
    assert x.flatten(1).shape == (2, 12)
    assert x.flatten(0, 1).shape == (6, 4)
    assert x.view(-1, 4).shape == (6, 4)
    np.testing.assert_array_equal(x.reshape(4, -1).data, a.reshape(4, 6))
    assert tr.gradcheck(lambda t: t.flatten(1) * t.view(2, -1), [a]).passed


def test_clone_copies_and_is_differentiable():
    a = np.array([1.0, -2.0, 3.0])
    x = tr.Tensor(a)
    y = x.clone()
    assert y.data is not x.data and not np.shares_memory(y.data, x.data)
    assert tr.gradcheck(lambda t: t.clone() * t, [a]).passed


def test_to_between_floats_is_differentiable():
    x = tr.randn(3, requires_grad=True)
    y = x.to(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-6)   # d(sum y^2)/dx = 2x


def test_to_refuses_unsupported_dtypes():
    x = tr.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="Tensor.to: dtype float16 is not supported.*np.float32"):
        x.to(np.float16)
    with pytest.raises(TypeError, match=r"requires grad, and int32 cannot carry a gradient.*detach"):
        x.to(np.int32)
    assert x.detach().to(np.int32).dtype == np.int32
    assert x.to("cpu") is x and x.to(device="cpu") is x
    with pytest.raises(ValueError, match=r"device='cuda:0' is not supported.*tr.set_backend\('cuda'\)"):
        x.to("cuda:0")
    with pytest.raises(TypeError, match="Tensor: dtype float16 is not supported"):
        tr.tensor([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="Tensor: dtype complex128 is not supported"):
        tr.Tensor(np.zeros(2, dtype=complex))


def test_python_numbers_from_one_element_tensors():
    x = tr.tensor([[2.5]])
    assert float(x) == 2.5 and int(x) == 2 and x.item() == 2.5
    for convert in (float, int, lambda t: t.item()):
        with pytest.raises(TypeError, match=r"only a one-element tensor.*shape \(2,\)"):
            convert(tr.tensor([1.0, 2.0]))


def test_bool_of_one_element_is_its_value():
    assert not bool(tr.Tensor([5.0]) < 1)
    assert bool(tr.Tensor([5.0]) > 1)
    assert not tr.tensor(0.0)
    with pytest.raises(TypeError, match=r"truth value of a tensor of shape \(2,\) is ambiguous.*any"):
        bool(tr.tensor([1.0, 2.0]))
    assert bool((tr.tensor([1.0, 2.0]) > 0).all())


def test_comparisons_are_elementwise_boolean_tensors():
    a = tr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tr.tensor([3.0, 2.0, 1.0])
    expected = {"<": [1, 0, 0], "<=": [1, 1, 0], ">": [0, 0, 1], ">=": [0, 1, 1],
                "==": [0, 1, 0], "!=": [1, 0, 1]}
    results = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}
    for op, result in results.items():
        assert result.dtype == bool and not result.requires_grad, op
        np.testing.assert_array_equal(result.data, np.array(expected[op], dtype=bool), err_msg=op)
    np.testing.assert_array_equal((a == 2.0).data, [False, True, False])
    assert (a == None) is False and (a != None) is True   # noqa: E711 (PyTorch's answer)


def test_tensors_hash_by_identity():
    a, b = tr.zeros(2), tr.zeros(2)                 # equal values, different tensors
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b}) == 2
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    (x * x + x * x).sum().backward()                # x is reached twice: one dict key
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_item_assignment_points_to_where_and_cat():
    with pytest.raises(TypeError, match=r"does not support item assignment.*tr\.where.*tr\.cat"):
        tr.zeros(3)[0] = 1.0


def test_ragged_list_is_a_clear_error():
    with pytest.raises(ValueError, match="nested lists have different lengths"):
        tr.tensor([[1.0, 2.0], [3.0]])


def test_linear_on_a_0d_tensor_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"Linear expected input of shape \(\.\.\., in_features\) = "
                                         r"\(\.\.\., 3\), got a 0-d tensor"):
        tr.nn.Linear(3, 2)(tr.tensor(1.0))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp"])
def test_dim_and_keepdim_mean_axis_and_keepdims(name):
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    x = tr.Tensor(a)
    with_axis = getattr(x, name)(axis=1, keepdims=True)
    with_dim = getattr(x, name)(dim=1, keepdim=True)
    with_dim = with_dim[0] if name == "max" else with_dim
    np.testing.assert_array_equal(with_axis.data, with_dim.data)
    assert with_dim.shape == (2, 1, 4)
    with pytest.raises(TypeError, match=f"{name}: got both axis=1 and dim=1"):
        getattr(x, name)(axis=1, dim=1)


def test_softmax_and_log_softmax_take_dim():
    a = np.random.default_rng(1).standard_normal((3, 5))
    x = tr.Tensor(a)
    np.testing.assert_array_equal(x.softmax(dim=0).data, x.softmax(axis=0).data)
    np.testing.assert_array_equal(tr.log_softmax(x, dim=0).data, x.log_softmax(0).data)
    np.testing.assert_allclose(tr.softmax(x, dim=0).data.sum(axis=0), 1.0, rtol=1e-12)
    with pytest.raises(TypeError, match="softmax: got both"):
        tr.softmax(x, 0, dim=0)


def test_module_level_functions_equal_the_methods():
    a = np.array([[0.5, -1.0], [2.0, 0.25]])
    x = tr.Tensor(a)
    for name in ("exp", "tanh", "sigmoid", "relu", "softmax", "log_softmax"):
        np.testing.assert_array_equal(getattr(tr, name)(x).data, getattr(x, name)().data, err_msg=name)
    np.testing.assert_allclose(tr.log(tr.Tensor(np.abs(a))).data, np.log(np.abs(a)), rtol=1e-12)
    np.testing.assert_allclose(tr.sigmoid(x).data, 1 / (1 + np.exp(-a)), rtol=1e-12)


def test_cat_stack_split_take_dim():
    a, b = tr.zeros(2, 3), tr.ones(2, 1)
    assert tr.cat([a, b], dim=1).shape == (2, 4)
    assert tr.concat([a, b], axis=1).shape == (2, 4)
    assert tr.stack([a, a], dim=2).shape == (2, 3, 2)
    with pytest.raises(TypeError, match="concat: got both"):
        tr.cat([a, b], axis=1, dim=1)
    x = tr.Tensor(np.arange(14.0).reshape(2, 7))
    assert [p.shape for p in tr.split(x, 3, dim=1)] == [(2, 3), (2, 3), (2, 1)]   # PyTorch: piece size
    assert [p.shape for p in tr.split(x, [2, 5], dim=1)] == [(2, 2), (2, 5)]
    assert [p.shape for p in tr.split(tr.zeros(2, 6), 3, axis=1)] == [(2, 2)] * 3   # NumPy: piece count


def test_max_with_dim_returns_values_and_indices():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = tr.Tensor(a).max(dim=1)
    np.testing.assert_array_equal(values.data, [5.0, 7.0])
    np.testing.assert_array_equal(indices.data, [1, 0])
    result = tr.Tensor(a).max(dim=0, keepdim=True)
    assert result.values.shape == (1, 3) and result.indices.shape == (1, 3)
    assert tr.Tensor(a).max(axis=1).shape == (2,)      # NumPy style: the values only


def test_torch_style_ops_agree_with_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(2).standard_normal((3, 7))
    x, t = tr.Tensor(a), torch.tensor(a)
    for ours, theirs in [(tr.split(x, 3, dim=1), torch.split(t, 3, dim=1)),
                         (tr.split(x, [4, 3], dim=1), torch.split(t, [4, 3], dim=1))]:
        assert len(ours) == len(theirs)
        for o, th in zip(ours, theirs):
            np.testing.assert_array_equal(o.data, th.numpy())
    values, indices = x.max(dim=1)
    t_values, t_indices = t.max(dim=1)
    np.testing.assert_array_equal(values.data, t_values.numpy())
    np.testing.assert_array_equal(indices.data, t_indices.numpy())
    np.testing.assert_allclose(tr.log_softmax(x, dim=0).data, torch.log_softmax(t, dim=0).numpy(),
                               rtol=1e-12)
    np.testing.assert_array_equal(x.flatten().data, t.flatten().numpy())
    assert x.size() == tuple(t.size()) and x.size(1) == t.size(1) and x.numel() == t.numel()


def test_indexing_a_constant_records_nothing_and_keeps_its_dtype():
    """Data, labels and masks are indexed as in NumPy, whatever their dtype (labels[t], tokens[:, t])."""
    labels = tr.tensor(np.arange(6).reshape(2, 3))
    picked = labels[:, 1]
    assert picked.dtype == np.int64 and picked._ctx is None and not picked.requires_grad
    np.testing.assert_array_equal(picked.data, [1, 4])
    np.testing.assert_array_equal(labels[tr.tensor([1, 1])].data, [[3, 4, 5], [3, 4, 5]])
    mask = tr.tensor(np.array([True, False, True]))
    assert mask[1:].dtype == np.bool_


def test_indexing_a_parameter_under_no_grad_records_nothing():
    w = tr.Tensor(np.arange(4.0), requires_grad=True)
    with tr.no_grad():
        row = w[1:3]
    assert row._ctx is None and not row.requires_grad
    np.testing.assert_array_equal(row.data, [1.0, 2.0])


@pytest.mark.parametrize("requires_grad", [False, True])
def test_index_out_of_range_names_the_shape_on_both_paths(requires_grad):
    x = tr.Tensor(np.zeros(3), requires_grad=requires_grad)
    with pytest.raises(IndexError, match=r"Index: .*out of bounds.*tensor shape \(3,\)"):
        x[5]


MOVES = {"reshape": lambda y: y.reshape(3, 2), "T": lambda y: y.T, "permute": lambda y: y.permute(1, 0),
         "unsqueeze": lambda y: y.unsqueeze(0), "flatten": lambda y: y.flatten(), "clone": lambda y: y.clone(),
         "cat": lambda y: tr.cat([y, y]), "stack": lambda y: tr.stack([y, y], dim=1),
         "split": lambda y: tr.split(y, 1, dim=0)[1], "index": lambda y: y[:, ::2]}


@pytest.mark.parametrize("op", sorted(MOVES))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_ops_that_move_elements_take_labels_and_masks(op, dtype):
    """As in PyTorch, integer and boolean tensors go through reshape, transpose, cat, stack, clone,
    split and indexing, keep their dtype, and give what NumPy gives."""
    values = np.arange(6).reshape(2, 3).astype(dtype)
    result = MOVES[op](tr.tensor(values))
    expected = MOVES[op](tr.tensor(values.astype(np.float64)))
    assert result.dtype == dtype and not result.requires_grad and result._ctx is None
    np.testing.assert_array_equal(result.data, expected.data.astype(dtype))


def test_ops_that_move_elements_still_refuse_two_dtypes():
    labels = tr.tensor(np.arange(3))
    with pytest.raises(TypeError, match=r"Concat: inputs have different dtypes int64 and float32"):
        tr.cat([labels, labels.float()])


def test_arithmetic_on_labels_is_still_refused():
    with pytest.raises(TypeError, match=r"Sum: needs floating-point tensors, got dtype int64"):
        tr.tensor(np.arange(3)).sum()
