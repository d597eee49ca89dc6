"""Soft attention: gradients (float64, masks included), masking, layouts, PyTorch, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import nn

RNG = np.random.default_rng(0)


def random(*shape):
    return RNG.standard_normal(shape)


def with_parameters(module, names, call):
    """fn(*inputs, *parameters) for gradcheck: plug the parameter leaves into the module, then call."""
    def fn(*args):
        for name, value in zip(names, args[len(args) - len(names):]):
            setattr(module, name, value)
        return call(*args[:len(args) - len(names)])
    return fn


def both_outputs(attention, **mask):
    """Concatenate context and weights so one gradcheck covers both outputs."""
    def call(query, keys, values):
        context, weights = attention(query, keys, values, **mask)
        return tr.concat([context, weights], axis=1)
    return call


# --------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [{}, {"lengths": [4, 2, 1]},
                                  {"mask": np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], bool)}])
def test_additive_attention_gradcheck(mask):
    B, S, Hq, Hk, Hv, A = 3, 4, 2, 3, 2, 5
    attention = nn.AdditiveAttention(Hq, Hk, A).double()
    names = ["W_q", "W_k", "v"]
    fn = with_parameters(attention, names, both_outputs(attention, **mask))
    report = tr.gradcheck(fn, [random(B, Hq), random(S, B, Hk), random(S, B, Hv)]
                          + [getattr(attention, n).data for n in names], names=["q", "k", "v_s"] + names)
    assert report.passed


@pytest.mark.parametrize("scaled", [False, True])
def test_dot_attention_gradcheck_with_lengths(scaled):
    attention = nn.DotAttention(scaled=scaled, batch_first=True)
    fn = both_outputs(attention, lengths=np.array([3, 1]))
    assert tr.gradcheck(fn, [random(2, 4), random(2, 3, 4), random(2, 3, 2)]).passed


def test_general_dot_attention_gradcheck():
    attention = nn.DotAttention(query_size=3, key_size=2).double()
    fn = with_parameters(attention, ["W"], both_outputs(attention, lengths=[2, 3]))
    assert tr.gradcheck(fn, [random(2, 3), random(3, 2, 2), random(3, 2, 4), attention.W.data]).passed


# --------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------

@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.booleans())
def test_weights_sum_to_one_over_valid_positions_and_are_zero_at_padding(lengths, additive):
    B, S, H = len(lengths), max(lengths) + 1, 3
    attention = nn.AdditiveAttention(H, H, 4) if additive else nn.DotAttention(scaled=True)
    keys = tr.tensor(RNG.standard_normal((S, B, H)) * 10, dtype=np.float32)   # large scores too
    _, weights = attention(tr.randn(B, H), keys, lengths=np.array(lengths))
    valid = np.arange(S)[None, :] < np.array(lengths)[:, None]
    assert np.all(np.isfinite(weights.data))
    np.testing.assert_allclose(weights.data.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(weights.data[~valid] == 0.0)


def test_padded_keys_and_values_get_no_gradient_and_do_not_change_the_context():
    attention = nn.DotAttention()
    query = tr.randn(2, 3)
    keys = tr.randn(4, 2, 3, requires_grad=True)
    context, _ = attention(query, keys, lengths=[4, 2])
    context.sum().backward()
    assert np.all(keys.grad[2:, 1] == 0) and np.any(keys.grad[:2, 1] != 0)
    changed = keys.data.copy()
    changed[2:, 1] = 1e6                              # garbage in the padding
    context_changed, _ = attention(query, tr.tensor(changed), lengths=[4, 2])
    np.testing.assert_array_equal(context_changed.data[1], context.data[1])


def test_lengths_and_the_equivalent_mask_agree():
    attention = nn.AdditiveAttention(3, 3, 4)
    query, keys = tr.randn(2, 3), tr.randn(5, 2, 3)
    by_lengths = attention(query, keys, lengths=[5, 3])
    by_mask = attention(query, keys, mask=np.arange(5)[None, :] < np.array([[5], [3]]))
    for a, b in zip(by_lengths, by_mask):
        np.testing.assert_array_equal(a.data, b.data)


def test_context_is_the_weighted_sum_of_values():
    tr.manual_seed(0)
    attention = nn.DotAttention(scaled=True)
    query, keys, values = tr.randn(2, 4), tr.randn(3, 2, 4), tr.randn(3, 2, 5)
    context, weights = attention(query, keys, values)
    scores = np.einsum("bh,sbh->bs", query.data, keys.data) / 2.0
    expected_weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(context.data, np.einsum("bs,sbh->bh", expected_weights, values.data),
                               rtol=1e-5, atol=1e-6)   # float32: a context entry near 0 needs an absolute bound


def test_batch_first_gives_the_same_result_as_time_major():
    tr.manual_seed(1)
    time_major = nn.AdditiveAttention(3, 2, 4)
    batch_first = nn.AdditiveAttention(3, 2, 4, batch_first=True)
    batch_first.load_state_dict(time_major.state_dict())
    query, keys = tr.randn(2, 3), tr.randn(5, 2, 2)
    a = time_major(query, keys, lengths=[5, 2])
    b = batch_first(query, keys.transpose(1, 0, 2), lengths=[5, 2])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.data, y.data, rtol=1e-6)


# --------------------------------------------------------------------------
# PyTorch as an oracle
# --------------------------------------------------------------------------

def test_scaled_dot_attention_matches_torch():
    torch = pytest.importorskip("torch")
    query, keys, values = random(3, 4), random(3, 5, 4), random(3, 5, 2)
    valid = np.arange(5)[None, :] < np.array([[5], [2], [4]])
    context, weights = nn.DotAttention(scaled=True, batch_first=True)(
        tr.tensor(query), tr.tensor(keys), tr.tensor(values), mask=valid)
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(query)[:, None], torch.tensor(keys), torch.tensor(values),
        attn_mask=torch.tensor(valid)[:, None])
    np.testing.assert_allclose(context.data, expected[:, 0].numpy(), rtol=1e-10, atol=1e-12)


def test_additive_attention_matches_torch_written_from_the_equation():
    torch = pytest.importorskip("torch")
    attention = nn.AdditiveAttention(3, 2, 4, batch_first=True).double()
    query, keys = random(2, 3), random(2, 5, 2)
    lengths = np.array([5, 3])
    context, weights = attention(tr.tensor(query), tr.tensor(keys), lengths=lengths)
    W_q, W_k, v = (torch.tensor(p.data) for p in (attention.W_q, attention.W_k, attention.v))
    q, k = torch.tensor(query), torch.tensor(keys)
    scores = torch.tanh((q @ W_q.T)[:, None] + k @ W_k.T) @ v
    scores = scores.masked_fill(torch.arange(5)[None] >= torch.tensor(lengths)[:, None], float("-inf"))
    expected = torch.softmax(scores, dim=1)
    np.testing.assert_allclose(weights.data, expected.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(context.data, torch.einsum("bs,bsh->bh", expected, k).numpy(), rtol=1e-10)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    attention = nn.AdditiveAttention(3, 2, 4)
    query, keys = tr.randn(2, 3), tr.randn(5, 2, 2)
    with pytest.raises(ValueError, match="either mask or lengths"):
        attention(query, keys, mask=np.ones((2, 5), bool), lengths=[5, 5])
    with pytest.raises(ValueError, match=r"mask must have shape \(B, S\) = \(2, 5\)"):
        attention(query, keys, mask=np.ones((5, 2), bool))
    with pytest.raises(ValueError, match=r"batch elements \[1\] have no valid position"):
        attention(query, keys, lengths=[3, 0])
    with pytest.raises(ValueError, match=r"query must have shape \(B, Hq\) with B=2"):
        attention(tr.randn(5, 3), keys)
    with pytest.raises(ValueError, match=r"keys must be a Tensor of shape \(S, B, H\)"):
        attention(query, tr.randn(5, 2))
    with pytest.raises(ValueError, match="AdditiveAttention expected query"):
        attention(tr.randn(2, 4), keys)
    with pytest.raises(ValueError, match="plain dot attention needs query size == key size"):
        nn.DotAttention()(query, keys)
    with pytest.raises(ValueError, match="give both query_size and key_size"):
        nn.DotAttention(query_size=3)
