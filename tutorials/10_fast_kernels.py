# %% [markdown]
# # Tutorial 10: fast kernels — from NumPy to `@njit` to CUDA
#
# The fused layers (`nn.LSTM(..., fused=True)`) do not build a graph per time
# step: they call *kernels*, plain array functions with a forward and a
# backward, in one of three backends that all compute the same numbers:
#
# | backend   | file                | runs on                              |
# |-----------|---------------------|--------------------------------------|
# | `"numpy"` | `kernels/reference.py` | the specification, easy to read   |
# | `"numba"` | `kernels/cpu.py`    | the CPU, compiled with `@njit`       |
# | `"cuda"`  | `kernels/cuda.py`   | an NVIDIA GPU, with `numba.cuda`     |
#
# This chapter walks one LSTM step down that ladder:
#
# 1. the NumPy reference of one step;
# 2. the same gate math as one fused loop under `@njit`;
# 3. CUDA: a *map* kernel (one thread per element), a *tiled* matrix product
#    in shared memory, and the fused LSTM gate kernel;
# 4. the whole sequence on the GPU in one launch (a *persistent* kernel), and
#    `tr.set_backend("cuda")`.
#
# Every kernel is checked against the reference. No GPU? The CUDA parts run in
# Numba's **simulator**, which executes every GPU thread as a Python thread:
# correct, slow, so all sizes here are tiny. It must be switched on before
# numba is imported, which the next cell does when no NVIDIA driver is found.

# %%
import os
import shutil
import sys

if shutil.which("nvidia-smi") is None:            # no NVIDIA driver: use the simulator
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import math

import numpy as np
from numba import config, cuda, float64, njit

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.kernels import cuda as gpu
from tinygrad_rnn.kernels import reference

SIMULATOR = bool(config.ENABLE_CUDASIM)
if SIMULATOR:
    sys.setswitchinterval(5e-4)                   # the simulator's threads take turns sooner
print("CUDA kernels run on:", "Numba's simulator (CPU)" if SIMULATOR else "the GPU")

rng = np.random.default_rng(0)
B, I, H = 2, 3, 3                                 # batch, input features, hidden units


def check(what, got, want):
    """Print the largest difference from the reference, and stop if it is not rounding error."""
    error = float(np.max(np.abs(np.asarray(got) - want)))
    print(f"{what:<40} max |difference| = {error:.1e}")
    assert error < 1e-10, f"{what} differs from the reference by {error}"


# %% [markdown]
# ## 1. One LSTM step in NumPy
#
# With PyTorch's gate order [i f g o] and weights W_ih (4H, I), W_hh (4H, H):
#
#     a   = x W_ih^T + b_ih + h W_hh^T + b_hh          (B, 4H) pre-activations
#     i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
#     c_t = f * c + i * g
#     h_t = o * tanh(c_t)
#
# Two matrix products, then elementwise *gate math*. NumPy evaluates the gate
# math one operation at a time: each `*`, `+`, `sigmoid` reads whole arrays
# from memory and writes a new temporary array. At these sizes that is mostly
# overhead; at large sizes it is memory traffic.

# %%
x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
W_ih, W_hh = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
b_ih, b_hh = rng.standard_normal(4 * H), rng.standard_normal(4 * H)

h_ref, c_ref, _ = reference.lstm_step_forward(x, h, c, W_ih, W_hh, b_ih, b_hh)
a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh         # the pre-activations, for the kernels below
print("h_t (NumPy reference):\n", h_ref)

# %% [markdown]
# ## 2. The gate math as one fused loop, compiled with `@njit`
#
# A compiled loop can do all the gate math of one hidden unit (n, j) at once:
# read its four pre-activations, compute i, f, g, o, c_t, h_t in registers,
# write two numbers. One pass over memory, no temporaries. `kernels/cpu.py`
# runs exactly this loop, one batch row at a time inside its time loop, and
# sends the matrix products to BLAS. Two things make it fast there: in float32
# its `exp` is written from + − × only, so that the compiler turns the loop
# into SIMD instructions (a call to the C library's exp would stop it); and
# the rows of the batch, independent sequences, are shared out over the cores
# (the module docstring tells why and how much).

# %%
@njit
def lstm_gates_loop(a, c_prev):
    """The LSTM gate math for pre-activations a (B, 4H) in gate order [i f g o]: (h_t, c_t), each (B, H)."""
    # BEGIN SOLUTION
    B, H = c_prev.shape
    h_t, c_t = np.empty_like(c_prev), np.empty_like(c_prev)
    for n in range(B):
        for j in range(H):
            i = 1 / (1 + np.exp(-a[n, j]))
            f = 1 / (1 + np.exp(-a[n, H + j]))
            g = np.tanh(a[n, 2 * H + j])
            o = 1 / (1 + np.exp(-a[n, 3 * H + j]))
            c_t[n, j] = f * c_prev[n, j] + i * g
            h_t[n, j] = o * np.tanh(c_t[n, j])
    return h_t, c_t
    # END SOLUTION


h_njit, c_njit = lstm_gates_loop(a, c)
check("@njit fused loop, h_t", h_njit, h_ref)
check("@njit fused loop, c_t", c_njit, c_ref)

# %% [markdown]
# ## 3. CUDA
#
# A GPU runs thousands of threads at once. A kernel launch names a **grid** of
# **blocks**, each of **threads**: `kernel[blocks, threads_per_block](args)`.
# Every thread runs the same function and finds its own work from its
# coordinates; `cuda.grid(1) = blockIdx.x * blockDim.x + threadIdx.x` is its
# global number. Threads of one block can share fast on-chip **shared
# memory** and wait for each other at `cuda.syncthreads()`.
#
# ### 3a. A map kernel: one thread per element
#
# The loop over elements disappears: each thread does one element. The grid
# is rounded up to whole blocks, so the last threads must check they are not
# past the end.

# %%
@cuda.jit
def sigmoid_map(x, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = 1 / (1 + math.exp(-x[i]))


flat = a.ravel()
out = np.empty_like(flat)
threads = 4
blocks = (flat.size + threads - 1) // threads     # 24 elements -> 6 blocks of 4
sigmoid_map[blocks, threads](flat, out)           # NumPy arrays are copied to the device and back
check("map kernel (sigmoid)", out, reference.sigmoid(flat))

# %% [markdown]
# `kernels/cuda.py` makes this generic: `map_kernel(fn)` builds such a kernel
# for any scalar device function `fn(v, one)`. (`one` is the number 1 in the
# array's dtype: a literal `1.0` is float64 and would silently turn float32
# GPU math into slower float64 math.)

# %%
check("library map kernel (sigmoid)", gpu.sigmoid(a), reference.sigmoid(a))

# %% [markdown]
# ### 3b. A tiled matrix product in shared memory
#
# C = A B with one thread per entry C[row, col] would read a whole row of A
# and column of B from (slow) global memory per thread. A block of TILE x TILE
# threads computes a TILE x TILE square of C instead, and all its threads need
# the same TILE rows of A and TILE columns of B. So the block walks along the
# inner dimension one tile at a time:
#
# 1. every thread loads ONE element of the A tile and ONE of the B tile into
#    shared memory;
# 2. `syncthreads()`: wait until both tiles are complete;
# 3. every thread adds its TILE-long piece of the dot product, reading only
#    shared memory;
# 4. `syncthreads()` again before the tiles are overwritten.
#
# Each element fetched from global memory is used TILE times. Tiles sticking
# out past the matrix edge are filled with zeros, so any shape works: here a
# (5, 3) @ (3, 6) product with 2 x 2 tiles.

# %%
TILE = 2


@cuda.jit
def tiled_matmul(A, B, C):
    A_tile = cuda.shared.array((TILE, TILE), float64)
    B_tile = cuda.shared.array((TILE, TILE), float64)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row, col = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    acc = 0.0
    for k0 in range(0, A.shape[1], TILE):
        A_tile[ty, tx] = A[row, k0 + tx] if row < A.shape[0] and k0 + tx < A.shape[1] else 0.0
        B_tile[ty, tx] = B[k0 + ty, col] if k0 + ty < B.shape[0] and col < B.shape[1] else 0.0
        cuda.syncthreads()
        for k in range(TILE):
            acc += A_tile[ty, k] * B_tile[k, tx]
        cuda.syncthreads()
    if row < C.shape[0] and col < C.shape[1]:
        C[row, col] = acc


A, Bm = rng.standard_normal((5, 3)), rng.standard_normal((3, 6))
C = np.empty((5, 6))
grid = ((6 + TILE - 1) // TILE, (5 + TILE - 1) // TILE)   # x runs along columns, y along rows
tiled_matmul[grid, (TILE, TILE)](A, Bm, C)
check("tiled matmul", C, A @ Bm)
check(f"library tiled matmul ({gpu.TILE}x{gpu.TILE} tiles)", gpu.matmul(A, Bm), A @ Bm)

# %% [markdown]
# ### 3c. The fused LSTM gate kernel
#
# The `@njit` loop of section 2 becomes a kernel by dropping the two loops:
# thread number idx does hidden unit (n, j) = divmod(idx, H). The gate math
# lives in a *device function* (`@cuda.jit(device=True)`), callable from any
# kernel: `kernels/cuda.py` calls the same `lstm_step_point_forward` from this
# one-step kernel and from the whole-sequence kernel.

# %%
@cuda.jit(device=True)
def lstm_point(a_i, a_f, a_g, a_o, c_prev):
    i = 1 / (1 + math.exp(-a_i))
    f = 1 / (1 + math.exp(-a_f))
    g = math.tanh(a_g)
    o = 1 / (1 + math.exp(-a_o))
    c_t = f * c_prev + i * g
    return c_t, o * math.tanh(c_t)


@cuda.jit
def lstm_gates_kernel(a, c_prev, h_t, c_t):
    B, H = c_prev.shape
    idx = cuda.grid(1)
    if idx < B * H:
        n, j = idx // H, idx % H
        c_t[n, j], h_t[n, j] = lstm_point(a[n, j], a[n, H + j], a[n, 2 * H + j], a[n, 3 * H + j],
                                          c_prev[n, j])


h_gpu, c_gpu = np.empty((B, H)), np.empty((B, H))
lstm_gates_kernel[1, B * H](a, c, h_gpu, c_gpu)
check("CUDA gate kernel, h_t", h_gpu, h_ref)
check("CUDA gate kernel, c_t", c_gpu, c_ref)
h_lib, c_lib, _ = gpu.lstm_step_pointwise_forward(a, c)
check("library gate kernel, h_t", h_lib, h_ref)

# %% [markdown]
# ## 4. A whole sequence in one launch
#
# The obvious GPU LSTM launches a matmul and a gate kernel at every time step.
# Measured on an H100 (benchmarks/README.md): launching a numba kernel from Python
# costs ~19 µs, while cuDNN spends about 17 µs on a whole forward+backward
# time step (B32 T64 I64 H128: 1.11 ms). Two launches a step lose before any
# arithmetic happens — that design measured 4–80x slower than cuDNN.
#
# So `kernels/cuda.py` uses **persistent** kernels:
#
# - the input projection of all T steps is one tiled matmul, x W_ih^T;
# - ONE launch runs the whole time loop. Each thread owns hidden units (n, j),
#   computes its recurrent dot products h_{t-1} · W_hh[g*H + j, :] and the
#   gate math (the same device function as 3c), then waits at a **grid-wide
#   barrier**, `cuda.cg.this_grid().sync()` (1.7 µs), so no thread reads h_t
#   before all of it is written;
# - backward is one launch for the reverse loop, then dW_ih, dW_hh and dx are
#   one matmul each over all steps, and the bias gradient one reduction.
#
# x and the weights are copied to the device once; the states stay there for
# backward. Check the whole thing, with variable lengths, against the
# reference:

# %%
T = 3
xs = rng.standard_normal((T, B, I))
lengths = np.array([3, 2])
out_gpu, hn_gpu, cn_gpu, saved = gpu.lstm_seq_forward(xs, h, c, W_ih, W_hh, b_ih, b_hh, lengths)
out_ref, hn_ref, cn_ref, saved_ref = reference.lstm_seq_forward(xs, h, c, W_ih, W_hh, b_ih, b_hh, lengths)
check("sequence forward, out", out_gpu, out_ref)
check("sequence forward, h_n", hn_gpu, hn_ref)

d_out = rng.standard_normal((T, B, H))
grads_gpu = gpu.lstm_seq_backward(d_out, np.zeros((B, H)), np.zeros((B, H)), saved)
grads_ref = reference.lstm_seq_backward(d_out, np.zeros((B, H)), np.zeros((B, H)), saved_ref)
for name, got, want in zip(("dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"), grads_gpu, grads_ref):
    check(f"sequence backward, {name}", got, want)

# %% [markdown]
# Finally the layer a student uses: the same `nn.LSTM` on the `"numba"` CPU
# backend and on `"cuda"` gives the same output and gradients.

# %%
tr.manual_seed(0)
lstm = nn.LSTM(I, H).to(np.float64)
x_seq = tr.randn(T, B, I, dtype=np.float64)
results = {}
for backend in ("numba", "cuda"):
    lstm.zero_grad()
    with tr.backend(backend):
        out_seq, _ = lstm(x_seq)
        out_seq.sum().backward()
    results[backend] = (out_seq.data, lstm.weight_hh_l0.grad.copy())
check("nn.LSTM on cuda vs numba, output", results["cuda"][0], results["numba"][0])
check("nn.LSTM on cuda vs numba, dW_hh", results["cuda"][1], results["numba"][1])

# %% [markdown]
# What next, on a real GPU: the persistent kernel here reads W_hh from global
# memory at every step. Keeping each block's slice of W_hh and the current
# h_{t-1} in shared memory for the whole sequence, and splitting each dot
# product across a warp when B*H is small, are the known steps towards
# cuDNN's speed (figures in benchmarks/README.md).
