"""CUDA kernels (``numba.cuda``): the functions of ``reference.py`` on an NVIDIA GPU.

Same names, same signatures, same results (to float rounding) as the reference:
arrays go in and come out as NumPy arrays on the host. Inside a sequence op the
arrays stay on the device for the whole sequence — x and the weights are copied
in once, out / h_n / c_n are copied out once — and ``saved`` keeps *device*
arrays (same tuple layout as the reference), so backward copies in only the
incoming gradients and copies out only the results.

The file builds up in steps, each a kernel you can test alone:

1. ``elementwise_map`` / ``elementwise_zip``: one thread per element, the
   "hello world" of CUDA: i = blockIdx.x * blockDim.x + threadIdx.x.
2. ``sum_rows``: a reduction (out[j] = sum_i a[i, j], the bias gradient):
   blocks of 32 columns x 8 lanes; each lane adds a strided part of its
   column, then a tree in shared memory halves the active lanes each round.
3. ``device_matmul``: a tiled matrix product in shared memory (explained at
   the kernel).
4. The pointwise math of one step as *device functions*
   (``lstm_step_point_forward`` ...: one hidden unit), called by the one-step
   kernels (``lstm_step_pointwise_forward`` ...) and by the persistent
   whole-sequence kernels: one copy of every equation.
5. The persistent whole-sequence kernels (next paragraph), and
6. the reference's sequence functions built from them (one step is a
   sequence of length 1: ``tinygrad_rnn.fused`` needs no step kernel).

Why the sequence kernels are *persistent*: launching a kernel from Python
costs more than a fast LSTM spends on a whole time step, so a design with
launches per step (matmul + pointwise kernel) is dominated by launch cost.
So each sequence op here is:

- forward: the input projection of all T steps as ONE matmul
  (xa = x W_ih^T, shape (T*B, G*H)); then ONE launch for the whole time loop,
  a cooperative grid in which every thread owns hidden units (n, j), computes
  its recurrent dot products h_{t-1} · W_hh[g*H + j, :] and the pointwise
  math, and waits at a grid-wide barrier (``cuda.cg.this_grid().sync()``)
  before the next step reads the new h_t. The state history hs[0..T] is kept
  anyway for backward, so step t reads hs[t] and writes hs[t+1]: that is the
  double buffer, and one barrier per step is enough.
- backward: ONE launch for the reverse time loop. Per step, phase 1 turns
  dh_t into the pre-activation gradients da_t of the thread's own units;
  barrier; phase 2 computes dh_{t-1}[n, j] = sum_k da_t[n, k] W_hh[k, j],
  which needs every da_t[n, :]. A thread only ever reads and writes its own
  dh[n, j], and phase 1 of step t-1 writes da_{t-1}, which no one reads until
  after the next barrier, so again one barrier per step suffices.
  Then dx, dW_ih, dW_hh are one matmul each over all steps at once
  (dW_hh = sum_t da_t^T h_{t-1} = da^T hs[:T] with (T*B) as the inner
  dimension), and the bias gradient is one ``sum_rows``.

A cooperative launch needs every block resident at once, so the grid has at
most ``max_cooperative_grid_blocks`` blocks; each thread then loops over as
many (n, j) as it must (a grid-stride loop), so any B*H fits. Numba launches a
kernel cooperatively by itself when it sees ``this_grid().sync()`` in it.

This is the plain persistent design (one thread per (n, j), W_hh^T read from
global memory, coalesced), written to be read. Known next steps: keep
h_{t-1} and each block's slice of W_hh in shared memory, split each dot
product across a warp when B*H is small.

Matmul choice: numba.cuda ships no cuBLAS binding; a device GEMM would mean a
new dependency (CuPy or nvmath-python). The matmuls here are outside the time
loop (one in forward; three, plus two reductions, in backward): a fixed
handful of launches per forward+backward, not a few per step, so the tiled
kernel ``device_matmul`` is used.

LSTM projections (proj_size) and the reset_after=False GRU have no kernels
here: the fused ops raise a clear error naming the option on this backend.

Precision: every scalar function takes ``one``, the number 1 in the arrays'
dtype, and builds its constants from it (zero = one - one), so float32 math
stays float32 on the device instead of being promoted by a float64 literal.

Without a GPU: set ``NUMBA_ENABLE_CUDASIM=1`` before Python starts (before
numba is imported) and Numba's simulator runs these kernels on the CPU, each
thread as a Python thread — correct but slow: tiny shapes only. The simulator
runs a cooperative grid as a single block, and uses 4×4 tiles instead of 16×16
so a tile is 16 Python threads, not 256.
"""
import functools
import math

import numpy as np
from numba import config, cuda, from_dtype

from .reference import full_lengths

SIMULATOR = bool(config.ENABLE_CUDASIM)
THREADS = 128                       # threads per block of the 1-D kernels
SUM_COLUMNS, SUM_LANES = 32, 8      # block of the column sums: a warp wide, 8 lanes (a power of two) deep
TILE = 4 if SIMULATOR else 16       # side of the square tiles of the matmul


# --------------------------------------------------------------------------
# Plumbing: device arrays and launch sizes
# --------------------------------------------------------------------------

def _device(a):
    """`a` on the device: a NumPy array is copied over (C-contiguous); a device array passes through."""
    if isinstance(a, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(a))
    return a


def _on_device(*arrays):
    return [_device(a) for a in arrays]


def _empty(shape, like):
    """An uninitialized device array of `like`'s dtype (every kernel here writes all of it)."""
    return cuda.device_array(shape, like.dtype)


def _one(a):
    """The number 1 in the dtype of `a` (see "Precision" in the module docstring)."""
    return a.dtype.type(1)


def _ceil_div(n, d):
    return (n + d - 1) // d


def _launch_1d(n):
    """(blocks, threads) for n items, one thread each."""
    threads = min(THREADS, n)
    return _ceil_div(n, threads), threads


# --------------------------------------------------------------------------
# 1. Elementwise: map and zip
# --------------------------------------------------------------------------

@cuda.jit(device=True)
def sigmoid_scalar(v, one):
    """sigmoid(v) = 1 / (1 + e^-v)."""
    return one / (one + math.exp(-v))


@cuda.jit(device=True)
def tanh_scalar(v, one):
    return math.tanh(v)


@cuda.jit(device=True)
def relu_scalar(v, one):
    return max(v, one - one)


@cuda.jit(device=True)
def tanh_grad_scalar(dh, h, one):
    """dh * tanh'(a) written with h = tanh(a): dh * (1 - h^2)."""
    return dh * (one - h * h)


@cuda.jit(device=True)
def relu_grad_scalar(dh, h, one):
    """dh * relu'(a) written with h = relu(a): dh where h > 0, else 0."""
    return dh if h > one - one else one - one


@functools.cache
def map_kernel(fn):
    """A kernel computing out[i] = fn(x[i], one) over flat arrays, one thread per element.

    `fn` is a scalar device function (``@cuda.jit(device=True)``); the kernel
    is built once per function and compiled once per dtype.
    """
    @cuda.jit
    def kernel(x, out, one):
        i = cuda.grid(1)                # blockIdx.x * blockDim.x + threadIdx.x
        if i < out.size:                # the last block may stick out past the end
            out[i] = fn(x[i], one)
    return kernel


@functools.cache
def zip_kernel(fn):
    """A kernel computing out[i] = fn(x[i], y[i], one) over flat arrays of one size."""
    @cuda.jit
    def kernel(x, y, out, one):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = fn(x[i], y[i], one)
    return kernel


def elementwise_map(fn, x):
    """fn(x) elementwise -> device array of x's shape; x a host or device array."""
    x = _device(x)
    out = cuda.device_array(x.shape, x.dtype)
    blocks, threads = _launch_1d(x.size)
    map_kernel(fn)[blocks, threads](x.ravel(), out.ravel(), _one(x))
    return out


def elementwise_zip(fn, x, y):
    """fn(x, y) elementwise -> device array; x and y of one shape, host or device arrays."""
    x, y = _device(x), _device(y)
    if x.shape != y.shape:
        raise ValueError(f"elementwise_zip: shapes {x.shape} and {y.shape} differ; "
                         "it does not broadcast, pass arrays of one shape")
    out = cuda.device_array(x.shape, x.dtype)
    blocks, threads = _launch_1d(x.size)
    zip_kernel(fn)[blocks, threads](x.ravel(), y.ravel(), out.ravel(), _one(x))
    return out


# --------------------------------------------------------------------------
# 2. Reduction: sum over the rows of a matrix (bias gradients)
# --------------------------------------------------------------------------

@functools.cache
def _sum_rows_kernel(dtype):
    """Kernel for out[j] = sum_i a[i, j] with 2-D blocks of (columns, lanes) threads.

    threadIdx.x picks the column, so the threads of a warp read adjacent
    addresses of a row (coalesced); threadIdx.y is the thread's *lane* down
    that column. Each thread first adds a strided part of its column (rows
    lane, lane + blockDim.y, ...); then the lanes' partial sums meet in a tree
    in shared memory: in each round the lower half of the lanes adds the upper
    half, so blockDim.y partial sums become one in log2(blockDim.y) rounds,
    with a ``syncthreads`` barrier between rounds.
    """
    element = from_dtype(dtype)         # a shared array's dtype is fixed when it compiles

    @cuda.jit
    def kernel(a, out):
        partial = cuda.shared.array((SUM_LANES, SUM_COLUMNS), element)
        tx, lane = cuda.threadIdx.x, cuda.threadIdx.y
        col = cuda.blockIdx.x * cuda.blockDim.x + tx
        acc = element(0)
        if col < a.shape[1]:
            for i in range(lane, a.shape[0], cuda.blockDim.y):
                acc += a[i, col]
        partial[lane, tx] = acc
        cuda.syncthreads()
        width = cuda.blockDim.y // 2
        while width > 0:
            if lane < width:
                partial[lane, tx] += partial[lane + width, tx]
            cuda.syncthreads()
            width //= 2
        if lane == 0 and col < a.shape[1]:
            out[col] = partial[0, tx]
    return kernel


def sum_rows(a):
    """a.sum(axis=0) of a 2-D host or device array -> device array (columns,)."""
    a = _device(a)
    rows, cols = a.shape
    lanes = min(SUM_LANES, 1 << max(rows - 1, 0).bit_length())   # a power of two >= rows
    columns = min(SUM_COLUMNS, cols)
    out = cuda.device_array(cols, a.dtype)
    _sum_rows_kernel(a.dtype)[_ceil_div(cols, columns), (columns, lanes)](a, out)
    return out


# --------------------------------------------------------------------------
# 3. Tiled matrix product in shared memory
# --------------------------------------------------------------------------

@functools.cache
def _matmul_kernel(dtype, tile):
    """Kernel for c = op(a) @ op(b), op transposing when asked, one thread per entry of c.

    Tiling: c[row, col] = sum_k a[row, k] b[k, col] reads a whole row of a
    and column of b. The tile x tile threads of a block compute a
    tile x tile square of c, whose rows all need the same rows of a and whose
    columns need the same columns of b. So the block walks along k one tile
    at a time: each thread loads ONE element of a's tile and ONE of b's into
    shared memory (fast, on-chip, shared by the block), the block waits
    (``syncthreads``) until both tiles are complete, every thread adds its
    tile-long piece of the dot product from shared memory, and the block
    waits again before the tiles are overwritten. Each element loaded from
    global memory is reused `tile` times. Tiles that stick out past the
    matrix edge are padded with zeros, so any shape works.

    op(a)[r, k] is a[k, r] when trans_a: a transposed operand is read in
    place, without copying it first.
    """
    element = from_dtype(dtype)

    @cuda.jit
    def kernel(a, b, c, trans_a, trans_b):
        a_tile = cuda.shared.array((tile, tile), element)
        b_tile = cuda.shared.array((tile, tile), element)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        M, N = c.shape
        K = a.shape[0] if trans_a else a.shape[1]
        acc = element(0)
        for k0 in range(0, K, tile):
            if row < M and k0 + tx < K:
                a_tile[ty, tx] = a[k0 + tx, row] if trans_a else a[row, k0 + tx]
            else:
                a_tile[ty, tx] = element(0)
            if k0 + ty < K and col < N:
                b_tile[ty, tx] = b[col, k0 + ty] if trans_b else b[k0 + ty, col]
            else:
                b_tile[ty, tx] = element(0)
            cuda.syncthreads()                  # both tiles loaded
            for k in range(tile):
                acc += a_tile[ty, k] * b_tile[k, tx]
            cuda.syncthreads()                  # everyone done before the next load
        if row < M and col < N:
            c[row, col] = acc
    return kernel


def device_matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D host or device arrays -> device array; op = transpose when asked."""
    a, b = _device(a), _device(b)
    M, K = a.shape[::-1] if trans_a else a.shape
    K_b, N = b.shape[::-1] if trans_b else b.shape
    if K != K_b:
        raise ValueError(f"matmul: inner dimensions differ, op(a) is ({M}, {K}) and op(b) is "
                         f"({K_b}, {N}); expected op(a) (M, K) and op(b) (K, N)")
    c = cuda.device_array((M, N), a.dtype)
    grid = (_ceil_div(N, TILE), _ceil_div(M, TILE))       # x runs along columns, y along rows
    _matmul_kernel(a.dtype, TILE)[grid, (TILE, TILE)](a, b, c, trans_a, trans_b)
    return c


def matmul(a, b):
    """c = a @ b for 2-D arrays (host in, host out)."""
    return device_matmul(a, b).copy_to_host()


# --------------------------------------------------------------------------
# 4. Gate math: device functions (one copy of each equation) and gate kernels
# --------------------------------------------------------------------------

@cuda.jit(device=True)
def lstm_step_point_forward(a_i, a_f, a_g, a_o, c_prev, one):
    """One hidden unit of one LSTM step (equations in reference.lstm_step_pointwise_forward).

    -> i, f, g, o, c_t, h_t
    """
    i = sigmoid_scalar(a_i, one)
    f = sigmoid_scalar(a_f, one)
    g = math.tanh(a_g)
    o = sigmoid_scalar(a_o, one)
    c_t = f * c_prev + i * g
    return i, f, g, o, c_t, o * math.tanh(c_t)


@cuda.jit(device=True)
def lstm_step_point_backward(dh_t, dc_t, i, f, g, o, c_prev, c_t, one):
    """Chain rule through `lstm_step_point_forward` (reference.lstm_step_pointwise_backward).

    -> da_i, da_f, da_g, da_o, dc_prev
    """
    tanh_c = math.tanh(c_t)
    dc = dc_t + dh_t * o * (one - tanh_c * tanh_c)
    return (dc * g * i * (one - i), dc * c_prev * f * (one - f),
            dc * i * (one - g * g), dh_t * tanh_c * o * (one - o), dc * f)


@cuda.jit(device=True)
def gru_step_point_forward(xa_r, xa_z, xa_n, ha_r, ha_z, ha_n, h_prev, one):
    """One hidden unit of one GRU step (reference.gru_step_pointwise_forward).  -> r, z, n, h_t"""
    r = sigmoid_scalar(xa_r + ha_r, one)
    z = sigmoid_scalar(xa_z + ha_z, one)
    n = math.tanh(xa_n + r * ha_n)
    return r, z, n, (one - z) * n + z * h_prev


@cuda.jit(device=True)
def gru_step_point_backward(dh_t, r, z, n, ha_n, h_prev, one):
    """Chain rule through `gru_step_point_forward` (reference.gru_step_pointwise_backward).

    -> dr_a, dz_a, dn_a, dh_prev_direct   (dha_n = dn_a * r)
    """
    dn_a = dh_t * (one - z) * (one - n * n)
    dz_a = dh_t * (h_prev - n) * z * (one - z)
    dr_a = dn_a * ha_n * r * (one - r)
    return dr_a, dz_a, dn_a, dh_t * z


@cuda.jit(device=True)
def rnn_step_point_forward(a, relu, one):
    return relu_scalar(a, one) if relu else math.tanh(a)


@cuda.jit(device=True)
def rnn_step_point_backward(dh_t, h_t, relu, one):
    return relu_grad_scalar(dh_t, h_t, one) if relu else tanh_grad_scalar(dh_t, h_t, one)


@cuda.jit(device=True)
def dot_column(h, W, col, one):
    """sum_k h[k] W[k, col]: entry `col` of the row vector h @ W.

    When adjacent threads take adjacent columns, they read adjacent addresses
    of W at every k (a *coalesced* read: one memory transaction per warp).
    """
    acc = one - one
    for k in range(h.shape[0]):
        acc += h[k] * W[k, col]
    return acc


@cuda.jit
def _lstm_step_pointwise_forward_kernel(a, c_prev, h_t, c_t, gates, one):
    B, H = c_prev.shape
    idx = cuda.grid(1)
    if idx < B * H:
        n, j = idx // H, idx % H
        i, f, g, o, c, h = lstm_step_point_forward(a[n, j], a[n, H + j], a[n, 2 * H + j],
                                              a[n, 3 * H + j], c_prev[n, j], one)
        gates[n, j], gates[n, H + j], gates[n, 2 * H + j], gates[n, 3 * H + j] = i, f, g, o
        c_t[n, j], h_t[n, j] = c, h


@cuda.jit
def _lstm_step_pointwise_backward_kernel(dh_t, dc_t, gates, c_prev, c_t, da, dc_prev, one):
    B, H = c_prev.shape
    idx = cuda.grid(1)
    if idx < B * H:
        n, j = idx // H, idx % H
        da_i, da_f, da_g, da_o, dc = lstm_step_point_backward(
            dh_t[n, j], dc_t[n, j], gates[n, j], gates[n, H + j], gates[n, 2 * H + j],
            gates[n, 3 * H + j], c_prev[n, j], c_t[n, j], one)
        da[n, j], da[n, H + j], da[n, 2 * H + j], da[n, 3 * H + j] = da_i, da_f, da_g, da_o
        dc_prev[n, j] = dc


@cuda.jit
def _gru_step_pointwise_forward_kernel(xa, ha, h_prev, h_t, gates, ha_n, one):
    B, H = h_prev.shape
    idx = cuda.grid(1)
    if idx < B * H:
        n, j = idx // H, idx % H
        r, z, n_t, h = gru_step_point_forward(xa[n, j], xa[n, H + j], xa[n, 2 * H + j], ha[n, j],
                                         ha[n, H + j], ha[n, 2 * H + j], h_prev[n, j], one)
        gates[n, j], gates[n, H + j], gates[n, 2 * H + j] = r, z, n_t
        ha_n[n, j] = ha[n, 2 * H + j]
        h_t[n, j] = h


@cuda.jit
def _gru_step_pointwise_backward_kernel(dh_t, gates, ha_n, h_prev, dxa, dha, dh_direct, one):
    B, H = h_prev.shape
    idx = cuda.grid(1)
    if idx < B * H:
        n, j = idx // H, idx % H
        r = gates[n, j]
        dr_a, dz_a, dn_a, dh = gru_step_point_backward(dh_t[n, j], r, gates[n, H + j],
                                                  gates[n, 2 * H + j], ha_n[n, j],
                                                  h_prev[n, j], one)
        dxa[n, j], dxa[n, H + j], dxa[n, 2 * H + j] = dr_a, dz_a, dn_a
        dha[n, j], dha[n, H + j], dha[n, 2 * H + j] = dr_a, dz_a, dn_a * r
        dh_direct[n, j] = dh


def lstm_step_pointwise_forward(a, c_prev):
    """a (B, 4H), c_prev (B, H) -> h_t (B, H), c_t (B, H), gates [i f g o] (B, 4H)."""
    a, c_prev = _on_device(a, c_prev)
    h_t, c_t, gates = _empty(c_prev.shape, a), _empty(c_prev.shape, a), _empty(a.shape, a)
    _lstm_step_pointwise_forward_kernel[_launch_1d(c_prev.size)](a, c_prev, h_t, c_t, gates, _one(a))
    return h_t.copy_to_host(), c_t.copy_to_host(), gates.copy_to_host()


def lstm_step_pointwise_backward(dh_t, dc_t, gates, c_prev, c_t):
    """-> da (B, 4H), dc_prev (B, H)."""
    dh_t, dc_t, gates, c_prev, c_t = _on_device(dh_t, dc_t, gates, c_prev, c_t)
    da, dc_prev = _empty(gates.shape, gates), _empty(c_prev.shape, gates)
    _lstm_step_pointwise_backward_kernel[_launch_1d(c_prev.size)](dh_t, dc_t, gates, c_prev, c_t,
                                                         da, dc_prev, _one(gates))
    return da.copy_to_host(), dc_prev.copy_to_host()


def gru_step_pointwise_forward(xa, ha, h_prev):
    """xa, ha (B, 3H), h_prev (B, H) -> h_t (B, H), gates [r z n] (B, 3H), ha_n (B, H)."""
    xa, ha, h_prev = _on_device(xa, ha, h_prev)
    h_t, gates, ha_n = _empty(h_prev.shape, xa), _empty(xa.shape, xa), _empty(h_prev.shape, xa)
    _gru_step_pointwise_forward_kernel[_launch_1d(h_prev.size)](xa, ha, h_prev, h_t, gates, ha_n, _one(xa))
    return h_t.copy_to_host(), gates.copy_to_host(), ha_n.copy_to_host()


def gru_step_pointwise_backward(dh_t, gates, ha_n, h_prev):
    """-> dxa (B, 3H), dha (B, 3H), dh_prev_direct (B, H)."""
    dh_t, gates, ha_n, h_prev = _on_device(dh_t, gates, ha_n, h_prev)
    dxa, dha, dh = _empty(gates.shape, gates), _empty(gates.shape, gates), _empty(h_prev.shape, gates)
    _gru_step_pointwise_backward_kernel[_launch_1d(h_prev.size)](dh_t, gates, ha_n, h_prev,
                                                        dxa, dha, dh, _one(gates))
    return dxa.copy_to_host(), dha.copy_to_host(), dh.copy_to_host()


def sigmoid(a):
    """1 / (1 + e^-a) elementwise (a map kernel)."""
    return elementwise_map(sigmoid_scalar, a).copy_to_host()


def rnn_step_pointwise_forward(a, nonlinearity):
    """h_t = tanh(a) or relu(a) elementwise (a map kernel)."""
    return elementwise_map(relu_scalar if nonlinearity == "relu" else tanh_scalar, a).copy_to_host()


def rnn_step_pointwise_backward(dh_t, h_t, relu):
    """da = dh_t * (1 - h_t^2), or dh_t * [h_t > 0] for relu (a zip kernel)."""
    return elementwise_zip(relu_grad_scalar if relu else tanh_grad_scalar, dh_t, h_t).copy_to_host()


# --------------------------------------------------------------------------
# 5. Persistent whole-sequence kernels: one launch for all T steps
# --------------------------------------------------------------------------
#
# Thread k of the grid owns the hidden units (n, j) = divmod(idx, H) for
# idx = k, k + gridsize, ... < B*H. Shapes: xa (T, B, G*H), hs and cs
# (T+1, B, H) with hs[0] = h_0 filled in by the host, out (T, B, H),
# W_hhT = W_hh^T (H, G*H), lengths (B,). At a padded step (t >= L_n) the
# state is carried, out is 0, and gates / gradients are 0.
#
# The six kernels repeat one skeleton (loop over t, loop over the thread's units,
# a padded-step branch, a grid barrier) on purpose: every line inside it reads or
# writes a different set of gates per cell, and numba.cuda kernels take fixed
# argument lists, so a shared skeleton would hide the cell behind per-cell
# adapters without removing any of those lines.

@cuda.jit
def _lstm_forward_kernel(xa, b, W_hhT, lengths, hs, cs, gates, out, one):
    T, B, H = out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            n, j = idx // H, idx % H
            if t < lengths[n]:
                h = hs[t, n]
                i, f, g, o, c_t, h_t = lstm_step_point_forward(
                    xa[t, n, j] + b[j] + dot_column(h, W_hhT, j, one),
                    xa[t, n, H + j] + b[H + j] + dot_column(h, W_hhT, H + j, one),
                    xa[t, n, 2 * H + j] + b[2 * H + j] + dot_column(h, W_hhT, 2 * H + j, one),
                    xa[t, n, 3 * H + j] + b[3 * H + j] + dot_column(h, W_hhT, 3 * H + j, one),
                    cs[t, n, j], one)
            else:
                i = f = g = o = zero
                c_t, h_t = cs[t, n, j], hs[t, n, j]
            gates[t, n, j], gates[t, n, H + j], gates[t, n, 2 * H + j], gates[t, n, 3 * H + j] = i, f, g, o
            cs[t + 1, n, j], hs[t + 1, n, j] = c_t, h_t
            out[t, n, j] = h_t if t < lengths[n] else zero
        grid.sync()                         # all of h_t written before anyone reads it


@cuda.jit
def _lstm_backward_kernel(d_out, dh, dc, W_hh, lengths, cs, gates, da, one):
    """dh, dc (B, H) come in as d_h_n, d_c_n and leave as dh_0, dc_0."""
    T, B, H = d_out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T - 1, -1, -1):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):    # phase 1: da_t
            n, j = idx // H, idx % H
            if t < lengths[n]:
                da_i, da_f, da_g, da_o, dc_prev = lstm_step_point_backward(
                    dh[n, j] + d_out[t, n, j], dc[n, j], gates[t, n, j], gates[t, n, H + j],
                    gates[t, n, 2 * H + j], gates[t, n, 3 * H + j], cs[t, n, j], cs[t + 1, n, j], one)
                dc[n, j] = dc_prev
            else:
                da_i = da_f = da_g = da_o = zero
            da[t, n, j], da[t, n, H + j], da[t, n, 2 * H + j], da[t, n, 3 * H + j] = da_i, da_f, da_g, da_o
        grid.sync()                         # all of da_t written before phase 2 reads it
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):    # phase 2: dh_{t-1}
            n, j = idx // H, idx % H
            if t < lengths[n]:
                dh[n, j] = dot_column(da[t, n], W_hh, j, one)


@cuda.jit
def _gru_forward_kernel(xa, b_ih, b_hh, W_hhT, lengths, hs, gates, ha_n, out, one):
    T, B, H = out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            n, j = idx // H, idx % H
            if t < lengths[n]:
                h = hs[t, n]
                hn = dot_column(h, W_hhT, 2 * H + j, one) + b_hh[2 * H + j]
                r, z, n_t, h_t = gru_step_point_forward(
                    xa[t, n, j] + b_ih[j], xa[t, n, H + j] + b_ih[H + j],
                    xa[t, n, 2 * H + j] + b_ih[2 * H + j],
                    dot_column(h, W_hhT, j, one) + b_hh[j],
                    dot_column(h, W_hhT, H + j, one) + b_hh[H + j], hn, hs[t, n, j], one)
            else:
                r = z = n_t = hn = zero
                h_t = hs[t, n, j]
            gates[t, n, j], gates[t, n, H + j], gates[t, n, 2 * H + j] = r, z, n_t
            ha_n[t, n, j] = hn
            hs[t + 1, n, j] = h_t
            out[t, n, j] = h_t if t < lengths[n] else zero
        grid.sync()


@cuda.jit
def _gru_backward_kernel(d_out, dh, W_hh, lengths, hs, gates, ha_n, dxa, dha, one):
    T, B, H = d_out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T - 1, -1, -1):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):    # phase 1: dxa_t, dha_t
            n, j = idx // H, idx % H
            if t < lengths[n]:
                r = gates[t, n, j]
                dr_a, dz_a, dn_a, dh_direct = gru_step_point_backward(
                    dh[n, j] + d_out[t, n, j], r, gates[t, n, H + j], gates[t, n, 2 * H + j],
                    ha_n[t, n, j], hs[t, n, j], one)
                dh[n, j] = dh_direct                                # phase 2 adds dha_t W_hh
                dhn_a = dn_a * r
            else:
                dr_a = dz_a = dn_a = dhn_a = zero
            dxa[t, n, j], dxa[t, n, H + j], dxa[t, n, 2 * H + j] = dr_a, dz_a, dn_a
            dha[t, n, j], dha[t, n, H + j], dha[t, n, 2 * H + j] = dr_a, dz_a, dhn_a
        grid.sync()
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):    # phase 2: + dha_t W_hh
            n, j = idx // H, idx % H
            if t < lengths[n]:
                dh[n, j] += dot_column(dha[t, n], W_hh, j, one)


@cuda.jit
def _rnn_forward_kernel(xa, b, W_hhT, lengths, hs, out, relu, one):
    T, B, H = out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            n, j = idx // H, idx % H
            if t < lengths[n]:
                h_t = rnn_step_point_forward(xa[t, n, j] + b[j] + dot_column(hs[t, n], W_hhT, j, one),
                                        relu, one)
                out[t, n, j] = h_t
            else:
                h_t = hs[t, n, j]
                out[t, n, j] = zero
            hs[t + 1, n, j] = h_t
        grid.sync()


@cuda.jit
def _rnn_backward_kernel(d_out, dh, W_hh, lengths, hs, da, relu, one):
    T, B, H = d_out.shape
    zero = one - one
    grid = cuda.cg.this_grid()
    for t in range(T - 1, -1, -1):
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            n, j = idx // H, idx % H
            if t < lengths[n]:
                da[t, n, j] = rnn_step_point_backward(dh[n, j] + d_out[t, n, j], hs[t + 1, n, j], relu, one)
            else:
                da[t, n, j] = zero
        grid.sync()
        for idx in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            n, j = idx // H, idx % H
            if t < lengths[n]:
                dh[n, j] = dot_column(da[t, n], W_hh, j, one)


def _max_resident_blocks(kernel, args, threads):
    """How many blocks of `kernel` fit on the GPU at once (a grid barrier needs them all running)."""
    if SIMULATOR:
        return 1                        # the simulator runs a cooperative grid as one block
    argtypes = tuple(kernel.typeof_pyval(a) for a in args)
    return kernel.compile(argtypes).max_cooperative_grid_blocks(threads)


def _launch_persistent(kernel, B, H, *args):
    """Launch `kernel` once for the whole sequence, on a grid no larger than fits at once."""
    blocks, threads = _launch_1d(B * H)
    kernel[min(blocks, _max_resident_blocks(kernel, args, threads)), threads](*args)


def _input_projection(x, W_ih):
    """xa = x W_ih^T for all T steps in one matmul: x (T, B, I) -> (T, B, G*H), on the device."""
    T, B, I = x.shape
    return device_matmul(x.reshape(T * B, I), W_ih, trans_b=True).reshape(T, B, W_ih.shape[0])


def _states(h0, T):
    """A device array (T+1, B, H) for h_0..h_T with h_0 copied in."""
    hs = cuda.device_array((T + 1,) + h0.shape, h0.dtype)
    hs[0].copy_to_device(np.ascontiguousarray(h0))
    return hs


def _weight_grads(dxa, dha, x, hs, W_ih):
    """dx, dW_ih, dW_hh, db_ih, db_hh as single products over all steps, copied to the host.

    dxa, dha (T, B, G*H): gradients of the input and of the recurrent
    pre-activations (one array for LSTM and RNN; GRU's differ), hs (T+1, B, H)
    the states h_0..h_T. Each product sums over all T*B rows at once, e.g.
    dW_hh = sum_t dha_t^T h_{t-1}.
    """
    T, B, GH = dxa.shape
    dxa2, dha2 = dxa.reshape(T * B, GH), dha.reshape(T * B, GH)
    dx = device_matmul(dxa2, W_ih).reshape(T, B, W_ih.shape[1])
    dW_ih = device_matmul(dxa2, x.reshape(T * B, x.shape[2]), trans_a=True)
    dW_hh = device_matmul(dha2, hs[:T].reshape(T * B, hs.shape[2]), trans_a=True)
    return _host(dx, dW_ih, dW_hh, sum_rows(dxa2), sum_rows(dha2))


def _host(*arrays):
    return tuple(a.copy_to_host() for a in arrays)


# --------------------------------------------------------------------------
# 6. The reference's sequence functions
# --------------------------------------------------------------------------

def lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, c_n, saved (device arrays, the reference's layout)"""
    T, B, _ = x.shape
    H = h0.shape[1]
    lengths = full_lengths(lengths, T, B)
    x_d, W_ih_d, W_hh_d, W_hhT, b, lengths_d = _on_device(x, W_ih, W_hh, W_hh.T, b_ih + b_hh, lengths)
    xa = _input_projection(x_d, W_ih_d)
    hs, cs = _states(h0, T), _states(c0, T)
    gates = cuda.device_array((T, B, 4 * H), x.dtype)
    out = cuda.device_array((T, B, H), x.dtype)
    _launch_persistent(_lstm_forward_kernel, B, H, xa, b, W_hhT, lengths_d, hs, cs, gates, out, _one(x))
    return (*_host(out, hs[T], cs[T]), (x_d, W_ih_d, W_hh_d, lengths_d, hs, cs, gates))


def lstm_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh"""
    x, W_ih, W_hh, lengths, hs, cs, gates = saved
    _, B, H = d_out.shape
    d_out, dh, dc = _on_device(d_out, d_hn, d_cn)
    da = cuda.device_array(gates.shape, gates.dtype)
    _launch_persistent(_lstm_backward_kernel, B, H, d_out, dh, dc, W_hh, lengths, cs, gates, da,
                       _one(gates))
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(da, da, x, hs, W_ih)
    return dx, dh.copy_to_host(), dc.copy_to_host(), dW_ih, dW_hh, db_ih, db_hh


def gru_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, saved"""
    T, B, _ = x.shape
    H = h0.shape[1]
    lengths = full_lengths(lengths, T, B)
    x_d, W_ih_d, W_hh_d, W_hhT, b_ih, b_hh, lengths_d = _on_device(x, W_ih, W_hh, W_hh.T,
                                                                   b_ih, b_hh, lengths)
    xa = _input_projection(x_d, W_ih_d)
    hs = _states(h0, T)
    gates = cuda.device_array((T, B, 3 * H), x.dtype)
    ha_n = cuda.device_array((T, B, H), x.dtype)
    out = cuda.device_array((T, B, H), x.dtype)
    _launch_persistent(_gru_forward_kernel, B, H, xa, b_ih, b_hh, W_hhT, lengths_d, hs, gates, ha_n,
                       out, _one(x))
    return (*_host(out, hs[T]), (x_d, W_ih_d, W_hh_d, lengths_d, hs, gates, ha_n))


def gru_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh

    Two pre-activation gradients per step, dxa and dha (see the reference).
    """
    x, W_ih, W_hh, lengths, hs, gates, ha_n = saved
    _, B, H = d_out.shape
    d_out, dh = _on_device(d_out, d_hn)
    dxa = cuda.device_array(gates.shape, gates.dtype)
    dha = cuda.device_array(gates.shape, gates.dtype)
    _launch_persistent(_gru_backward_kernel, B, H, d_out, dh, W_hh, lengths, hs, gates, ha_n, dxa, dha,
                       _one(gates))
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(dxa, dha, x, hs, W_ih)
    return dx, dh.copy_to_host(), dW_ih, dW_hh, db_ih, db_hh


def rnn_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh"):
    """-> out (T, B, H), h_n, saved"""
    T, B, _ = x.shape
    H = h0.shape[1]
    lengths = full_lengths(lengths, T, B)
    relu = nonlinearity == "relu"
    x_d, W_ih_d, W_hh_d, W_hhT, b, lengths_d = _on_device(x, W_ih, W_hh, W_hh.T, b_ih + b_hh, lengths)
    xa = _input_projection(x_d, W_ih_d)
    hs = _states(h0, T)
    out = cuda.device_array((T, B, H), x.dtype)
    _launch_persistent(_rnn_forward_kernel, B, H, xa, b, W_hhT, lengths_d, hs, out, relu, _one(x))
    return (*_host(out, hs[T]), (x_d, W_ih_d, W_hh_d, lengths_d, hs, np.array(relu)))


def rnn_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    x, W_ih, W_hh, lengths, hs, relu = saved
    T, B, H = d_out.shape
    d_out, dh = _on_device(d_out, d_hn)
    da = cuda.device_array((T, B, H), hs.dtype)
    _launch_persistent(_rnn_backward_kernel, B, H, d_out, dh, W_hh, lengths, hs, da, bool(relu),
                       _one(hs))
    dx, dW_ih, dW_hh, db_ih, db_hh = _weight_grads(da, da, x, hs, W_ih)
    return dx, dh.copy_to_host(), dW_ih, dW_hh, db_ih, db_hh

