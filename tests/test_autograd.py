"""The graph and the backward pass: depth, accumulation, freeing, switches.

These tests exercise autograd.py rather than any one op: a chain deeper than
Python's recursion limit, gradients that add up (shared weights, repeated
backward calls), retain_graph, no_grad, detect_anomaly, retain_grad, detach.
"""
import sys

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.autograd import topological_order


def leaf(values):
    return tr.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# --------------------------------------------------------------------------
# Graph shape: deep chains, shared nodes, diamonds
# --------------------------------------------------------------------------

def test_backward_through_a_chain_deeper_than_the_recursion_limit():
    """An unrolled RNN over 10,000+ steps: an iterative topological sort, not recursion."""
    steps = max(12_000, 2 * sys.getrecursionlimit())
    x = leaf(1.0)
    y = x
    for _ in range(steps):
        y = y * 0.9999
    y.backward()
    np.testing.assert_allclose(x.grad, 0.9999 ** steps, rtol=1e-9)


def test_shared_weight_gradient_is_the_sum_over_time_steps():
    """h_t = tanh(w * h_{t-1} + x_t) uses one w at every step: dL/dw = sum_t dL/dw_t.

    The hand computation runs the recurrence backwards with the chain rule:
    dL/dh_{t-1} = dL/dh_t * (1 - h_t^2) * w, and step t adds dL/dh_t * (1 - h_t^2) * h_{t-1}.
    """
    xs, w0, h0 = [0.5, -0.3, 0.8, 0.1], 0.7, 0.2
    w = leaf(w0)
    h = tr.Tensor(np.array(h0))
    for x_t in xs:
        h = (w * h + x_t).tanh()
    h.backward()

    hs = [h0]
    for x_t in xs:
        hs.append(np.tanh(w0 * hs[-1] + x_t))
    dh, dw = 1.0, 0.0
    for t in range(len(xs), 0, -1):
        dpre = dh * (1 - hs[t] ** 2)
        dw += dpre * hs[t - 1]  # this step's share of the gradient of the shared weight
        dh = dpre * w0
    np.testing.assert_allclose(w.grad, dw, rtol=1e-12)


def test_a_node_used_twice_gets_both_gradients():
    """y = x*x + x, a diamond in the graph: dy/dx = 2x + 1."""
    x = leaf([1.0, -2.0, 3.0])
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, -3.0, 7.0])


def test_topological_order_puts_parents_first():
    x = leaf(2.0)
    y = x.exp()
    z = y * x
    order = topological_order(z)
    assert order.index(x) < order.index(y) < order.index(z)
    assert len(order) == 3


def test_inputs_without_requires_grad_get_no_gradient():
    x, c = leaf([1.0, 2.0]), tr.Tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_backward_with_an_explicit_output_gradient():
    x = leaf([1.0, 2.0])
    (x * 3.0).backward(np.array([10.0, 100.0]))
    np.testing.assert_array_equal(x.grad, [30.0, 300.0])


# --------------------------------------------------------------------------
# Accumulation and retain_graph
# --------------------------------------------------------------------------

def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0 + 5.0, 4.0 + 5.0])
    x.zero_grad()
    assert x.grad is None


def test_leaves_given_one_gradient_array_get_grads_of_their_own():
    """Add's backward passes one array to both inputs, and backward(G) passes the caller's G on:
    each leaf's .grad is still its own array, so changing one in place changes nothing else."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    G = np.array([1.0, -1.0])
    (a + b).backward(G)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, G) and not np.shares_memory(b.grad, G)
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, -1.0])
    np.testing.assert_array_equal(G, [1.0, -1.0])
    x = leaf([1.0, 2.0])
    x.backward(G)
    assert not np.shares_memory(x.grad, G)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_op_gradients_are_kept_as_they_are_and_add_up(cell):
    """A fused op's backward makes new arrays (KernelFunction.new_grads), which its leaves keep as
    their .grad without a copy: they share no memory with each other; a second backward adds."""
    from tinygrad_rnn import fused
    rng = np.random.default_rng(0)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    x, h0, c0 = leaf(rng.standard_normal((3, 2, 4))), leaf(rng.standard_normal((2, 5))), leaf(np.zeros((2, 5)))
    weights = [leaf(rng.standard_normal(shape)) for shape in ((G * 5, 4), (G * 5, 5), (G * 5,), (G * 5,))]
    op = getattr(fused, f"{cell}_sequence")
    states = (h0, c0) if cell == "lstm" else (h0,)
    loss = (op(x, *states, *weights)[0] ** 2).sum()
    loss.backward(retain_graph=True)
    leaves = [x, *states, *weights]
    first = [t.grad.copy() for t in leaves]
    for n, t in enumerate(leaves):
        for other in leaves[n + 1:]:
            assert not np.shares_memory(t.grad, other.grad)
    loss.backward()
    for t, g in zip(leaves, first):
        np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-12)


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    loss = (x.tanh() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)


def test_second_backward_without_retain_graph_is_a_clear_error():
    x = leaf([1.0, 2.0])
    loss = (x.tanh() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"Sum a second time.*retain_graph=True"):
        loss.backward()


def test_backward_through_a_freed_inner_node_names_it():
    x = leaf([1.0, 2.0])
    hidden = x.tanh()
    hidden.sum().backward()
    with pytest.raises(RuntimeError, match=r"backward through Tanh a second time"):
        (hidden * 2.0).sum().backward()


def test_saved_arrays_are_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = x.tanh()
    z = y * x
    nodes = [y._ctx, z._ctx]
    assert all(ctx.saved for ctx in nodes)
    z.sum().backward()
    assert all(ctx.saved == () and ctx.parents == () for ctx in nodes)


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    y = x.tanh()
    y.sum().backward(retain_graph=True)
    assert len(y._ctx.saved) == 1 and y._ctx.parents == (x,)


# --------------------------------------------------------------------------
# no_grad, retain_grad, detach
# --------------------------------------------------------------------------

def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tr.no_grad():
        assert not tr.is_grad_enabled()
        y = (x * 2.0).tanh()
    assert tr.is_grad_enabled()
    assert y._ctx is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tr.no_grad():
            raise ZeroDivisionError
    assert tr.is_grad_enabled()


def test_retain_grad_keeps_the_gradient_of_a_hidden_state():
    x = leaf([1.0, -1.0])
    h = (x * 3.0).retain_grad()
    other = x * 2.0
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)
    assert other.grad is None  # non-leaves drop their gradient unless asked
    np.testing.assert_array_equal(x.grad, 2 * h.data * 3.0 + 2.0)


def test_data_and_grad_are_arrays_also_for_one_element():
    """.data and .grad are ndarrays, as DESIGN promises, also where NumPy's 0-d arithmetic gives a
    scalar: a sum of 0-d tensors, x[0] of a vector, a 0-d parameter's gradient (first and added),
    and a retained 0-d gradient."""
    w, x = leaf(2.0), leaf([1.0, 2.0, 3.0])
    s = (sum(x, 2) * w).retain_grad()
    loss = s + w + x[0]
    for t in (s, loss, x[0], tr.tensor([1.0, 2.0])[1], sum(x, 2)):
        assert type(t.data) is np.ndarray
    loss.backward()
    assert type(w.grad) is np.ndarray and w.grad == 8.0 + 1.0
    assert type(s.grad) is np.ndarray and s.grad == 1.0
    np.testing.assert_array_equal(x.grad, [3.0, 2.0, 2.0])


def test_detach_cuts_the_graph():
    """Truncated BPTT carries h.detach() forward: no gradient flows through it."""
    x = leaf([1.0, 2.0])
    carried = (x * x).detach()
    assert not carried.requires_grad and carried._ctx is None
    np.testing.assert_array_equal(carried.data, [1.0, 4.0])
    (carried * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 4.0])  # not 3x^2: the x*x branch is cut


def test_time_step_tags_the_nodes_it_creates():
    x = leaf([1.0])
    with tr.time_step(7):
        y = x.tanh()
    z = y * 2.0
    assert y._ctx.step == 7 and z._ctx.step is None


def test_a_user_defined_function_joins_the_graph():
    class Cube(tr.Function):
        """c = a^3;   dc/da = 3 a^2"""

        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved
            return g * 3 * a * a

    assert tr.gradcheck(lambda x: Cube.apply(x), [np.array([0.5, -1.5])]).passed


# --------------------------------------------------------------------------
# detect_anomaly
# --------------------------------------------------------------------------

def test_detect_anomaly_names_the_op_of_a_forward_nan():
    x = leaf([1.0, -1.0])
    with tr.detect_anomaly():
        y = x * 2.0
        with pytest.raises(tr.AnomalyError, match=r"Log produced NaN in its forward output"):
            y.log()


def test_detect_anomaly_names_the_time_step_of_a_forward_inf():
    x = leaf([1.0, 800.0])
    with tr.detect_anomaly():
        with tr.time_step(4):
            with pytest.raises(tr.AnomalyError, match=r"Exp \(time step 4\) produced Inf in its forward"):
                x.exp()


def test_detect_anomaly_names_the_op_and_time_step_of_a_backward_inf():
    """sqrt(0) = 0 is fine forward, but d sqrt/dx = 1/(2 sqrt x) is Inf there."""
    x = leaf([0.0, 4.0])
    with tr.detect_anomaly():
        h = x * 1.0
        for t in range(3):
            with tr.time_step(t):
                h = h.sqrt() if t == 1 else h * 1.0
        with pytest.raises(tr.AnomalyError, match=r"Sqrt \(time step 1\) produced Inf in its backward pass"):
            h.sum().backward()


def test_detect_anomaly_blames_a_nan_that_was_already_in_the_data():
    x = leaf([1.0, np.nan])
    with tr.detect_anomaly():
        with pytest.raises(tr.AnomalyError, match=r"input 0 of Mul \(shape \(2,\)\) already contains NaN: "
                                                  r"it comes from data or a leaf"):
            x * 2.0


def test_without_detect_anomaly_nan_passes_silently():
    x = leaf([-1.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data).all()


class SplitInTwo(tr.Function):
    """A two-output op for the tests: (a[:k], 2 a[k:])."""

    @staticmethod
    def forward(ctx, a, k):
        ctx.k = k
        return a[:k], 2 * a[k:]

    @staticmethod
    def backward(ctx, grads):
        g_head, g_tail = grads
        return np.concatenate([g_head, 2 * g_tail])


def test_function_with_several_outputs_gets_one_gradient_per_output():
    x = leaf([1.0, 2.0, 3.0])
    head, tail = SplitInTwo.apply(x, k=1)
    assert head.shape == (1,) and tail.shape == (2,)
    (head * 3.0 + tail.sum()).backward()
    np.testing.assert_array_equal(x.grad, [3.0, 2.0, 2.0])


def test_unused_output_of_a_several_output_op_gets_zero_gradient():
    x = leaf([1.0, 2.0, 3.0])
    _, tail = SplitInTwo.apply(x, k=1)
    tail.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 2.0])
    assert tr.gradcheck(lambda a: SplitInTwo.apply(a, k=2)[1] * 5.0, [np.array([0.5, -1.0, 2.0])]).passed
