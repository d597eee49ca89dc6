"""Conv1d: a small learned filter slid along a sequence.

A 1-D convolution looks at a window of k neighbouring time steps at a time
and applies the *same* weights at every position, the way an RNN applies the
same weights at every step — but it sees only a fixed local window, which
makes it a good detector of local patterns (a motif, an n-gram), and it has
no sequential dependency, so all positions are computed at once.

With PyTorch's layout and names (B batch, C_in/C_out channels, L length):

    x       (B, C_in, L)
    weight  (C_out, C_in, k),   bias (C_out,)
    y       (B, C_out, L_out),  L_out = floor((L + 2 padding - k) / stride) + 1

    y[b, o, t] = bias[o] + sum_c sum_j weight[o, c, j] * x_pad[b, c, t*stride + j]

where x_pad is x with `padding` zeros on both ends of the length axis. (This
is cross-correlation; deep-learning libraries call it convolution.)

Written here with autograd primitives only: the sum over the kernel taps j
is k matrix products, one per tap,

    y = bias + sum_j  W_j @ X_j,    W_j = weight[:, :, j]  (C_out, C_in)
                                    X_j = x_pad[:, :, j : j + stride*(L_out-1) + 1 : stride]  (B, C_in, L_out)

so the backward pass (slices scatter their gradient back, matmuls transpose)
comes for free and is checked against finite differences in the tests.
"""
import numpy as np

from .. import functions as F
from ..tensor import Tensor, check_sizes, zeros
from .module import Module, uniform_parameter


class Conv1d(Module):
    """Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)

    Initialised as in PyTorch: weight and bias from U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with fan_in = in_channels * kernel_size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        check_sizes("Conv1d", in_channels=in_channels, out_channels=out_channels,
                    kernel_size=kernel_size, stride=stride)
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"Conv1d: padding must be a non-negative integer, got {padding!r}")
        self.config = dict(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                           stride=stride, padding=padding, bias=bias)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        bound = 1 / np.sqrt(in_channels * kernel_size)
        self.weight = uniform_parameter((out_channels, in_channels, kernel_size), bound)
        self.bias = uniform_parameter((out_channels,), bound) if bias else None

    def output_length(self, length):
        """L_out = floor((L + 2 padding - k) / stride) + 1"""
        return (length + 2 * self.padding - self.kernel_size) // self.stride + 1

    def forward(self, x):
        self._check_input(x)
        x = self._pad(x)
        L_out = self.output_length(x.shape[2] - 2 * self.padding)
        last = self.stride * (L_out - 1) + 1            # span of one tap's slice
        y = None
        for j in range(self.kernel_size):
            W_j = self.weight[:, :, j]                      # (C_out, C_in)
            X_j = x[:, :, j:j + last:self.stride]          # (B, C_in, L_out)
            term = W_j @ X_j                               # (B, C_out, L_out)
            y = term if y is None else y + term
        return y + self.bias.reshape(-1, 1) if self.bias is not None else y

    def _pad(self, x):
        """x_pad: `padding` zeros on both ends of the length axis."""
        if self.padding == 0:
            return x
        B, C, _ = x.shape
        edge = zeros(B, C, self.padding, dtype=x.dtype)
        return F.concat([edge, x, edge], axis=2)

    def _check_input(self, x):
        C_in, k = self.weight.shape[1], self.kernel_size
        if not isinstance(x, Tensor):
            raise TypeError(f"Conv1d expected a Tensor of shape (B, {C_in}, L), got {type(x).__name__}")
        if x.ndim != 3 or x.shape[1] != C_in:
            hint = ""
            if x.ndim == 3 and x.shape[2] == C_in:
                hint = (" — channels come second: a time-major (T, B, C) or batch-first (B, T, C) "
                        "sequence needs .transpose(...) to (B, C, T) first")
            raise ValueError(f"Conv1d expected input of shape (B, {C_in}, L), got {x.shape}{hint}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"Conv1d: input dtype {x.dtype} differs from parameter dtype {self.weight.dtype}; "
                            f"convert the input or call .to(dtype) on the layer")
        if self.output_length(x.shape[2]) < 1:
            raise ValueError(f"Conv1d: input length {x.shape[2]} with padding {self.padding} is shorter "
                             f"than kernel_size {k}; pad more or use a smaller kernel")
