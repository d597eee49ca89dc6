"""Conv1d: gradients (float64), PyTorch's results and init, output length, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import nn


def conv_fn(conv):
    """fn(x, weight, bias) for gradcheck: the parameter leaves are plugged into the layer."""
    def fn(x, weight, bias):
        conv.weight, conv.bias = weight, bias
        return conv(x)
    return fn


@pytest.mark.parametrize("kernel_size, stride, padding", [(1, 1, 0), (3, 1, 1), (2, 2, 0), (3, 2, 2)])
def test_conv1d_gradcheck(kernel_size, stride, padding):
    conv = nn.Conv1d(2, 3, kernel_size, stride=stride, padding=padding).double()
    rng = np.random.default_rng(kernel_size + 10 * stride + 100 * padding)
    report = tr.gradcheck(conv_fn(conv), [rng.standard_normal((2, 2, 5)), conv.weight.data, conv.bias.data],
                          names=["x", "weight", "bias"])
    assert report.passed


def test_conv1d_without_bias_gradcheck():
    conv = nn.Conv1d(2, 2, 2, bias=False).double()

    def fn(x, weight):
        conv.weight = weight
        return conv(x)
    assert tr.gradcheck(fn, [np.random.default_rng(1).standard_normal((1, 2, 4)), conv.weight.data]).passed


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(4, 9), st.booleans())
def test_conv1d_matches_torch(B, C_in, C_out, kernel_size, padding, L, bias):
    torch = pytest.importorskip("torch")
    stride = 1 + L % 2
    conv = nn.Conv1d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=bias).double()
    x = np.random.default_rng(L).standard_normal((B, C_in, L))
    x_t = torch.tensor(x, requires_grad=True)
    w_t = torch.tensor(conv.weight.data, requires_grad=True)
    b_t = torch.tensor(conv.bias.data, requires_grad=True) if bias else None
    expected = torch.nn.functional.conv1d(x_t, w_t, b_t, stride=stride, padding=padding)
    x_ours = tr.tensor(x, requires_grad=True)
    y = conv(x_ours)
    assert y.shape == tuple(expected.shape) == (B, C_out, conv.output_length(L))
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(x_ours.grad, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, w_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(conv.bias.grad, b_t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv1d_init_bounds_and_names_follow_pytorch():
    tr.manual_seed(0)
    conv = nn.Conv1d(4, 8, 5)
    bound = 1 / np.sqrt(4 * 5)
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]
    assert conv.weight.shape == (8, 4, 5) and conv.bias.shape == (8,)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.8 * bound
    assert np.abs(conv.bias.data).max() <= bound


def test_a_kernel_detects_its_pattern_wherever_it_is():
    conv = nn.Conv1d(1, 1, 3, bias=False)
    conv.weight.data[...] = np.array([[[1.0, -1.0, 1.0]]], dtype=np.float32)
    x = np.zeros((1, 1, 9), dtype=np.float32)
    x[0, 0, 5:8] = [1, -1, 1]                             # the pattern at positions 5..7
    y = conv(tr.tensor(x)).data[0, 0]
    assert y.argmax() == 5 and y[5] == 3.0


def test_bad_input_raises_clear_errors():
    conv = nn.Conv1d(3, 4, 5)
    with pytest.raises(ValueError, match=r"Conv1d expected input of shape \(B, 3, L\), got \(2, 7, 3\) — "
                                         r"channels come second"):
        conv(tr.randn(2, 7, 3))
    with pytest.raises(ValueError, match="shorter than kernel_size 5"):
        conv(tr.randn(2, 3, 4))
    with pytest.raises(TypeError, match="input dtype float64 differs"):
        conv(tr.tensor(np.zeros((1, 3, 8))))
    with pytest.raises(ValueError, match="padding must be a non-negative integer"):
        nn.Conv1d(3, 4, 5, padding=-1)
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        nn.Conv1d(3, 4, 0)
