"""Numba CPU kernels: the sequence functions of ``reference.py``, compiled with ``@njit``.

Same names, same signatures, same results (to float rounding). The pointwise
math of one step is written once per cell as a row function (``_lstm_step_row``
...: one sequence of the batch, one step), called from that cell's time loop.
One step needs no kernel of its own: ``tinygrad_rnn.fused`` runs it as a
sequence of length T = 1. Timings are in benchmarks/README.md.

What makes them fast:

- the whole time loop runs inside one compiled function (no Python per
  step); the product of each step goes to BLAS through ``np.dot`` (Numba
  calls SciPy's BLAS), to its direct kernel, which packs nothing: in row
  blocks small enough, and for a big right factor in tiles of 64 columns
  (``_product``), laid out once per call, each on a cache line
  (``_right_factors``);
- the LSTM and the RNN make all of a step's pre-activations in one product,
  a_t = [x_t | h_{t-1} | 1] [W_ih | W_hh | b]^T (section "One product a
  step"); the GRU projects the input of all T steps in one product before
  the time loop (its reset gate scales only the state's part of its
  candidate, so its two parts cannot be one product);
- all cores: the sequences of a batch are independent, so each core runs the
  whole time loop for its own rows of the batch, and the products over all
  steps' rows are cut the same way (``threads.in_parallel``). When a step's
  product is too big for BLAS's direct kernel, the LSTM's loop is cut by
  hidden units instead, the threads meeting once a step (``threads.together``,
  see `_lstm_seq_forward`). The kernels
  release the GIL (``nogil=True``) and run on a team of Python threads that
  spin while they wait; meanwhile BLAS is held to one thread, once for
  each forward or backward (``@one_blas_thread()``). Not
  ``parallel=True``: Numba's default thread pool (workqueue) cannot be
  entered from two Python threads at once;
- the pointwise math of a step is one loop over the hidden units j, the
  equations written as in the reference, which LLVM turns into SIMD code;
- every activation is a sigmoid, tanh(v) = 2 sigmoid(2v) - 1: one exp per
  activation and nothing else transcendental;
- in float32, exp is ``_exp_float32``, written with arithmetic only: without
  a vector math library in LLVM a loop calling ``np.exp`` stays a scalar libm
  call per element, while the arithmetic version vectorizes (max relative
  error 3e-7; NumPy's float32 exp: 2e-7). float64 keeps ``np.exp``; ``exp``,
  ``sigmoid`` and ``tanh`` pick by the value's type when a kernel is compiled;
- every array with a T axis is allocated by NumPy in the Python wrapper, and
  what forward saves for backward is one block (``_empty_arrays``); big blocks
  are kept and handed out again once nothing refers to them (``_block``), so
  big arrays are not page-faulted afresh on every call;
- backward finds the pre-activation gradients ``da`` of all steps, then the
  weight gradients are products over all steps (dW_hh = sum_t da_t^T h_{t-1};
  for the LSTM and the RNN all of W at once, dW = sum_t da_t^T z_t);
- fast-math flags, ``error_model="numpy"`` (no division checks) and
  ``cache=True`` (compile once per machine). The flags are all of fastmath's
  except "nnan" and "ninf": with those, LLVM assumes exp never overflows and
  float32 sigmoid(-100) comes out NaN;
- constants are made in the array's dtype (``one = x.dtype.type(1)``) so
  float32 stays float32 end to end.

Each cell has its own time loop (``_lstm_forward``, ``_gru_forward`` ...), the
same shape on purpose: Numba caches compiled code (``cache=True``) only for
functions defined at module level, so one loop built by a factory around each
cell's row function would be compiled afresh in every new process.
"""
import itertools
import math
import os
import sys
import threading

import numpy as np
from numba import njit, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .reference import full_lengths
from .threads import barrier, in_parallel, one_blas_thread, split, thread_count, together

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}   # fastmath=True minus nnan, ninf
OPTIONS = dict(fastmath=FASTMATH, error_model="numpy")
jit = njit(cache=True, nogil=True, **OPTIONS)


# --------------------------------------------------------------------------
# Activations of one value, in its own precision
# --------------------------------------------------------------------------

LOG2_E = np.float32(1.4426950408889634)                    # 1 / ln 2
LN2_HIGH = np.float32(0.693359375)                         # ln 2 = LN2_HIGH + LN2_LOW, where LN2_HIGH has
LN2_LOW = np.float32(-2.12194440e-4)                       # 9 significant bits: k * LN2_HIGH is exact
EXP_MIN, EXP_MAX = np.float32(-87.0), np.float32(88.0)     # 2^k stays a normal float32: -126 <= k <= 127
EXP_POLY = tuple(np.float32(c) for c in (5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2,
                                          8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4))


@jit
def _exp_float32(v):
    """exp(v) for a float32 v, from + - * only, so that a loop calling it vectorizes.

    Write v = k ln2 + r with k an integer and |r| <= ln2 / 2. Then

        exp(v) = 2^k * exp(r)

    - k = round(v / ln2) = floor(v * log2(e) + 1/2);
    - r = v - k ln2, computed as (v - k * LN2_HIGH) - k * LN2_LOW (Cody and
      Waite): LN2_HIGH holds the first 9 bits of ln 2, so k * LN2_HIGH is exact
      for |k| < 2^15 and the subtraction loses nothing; LN2_LOW is the rest;
    - exp(r) = 1 + r + r^2 p(r) on the small interval |r| <= 0.347, with p a
      degree-5 polynomial fitted to (exp(r) - 1 - r) / r^2 (Cephes' expf
      coefficients EXP_POLY), evaluated by Horner's rule;
    - 2^k is made from its bits: a float32 is sign | 8 exponent bits with
      bias 127 | 23 mantissa bits, so the int32 (k + 127) << 23 read as a
      float32 (``.view(np.float32)``) is exactly 2^k.

    v is first clamped to [EXP_MIN, EXP_MAX], where 2^k is a normal float:
    exp(88) = 1.7e38 stands in for overflow, which is all a sigmoid needs
    (1 / (1 + 1.7e38) = 5.9e-39, the true value of sigmoid(-88) to 1 ulp).
    Max relative error on [-87, 88]: 3.0e-7 (NumPy's float32 exp: 2.0e-7).
    """
    c0, c1, c2, c3, c4, c5 = EXP_POLY
    one, half = np.float32(1), np.float32(0.5)
    x = min(max(v, EXP_MIN), EXP_MAX)
    k = np.floor(x * LOG2_E + half)
    r = (x - k * LN2_HIGH) - k * LN2_LOW
    p = ((((c5 * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
    two_to_k = np.int32((np.int32(k) + 127) << 23).view(np.float32)
    return (one + r + r * r * p) * two_to_k


def exp(v):
    """exp(v) in v's precision: `_exp_float32` for float32, np.exp otherwise (@jit code only).

    Without a vector math library in LLVM a loop calling ``np.exp`` stays a
    scalar libm call per element, while the arithmetic version vectorizes.
    The choice is made from v's type when the caller is compiled.
    """
    raise TypeError("exp is for @jit code")


def sigmoid(v):
    """sigmoid(v) = 1 / (1 + exp(-v)) in v's precision (@jit code only)."""
    raise TypeError("sigmoid is for @jit code")


def tanh(v):
    """tanh(v) = 2 sigmoid(2v) - 1 in v's precision: one exp, like sigmoid (@jit code only)."""
    raise TypeError("tanh is for @jit code")


@overload(exp, jit_options=OPTIONS)
def _exp(v):
    if v == types.float32:
        return lambda v: _exp_float32(v)
    return lambda v: np.exp(v)


@overload(sigmoid, jit_options=OPTIONS)
def _sigmoid(v):
    one = as_dtype(v).type(1)                                   # a constant of v's dtype: float32 stays float32
    return lambda v: one / (one + exp(-v))


@overload(tanh, jit_options=OPTIONS)
def _tanh(v):
    one = as_dtype(v).type(1)
    two = one + one
    return lambda v: two * sigmoid(two * v) - one


# --------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------

@jit
def _matmul(a, b):
    return np.dot(a, b)


def matmul(a, b):
    """c = a @ b for 2-D arrays."""
    return _matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))


@jit
def _project(x, W, out, lo, hi):
    """out[lo:hi] = x[lo:hi] W^T for 2-D x: the input projection of rows lo..hi-1 of all steps' rows (T B)."""
    np.dot(x[lo:hi], W.T, out[lo:hi])


SMALL_PRODUCT = 10 ** 6      # multiply-adds up to which OpenBLAS multiplies directly, without packing (M N K <= 10^6)
DIRECT_MIN_ROWS = 8          # rows a block of the direct kernel needs to beat one packed product
TILE = 64                    # columns of the right factor in one direct product: 4 cache lines of float32


@jit
def _product(a, tiles, out, width):
    """out = a @ F for a (M, K) and the right factor F (K, N) of one step's product, as
    `_right_factors` lays it out: tiles[j] holds F's columns j width .. (j + 1) width - 1 as a
    (K, w) array, flattened; with width 0, tiles[0] holds F^T (N, K).

    Before a product BLAS copies ("packs") F into buffers laid out for its
    inner kernel, on every call; for one step of a small batch that copy
    costs as much as the multiplying. OpenBLAS multiplies a product of at
    most SMALL_PRODUCT multiply-adds by a direct kernel that packs nothing.
    So F is cut into tiles of a few columns (`_tile_width`), once per call,
    and each tile multiplies the step's rows in blocks small enough for the
    direct kernel, each with at least DIRECT_MIN_ROWS rows. When K is too
    large for a tile: one packed product, a @ (F^T)^T, the orientation
    OpenBLAS packs fastest. Figures in benchmarks/README.md.
    """
    (M, K), N = a.shape, out.shape[1]
    if width == 0:
        np.dot(a, tiles[0, :N * K].reshape(N, K).T, out)
        return
    blocks = max(1, -(-M // (SMALL_PRODUCT // max(1, K * width))))  # of rows, each small enough
    size = max(1, -(-M // blocks))                                  # and of equal size
    tiled = width < N                                               # else one tile, written into out
    whole = np.empty((M, width), out.dtype) if tiled else out       # np.dot writes a contiguous array,
    rest = np.empty((M, N % width), out.dtype) if tiled else out    # not a few columns of out
    for c0 in range(0, N, width):
        w = min(width, N - c0)
        F = tiles[c0 // width, :K * w].reshape(K, w)
        part = whole if w == width else rest
        for r in range(0, M, size):
            np.dot(a[r:r + size], F, part[r:r + size])
        if tiled:
            out[:, c0:c0 + w] = part


def _tile_width(K, N):
    """The columns of a tile of a right factor (K, N) in `_product`: all N when DIRECT_MIN_ROWS rows
    of the whole product fit BLAS's direct kernel (`_direct`), else TILE if they do; 0 when not
    (K > 1,953): then one packed product (narrower tiles ran no faster than it). For a factor cut
    over threads, N is the widest block's."""
    for width in (max(1, N), TILE):
        if width <= max(1, N) and DIRECT_MIN_ROWS * width * K <= SMALL_PRODUCT:
            return width
    return 0


def _direct(K, N):
    """Does one direct product of DIRECT_MIN_ROWS rows take the whole right factor (K, N)?"""
    return _tile_width(K, N) == max(1, N)


def _widest(blocks):
    """The widest thread's number of columns (see `_right_factors`)."""
    return max(sum(c1 - c0 for c0, c1 in ranges) for ranges in blocks)


def _cut(bounds):
    """Thread k's columns c_k..c_{k+1}-1 of a cut (bounds c_0 < c_1 < ...), as `_right_factors` takes them."""
    edges = bounds.tolist()
    return [[(c0, c1)] for c0, c1 in zip(edges, edges[1:])]


def _right_factors(F, blocks):
    """-> (factors, width): the right factor F (K, N) of a step's product, cut into the threads'
    blocks and tiled as `_product` takes it. blocks[k] lists thread k's column ranges (c0, c1) of F,
    which its block puts side by side; factors[k] holds that block in tiles of `width` columns
    (`_tile_width` of the widest block), each a (K, w) array flattened, or with width 0 the block's
    transpose in one tile.

    Every tile starts on a 64-byte boundary (a cache line, one AVX-512
    vector). BLAS's kernels load the factor a vector at a time; off the
    boundary, a vector straddles two cache lines and costs two loads, and
    the step products run up to a third slower (benchmarks/README.md).
    """
    K, line, widest = F.shape[0], 64 // F.itemsize, _widest(blocks)
    width = _tile_width(K, widest)
    tiles, columns = (-(-widest // width), width) if width else (1, widest)
    (factors,) = _empty_arrays(F.dtype, (len(blocks), max(1, tiles), -(-K * columns // line) * line))
    for thread, ranges in zip(factors, blocks):
        for tile, pieces in zip(thread, _tiles(ranges, width) if width else [ranges]):
            w = sum(c1 - c0 for c0, c1 in pieces)
            target, start = tile[:K * w].reshape((K, w) if width else (w, K)), 0
            for c0, c1 in pieces:
                part = F[:, c0:c1] if width else F[:, c0:c1].T
                _copy(part, target[:, start:start + c1 - c0] if width else target[start:start + c1 - c0])
                start += c1 - c0
    return factors, width


def _tiles(ranges, width):
    """The column ranges (c0, c1) of F that each tile of `width` columns holds, for a block made of
    `ranges` side by side (a tile may take the end of one range and the start of the next)."""
    tiles, pieces, room = [], [], width
    for c0, c1 in ranges:
        while c0 < c1:
            take = min(room, c1 - c0)
            pieces.append((c0, c0 + take))
            c0, room = c0 + take, room - take
            if room == 0:
                tiles.append(pieces)
                pieces, room = [], width
    return tiles + [pieces] if pieces else tiles


def _copy(part, target):
    """target[...] = part: as it is when their rows are stored alike, else in bands (`_transposed`)."""
    if part.strides[1] == part.itemsize:
        target[...] = part
    else:
        _transposed(part.T, out=target)


def _transposed(W, out=None, band=64):
    """W^T as a C-contiguous array (new, or written into `out`), made a band of W's rows at a time.

    NumPy copies a whole transposed view of a large W in an order that misses
    the cache on most elements; a band of rows and its columns fit in the cache.
    """
    W_t = np.empty(W.shape[::-1], W.dtype) if out is None else out
    for r in range(0, W.shape[0], band):
        W_t[:, r:r + band] = W[r:r + band].T
    return W_t


@jit
def _weight_grads(dxa, dha, x, h, W_ih, dx, lo, hi):
    """Rows lo..hi-1 of all steps' rows (T B) of dx = dxa W_ih (written in place), and their part of
    dW_ih = sum dxa^T x, dW_hh = sum dha^T h_{t-1}, db = sum dxa (see reference); the caller adds the parts.

    dxa, dha (T B, GH) are the gradients of the input's and the hidden part's pre-activations:
    two arrays for the GRU, whose reset gate makes them differ (the LSTM and the RNN take dW in one
    product instead: `_stacked_weight_grads`). x (T B, I), h (T B, H) holds h_{t-1} of every row.
    """
    dxa, dha = dxa[lo:hi], dha[lo:hi]
    np.dot(dxa, W_ih, dx[lo:hi])
    return np.dot(dxa.T, x[lo:hi]), np.dot(dha.T, h[lo:hi]), _column_sums(dxa)


@jit
def _column_sums(a):
    """a.sum(axis=0) of a 2-D array, adding whole rows (a loop that vectorizes, unlike Numba's axis sum)."""
    sums = np.zeros(a.shape[1], a.dtype)
    for row in a:
        sums += row
    return sums


def _weight_grads_over_steps(dxa, dha, x, hs, W_ih, dx):
    """dx (T, B, I) written in place, and dW_ih, dW_hh, db as products over all steps' rows (see `_weight_grads`)."""
    (T, B, GH), I, H = dxa.shape, x.shape[2], hs.shape[2]
    parts = in_parallel(_weight_grads, T * B, T * B * GH * (2 * I + H), dxa.reshape(T * B, GH),
                        dha.reshape(T * B, GH), x.reshape(T * B, I), hs[:T].reshape(T * B, H), W_ih,
                        dx.reshape(T * B, I))
    return _added_over_threads(parts)


def _added_over_threads(parts):
    """Sums over all steps' rows from each thread's part (a tuple of new arrays per thread):
    the other threads' parts added in place into the first thread's."""
    sums, *others = parts
    for other in others:
        for total, term in zip(sums, other):
            total += term
    return sums


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------

def _empty_arrays(dtype, *shapes):
    """Uninitialized arrays of the given shapes, views of one block (see `_block`).

    Every array with a T axis is made in the Python wrapper, not inside @njit:
    made there (Numba's allocator: plain malloc), or one by one, big arrays
    page-faulted afresh on most calls, because glibc hands big freed blocks back
    to the OS and each 4 kB page is then faulted in and zeroed again on first
    touch. NumPy asks Linux for huge pages (2 MB) for blocks of 4 MB and more,
    so one block for the arrays that live and die together (what forward saves
    for backward; backward's scratch) faults up to 512 times less. ``out`` and
    ``dx``, which go back to the caller, each get a block of their own, so that
    keeping one does not keep the others' block in use.
    Each array starts on a 64-byte boundary (a cache line, one AVX-512 vector).
    """
    line = 64 // np.dtype(dtype).itemsize
    sizes = [math.prod(shape) for shape in shapes]
    starts = [0, *itertools.accumulate(-(-size // line) * line for size in sizes)]
    block = _block(np.dtype(dtype), starts[-1] + line)
    first = (-block.ctypes.data // block.itemsize) % line            # the first aligned element
    return [block[first + start:first + start + size].reshape(shape)
            for start, size, shape in zip(starts, sizes, shapes)]


POOL_SIZE = 16                # big blocks kept for the next calls: 4 per layer and direction (forward's,
                              # out, backward's, dx), for 4 of them
POOL_MIN_BYTES = 1 << 22      # from 4 MB: the blocks NumPy asks huge pages for


class _Pool:
    """The big blocks kept; `lock` makes finding a free one and handing it out one step."""
    lock = threading.Lock()
    blocks = []


def _block(dtype, size):
    """A 1-D array of `size` elements of `dtype`: a kept block that nothing uses any more, or a new one.

    A big block freed at the end of one call goes back to the OS, and the next
    call's block of the same size is faulted in and zeroed again (the first
    few times also waiting while Linux compacts memory to find huge pages). So
    the last POOL_SIZE blocks of POOL_MIN_BYTES or more are kept and handed out
    again once free. Every array made from a block refers to it (its ``base``),
    whoever holds that array: what forward saved for backward, an h_n
    the user kept. So a block is free exactly when it has no references but the
    pool's own, and a block in use is never handed out twice.
    """
    with _Pool.lock:
        for block in _Pool.blocks:
            if block.size == size and block.dtype == dtype and sys.getrefcount(block) <= _UNUSED:
                return block
        block = np.empty(size, dtype)
        if block.nbytes >= POOL_MIN_BYTES:
            _Pool.blocks = _Pool.blocks[1 - POOL_SIZE:] + [block]
        return block


def _after_fork_in_child():
    """A child forked while another thread was taking a block inherits a held lock; it starts afresh."""
    _Pool.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _references_of_an_unused_block():
    """sys.getrefcount of a block that only the pool refers to, counted from a loop like
    `_block`'s (the list's reference, the loop variable's, the call's): measured, not assumed."""
    for block in [np.empty(1)]:
        return sys.getrefcount(block)


_UNUSED = _references_of_an_unused_block()


def _prepare(x, *arrays, lengths):
    """C-contiguous arrays (BLAS and reshape need them) and int64 lengths (B,).

    Backward takes d_out as it comes: the time loops only read it, element by
    element, and the gradient of out.sum() is a broadcast view of one number
    that a contiguous copy would blow up to T B H values.
    """
    T, B = x.shape[:2]
    arrays = [np.ascontiguousarray(a) for a in (x,) + arrays]
    return arrays + [full_lengths(lengths, T, B)]


# --------------------------------------------------------------------------
# One product a step: z_t = [x_t | h_{t-1} | 1]  (LSTM and RNN)
# --------------------------------------------------------------------------
#
# One product a step makes the pre-activations of all gates, from the input, the state and
# the bias at once (the bias is the weight of an input that is always 1):
#
#     z_t = [x_t | h_{t-1} | 1]        (B, K), K = I + P + 1 (P = H without a projection)
#     W   = [W_ih | W_hh | b]          (G H, K), b = b_ih + b_hh
#     a_t = z_t W^T                    (B, G H)
#
# and backward runs it the other way round:
#
#     [dx_t | dh_{t-1}] = da_t [W_ih | W_hh]         one product a step
#     dW = sum_t da_t^T z_t                           one product over all steps' rows;
#                                                     its column blocks are dW_ih, dW_hh, db
#
# The GRU cannot: its reset gate scales only the state's part of its candidate.

def _stacked_weights(W_ih, W_hh, b, units, gates):
    """W = [W_ih | W_hh | b] (G H, K) of a cell with G `gates`, its gate axis (the rows) in thread
    order: the rows of each gate of thread k's units, thread after thread.

    The LSTM's thread k runs the hidden units units[k]..units[k+1]-1 of every
    sequence. With the rows of each thread side by side, the block of W it
    multiplies with is contiguous, and the row functions see an [i f g o]
    row of their own. The rows move as whole blocks (slices), in the one
    pass that stacks W. With one block of units (a loop cut by sequences)
    the two orders agree.
    """
    I, P = W_ih.shape[1], W_hh.shape[1]
    W = np.empty((W_ih.shape[0], I + P + 1), W_ih.dtype)
    for to, rows in _gate_blocks(units, gates):
        W[to, :I], W[to, I:I + P], W[to, I + P] = W_ih[rows], W_hh[rows], b[rows]
    return W


def _gate_blocks(units, gates):
    """The gate axis's blocks, thread after thread: for each thread's units j0..j1-1 and each gate
    (i, f, g, o for the LSTM), the slice of rows it takes in thread order and the slice
    gate * H + j0 .. gate * H + j1 - 1 of PyTorch's order."""
    bounds = units.tolist()
    H, start, blocks = bounds[-1], 0, []
    for j0, j1 in zip(bounds, bounds[1:]):
        for gate in range(gates):
            blocks.append((slice(start, start + j1 - j0), slice(gate * H + j0, gate * H + j1)))
            start += j1 - j0
    return blocks


@jit
def _stacked_weight_grads_part(da, z, lo, hi):
    """Rows lo..hi-1's part of dW = sum_t da_t^T z_t over all steps' rows (T B): da (T B, G H), z (T B, K)."""
    return (np.dot(da[lo:hi].T, z[lo:hi]),)


def _stacked_weight_grads(da, zs):
    """dW = sum_t da_t^T z_t (G H, K) for W = [W_ih | W_hh | b]: one product over all steps' rows,
    da (T, B, G H), zs (T + 1, B, K) holding z_t = [x_t | h_{t-1} | 1]. Its column blocks are
    dW_ih, dW_hh and db."""
    (T, B, G), K = da.shape, zs.shape[2]
    (dW,) = _added_over_threads(in_parallel(_stacked_weight_grads_part, T * B, T * B * G * K,
                                            da.reshape(T * B, G), zs[:T].reshape(T * B, K)))
    return dW


def _split_weight_grads(dW, I):
    """(dW_ih, dW_hh, db_ih, db_hh) from dW = [dW_ih | dW_hh | db] (I input columns): its column
    blocks, b_ih and b_hh both getting db (b = b_ih + b_hh), db_hh as a copy so that every input's
    gradient is an array of its own."""
    db = dW[:, -1]
    return dW[:, :I], dW[:, I:-1], db, db.copy()


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------

@jit
def _lstm_step_row(a, gates, c_prev, c, h):
    """One LSTM step of one sequence (see reference.lstm_step_pointwise_forward), one pass over j.

    a (4H,) = z_t W^T holds the pre-activations of the gates [i f g o]; writes the gates (4H,)
    and c, h (H,) from c_prev (H,).
    """
    H = c.size
    for j in range(H):
        i = sigmoid(a[j])
        f = sigmoid(a[H + j])
        g = tanh(a[2 * H + j])
        o = sigmoid(a[3 * H + j])
        c[j] = f * c_prev[j] + i * g
        h[j] = o * tanh(c[j])
        gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j] = i, f, g, o


@jit
def _block_of(bounds, k):
    """Thread k's block [lo, hi) of a dimension cut by `bounds`: its own if the dimension is cut over the
    threads (threads + 1 bounds), else the whole (2 bounds)."""
    i = k if bounds.size > 2 else 0
    return bounds[i], bounds[i + 1]


@jit
def _lstm_forward(x, h0, W_factors, tile, W_hr, lengths, rows, units, p_units, out, zs, cs, gates, cell_out,
                  arrived, k, _):
    """Thread k's part of the time loop (see `_lstm_seq_forward`): sequences r0..r1-1, their hidden units
    j0..j1-1 and, with a projection, output units p0..p1-1. Fills zs (T + 1, B, K) with z_t = [x_t | h_{t-1} | 1]
    (the state part of zs[T] is h_n), out (T, B, P), cs (T + 1, B, H) from cs[0] = c0, gates (T, B, 4H), and
    cell_out (T, B, H) = o * tanh(c_t) (with W_hr (P, H) not empty). The gate axis is in thread order
    (`_stacked_weights`).
    """
    T, I = x.shape[0], x.shape[2]
    K = zs.shape[2]
    (r0, r1), (j0, j1), (p0, p1) = _block_of(rows, k), _block_of(units, k), _block_of(p_units, k)
    g0, g1 = 4 * j0, 4 * j1                                             # this thread's gate columns
    shared = units.size > 2                                             # each step's h is made by all threads
    project = W_hr.shape[0] > 0
    # this thread's share of z's input and 1 columns: its sequences' rows, of all steps, or, when the
    # threads share every step, of its own block of steps
    threads = max(rows.size, units.size) - 1
    s0, s1 = (T * k // threads, T * (k + 1) // threads) if shared else (0, T)
    zs[s0:s1, r0:r1, :I] = x[s0:s1, r0:r1]
    zs[s0:s1, r0:r1, K - 1] = 1
    zs[0, r0:r1, I + p0:I + p1] = h0[r0:r1, p0:p1]
    waits = 0
    if shared:
        waits += 1
        barrier(arrived, k, waits)                                      # every z_t's input part complete
    W = W_factors[k if shared else 0]                                   # this thread's tiles: `_right_factors`
    a = np.empty((r1 - r0, g1 - g0), zs.dtype)                          # z_t W^T, this thread's part
    h_proj = np.empty((r1 - r0, p1 - p0), zs.dtype)                     # (o * tanh(c_t)) W_hr^T, its part
    for t in range(T):
        _product(zs[t, r0:r1], W, a, tile)
        for n in range(r0, r1):
            if t >= lengths[n]:                                         # padded: carry state
                zs[t + 1, n, I + p0:I + p1] = zs[t, n, I + p0:I + p1]
                cs[t + 1, n, j0:j1] = cs[t, n, j0:j1]
                out[t, n, p0:p1] = 0
                if project:
                    cell_out[t, n, j0:j1] = 0
                continue
            h = cell_out[t, n, j0:j1] if project else zs[t + 1, n, I + j0:I + j1]     # h_t
            _lstm_step_row(a[n - r0], gates[t, n, g0:g1], cs[t, n, j0:j1], cs[t + 1, n, j0:j1], h)
            if not project:
                out[t, n, j0:j1] = h
        if project:
            if shared:
                waits += 1
                barrier(arrived, k, waits)                              # cell_out[t] complete
            if p1 > p0:
                np.dot(cell_out[t, r0:r1], W_hr[p0:p1].T, h_proj)
            for n in range(r0, r1):
                if t < lengths[n]:
                    zs[t + 1, n, I + p0:I + p1] = h_proj[n - r0]
                    out[t, n, p0:p1] = h_proj[n - r0]
        if shared:
            waits += 1
            barrier(arrived, k, waits)                                  # h_t complete


@jit
def _lstm_step_row_backward(gates, c_prev, c, dh_t, dc, da):
    """Pre-activation gradients da (4H,) of one sequence's step (see reference.lstm_step_pointwise_backward).

    gates [i f g o] (4H,); c_prev, c (H,); dh_t (H,) = dh + d_out_t; dc (H,) is
    dc_t on entry and dc_{t-1} on exit. tanh(c_t) is recomputed, not saved.
    """
    H = c.size
    one = c.dtype.type(1)
    for j in range(H):
        i, f, g, o = gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j]
        tanh_c = tanh(c[j])
        dc_j = dc[j] + dh_t[j] * o * (one - tanh_c * tanh_c)
        da[j] = dc_j * g * i * (one - i)
        da[H + j] = dc_j * c_prev[j] * f * (one - f)
        da[2 * H + j] = dc_j * i * (one - g * g)
        da[3 * H + j] = dh_t[j] * tanh_c * o * (one - o)
        dc[j] = dc_j * f


@jit
def _lstm_backward(d_out, d_hn, d_cn, F_factors, tile, W_hr_t, lengths, rows, units, p_units, i_units, cs, gates,
                   da, dhs, dx, dh0, dc0, arrived, k, _):
    """Thread k's part of the time loop backward: sequences r0..r1-1, units j0..j1-1, output units p0..p1-1
    and input features i0..i1-1. Fills da (T, B, 4H) (gate axis in thread order, as gates), dx (T, B, I),
    with a projection dhs (T, B, P) = dh_t of every step, and dh0 (B, P), dc0 (B, H).
    F_factors: [W_ih | W_hh] cut by columns, thread k's block its input columns next to its state columns
    (see `_lstm_seq_backward`); W_hr_t (H, P) = W_hr^T."""
    T = d_out.shape[0]
    (r0, r1), (j0, j1) = _block_of(rows, k), _block_of(units, k)
    (p0, p1), (i0, i1) = _block_of(p_units, k), _block_of(i_units, k)
    g0, g1 = 4 * j0, 4 * j1
    inputs = i1 - i0
    shared = units.size > 2
    project = W_hr_t.shape[0] > 0
    W = F_factors[k if shared else 0]                                   # this thread's tiles: `_right_factors`
    dh = d_hn[r0:r1, p0:p1].copy()
    dc = d_cn[r0:r1, j0:j1].copy()
    dz = np.empty((r1 - r0, inputs + p1 - p0), da.dtype)                # [dx_t | dh_{t-1}], this thread's part
    d_cell = np.empty((r1 - r0, j1 - j0), da.dtype)                     # dh_t W_hr (with a projection)
    waits = 0
    for t in range(T - 1, -1, -1):
        if project:                                                     # d(o * tanh(c_t)) = dh_t W_hr
            for n in range(r0, r1):
                if t < lengths[n]:
                    dh[n - r0] += d_out[t, n, p0:p1]
                    dhs[t, n, p0:p1] = dh[n - r0]
                else:
                    dhs[t, n, p0:p1] = 0
            if shared:
                waits += 1
                barrier(arrived, k, waits)                              # dhs[t] complete
            np.dot(dhs[t, r0:r1], W_hr_t[j0:j1].T, d_cell)
        for n in range(r0, r1):
            if t >= lengths[n]:                                         # padded: no gradient
                da[t, n, g0:g1] = 0
                continue
            if not project:
                dh[n - r0] += d_out[t, n, p0:p1]                        # dh_t
            _lstm_step_row_backward(gates[t, n, g0:g1], cs[t, n, j0:j1], cs[t + 1, n, j0:j1],
                                    d_cell[n - r0] if project else dh[n - r0], dc[n - r0], da[t, n, g0:g1])
        if shared:
            waits += 1
            barrier(arrived, k, waits)                                  # da[t] complete
        if dz.shape[1] > 0:
            _product(da[t, r0:r1], W, dz, tile)
        dx[t, r0:r1, i0:i1] = dz[:, :inputs]                            # zero on padded steps (da = 0)
        for n in range(r0, r1):
            if t < lengths[n]:
                dh[n - r0] = dz[n - r0, inputs:]
    dh0[r0:r1, p0:p1] = dh
    dc0[r0:r1, j0:j1] = dc


def lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, c_n, saved

    The LSTM without projection (W_hr None).
    """
    return _lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, None, lengths)


def lstm_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh"""
    return _lstm_seq_backward(d_out, d_hn, d_cn, saved)[:7]


def lstm_projected_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths=None):
    """-> out (T, B, P), h_n (B, P), c_n (B, H), saved"""
    return _lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths)


def lstm_projected_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr"""
    return _lstm_seq_backward(d_out, d_hn, d_cn, saved)


def _in_pytorch_order(grad, units):
    """The gradient of W with its gate axis from thread order back to PyTorch's (see `_stacked_weights`)."""
    if units.size == 2:
        return grad
    back = np.empty_like(grad)
    for to, rows in _gate_blocks(units, 4):
        back[rows] = grad[to]
    return back


@one_blas_thread()
def _lstm_seq_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, lengths):
    """The LSTM; its time loop is cut over the threads by sequences or by hidden units.

    Each step is one product, a_t = z_t W^T with z_t = [x_t | h_{t-1} | 1]
    (see above), not a product of x with W_ih for all steps before the loop
    plus one with W_hh a step: the input's part of the step product runs at
    the rate of the state's, where the product of all steps by W_ih (a thin
    one, K = I) ran slower, and no (T, B, 4H) array of x W_ih^T is written
    before the loop and read again in it. Backward likewise makes dx with
    dh_{t-1}, and dW_ih, dW_hh and db in one product, instead of passing
    over da four times.

    By sequences, each thread runs the whole time loop for its rows of the
    batch and never waits for another. But each one multiplies z_t with all
    of W^T on every step, and when W^T is too big for one product of BLAS's
    direct kernel (`_direct`), every thread reads all of its tiles on every
    step. Then the loop is cut by hidden units instead: each thread runs all
    the sequences for its block of units and reads only its columns of W^T;
    the threads wait for each other once a step (``barrier``: all of h_t is
    ready before anyone multiplies it), twice with a projection. (With packed
    products, which copy all of the factor every step, this cut was the
    faster; with tiles the two cuts measure the same.) Figures in
    benchmarks/README.md.
    """
    x, h0, c0, lengths = _prepare(x, h0, c0, lengths=lengths)
    (T, B, I), P, H = x.shape, h0.shape[1], c0.shape[1]
    K = I + P + 1
    project = W_hr is not None
    W_hr = np.ascontiguousarray(W_hr) if project else np.empty((0, 0), x.dtype)
    threads = thread_count(max(B, H), T * B * 4 * H * (K + 8))
    by_units = threads > 1 and not _direct(K, 4 * H)               # W^T is too big for one direct product
    threads = max(1, min(threads, H if by_units else B))
    cuts = threads if by_units else 1                               # blocks of units (h's P units alike)
    rows, units, p_units = split(B, threads // cuts), split(H, cuts), split(P, cuts)
    W = _stacked_weights(W_ih, W_hh, b_ih + b_hh, units, 4)         # [W_ih | W_hh | b]
    (out,) = _empty_arrays(x.dtype, (T, B, P))
    zs, cs, gates, cell_out = _empty_arrays(x.dtype, (T + 1, B, K), (T + 1, B, H), (T, B, 4 * H),
                                            (T, B, H) if project else (0, 0, 0))
    cs[0] = c0
    gate_columns = _cut(4 * units)                                  # thread k's rows of W: its gates' columns of W^T
    factors, tile = _right_factors(W.T, gate_columns)              # step product: z_t W^T
    together(_lstm_forward, threads, x, h0, factors, tile, W_hr, lengths, rows, units, p_units, out, zs, cs,
             gates, cell_out)
    saved = (W, W_hr, lengths, rows, units, p_units, zs, cs, cell_out, gates)
    return out, zs[T, :, I:I + P], cs[T], saved


@one_blas_thread()
def _lstm_seq_backward(d_out, d_hn, d_cn, saved):
    """-> dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr (None without a projection)

    Cut by units, thread k also makes its block of dx's columns (the input
    features i_units[k]..i_units[k+1]-1), so that its step product, with
    [W_ih | W_hh]'s columns of its features and its output units side by
    side, is one product.
    """
    d_hn, d_cn = np.ascontiguousarray(d_hn), np.ascontiguousarray(d_cn)          # d_out: any strides (see `_prepare`)
    W, W_hr, lengths, rows, units, p_units, zs, cs, cell_out, gates = saved
    (T, B, _), P, H, K = gates.shape, d_out.shape[2], cs.shape[2], zs.shape[2]
    I = K - P - 1
    project = W_hr.shape[0] > 0
    threads = max(rows.size, units.size) - 1
    i_units = split(I, units.size - 1)
    da, dhs = _empty_arrays(zs.dtype, gates.shape, d_out.shape if project else (0, 0, 0))
    (dx,), dh0, dc0 = _empty_arrays(zs.dtype, (T, B, I)), np.empty((B, P), zs.dtype), np.empty((B, H), zs.dtype)
    columns = [[(i0, i1), (I + p0, I + p1)]                         # thread k's columns of W = [W_ih | W_hh | b]
               for i0, i1, p0, p1 in zip(i_units[:-1], i_units[1:], p_units[:-1], p_units[1:])]
    factors, tile = _right_factors(W, columns)                      # step product: da_t [W_ih | W_hh]
    together(_lstm_backward, threads, d_out, d_hn, d_cn, factors, tile, _transposed(W_hr), lengths, rows, units,
             p_units, i_units, cs, gates, da, dhs, dx, dh0, dc0)
    dW_ih, dW_hh, db_ih, db_hh = _split_weight_grads(_in_pytorch_order(_stacked_weight_grads(da, zs), units), I)
    dW_hr = None
    if project:                                                     # sum_t dh_t^T (o * tanh(c_t))
        dW_hr = dhs.reshape(T * B, P).T @ cell_out.reshape(T * B, H)   # no contiguous copy of dhs^T
    return dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr


# --------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------

@jit
def _gru_step_row(a, ha, b_ih, b_hh, h_prev, h, ha_n):
    """One GRU step of one sequence (see reference.gru_step_pointwise_forward), one pass over j.

    a (3H,) holds x_t W_ih^T on entry and the gates [r z n] on exit;
    ha = h_{t-1} W_hh^T (3H,); h_prev, h (H,); ha_n (H,) receives W_hn h_{t-1} + b_hn.
    """
    H = h.size
    one = h.dtype.type(1)
    for j in range(H):
        r = sigmoid(a[j] + b_ih[j] + ha[j] + b_hh[j])
        z = sigmoid(a[H + j] + b_ih[H + j] + ha[H + j] + b_hh[H + j])
        ha_n[j] = ha[2 * H + j] + b_hh[2 * H + j]
        n = tanh(a[2 * H + j] + b_ih[2 * H + j] + r * ha_n[j])
        h[j] = (one - z) * n + z * h_prev[j]
        a[j], a[H + j], a[2 * H + j] = r, z, n


@jit
def _gru_forward(h0, W_hh_factor, tile, b_ih, b_hh, lengths, out, hs, gates, ha_n, lo, hi):
    """The time loop of the sequences lo..hi-1: fills their rows of out (T, B, H), hs (T + 1, B, H),
    gates (T, B, 3H) (x W_ih^T on entry) and ha_n = W_hn h_{t-1} + b_hn (T, B, H)."""
    T, H = gates.shape[0], hs.shape[2]
    ha = np.empty((hi - lo, 3 * H), hs.dtype)                       # h_{t-1} W_hh^T
    W = W_hh_factor[0]                                              # tiles of W_hh^T: `_right_factors`
    hs[0, lo:hi] = h0[lo:hi]
    for t in range(T):
        _product(hs[t, lo:hi], W, ha, tile)
        for n in range(lo, hi):
            if t >= lengths[n]:                                     # padded: carry state
                hs[t + 1, n] = hs[t, n]
                out[t, n] = 0
                continue
            _gru_step_row(gates[t, n], ha[n - lo], b_ih, b_hh, hs[t, n], hs[t + 1, n], ha_n[t, n])
            out[t, n] = hs[t + 1, n]


@jit
def _gru_step_row_backward(gates, ha_n, h_prev, dh_t, dxa, dha):
    """Pre-activation gradients of one sequence's step (see reference.gru_step_pointwise_backward).

    gates [r z n] (3H,); ha_n, h_prev (H,); dh_t (H,) = dh + d_out_t on entry,
    its direct part dh_t * z on exit; writes dxa = [dr_a dz_a dn_a], dha = [dr_a dz_a dn_a * r].
    """
    H = h_prev.size
    one = h_prev.dtype.type(1)
    r, z, n = gates[:H], gates[H:2 * H], gates[2 * H:]
    dr_a, dz_a, dn_a = dxa[:H], dxa[H:2 * H], dxa[2 * H:]
    for j in range(H):
        dn_a[j] = dh_t[j] * (one - z[j]) * (one - n[j] * n[j])
    for j in range(H):
        dz_a[j] = dh_t[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
    for j in range(H):
        dr_a[j] = dn_a[j] * ha_n[j] * r[j] * (one - r[j])
    dha[:2 * H] = dxa[:2 * H]
    dha_n = dha[2 * H:]
    for j in range(H):
        dha_n[j] = dn_a[j] * r[j]
    for j in range(H):
        dh_t[j] *= z[j]                                             # direct path z * h_{t-1}


@jit
def _gru_backward(d_out, d_hn, W_hh_factor, tile, lengths, hs, gates, ha_n, dxa, dha, lo, hi):
    """The time loop backward of the sequences lo..hi-1: fills their rows of dxa, dha (T, B, 3H);
    returns their dh_0 (hi - lo, H)."""
    T, _, H = d_out.shape
    dh = d_hn[lo:hi].copy()
    dh_rec = np.empty((hi - lo, H), dxa.dtype)                      # dha_t W_hh
    W = W_hh_factor[0]                                              # tiles of W_hh: `_right_factors`
    for t in range(T - 1, -1, -1):
        for n in range(lo, hi):
            if t >= lengths[n]:                                     # padded: no gradient
                dxa[t, n] = 0
                dha[t, n] = 0
                continue
            dh[n - lo] += d_out[t, n]                               # dh_t
            _gru_step_row_backward(gates[t, n], ha_n[t, n], hs[t, n], dh[n - lo], dxa[t, n], dha[t, n])
        _product(dha[t, lo:hi], W, dh_rec, tile)
        for n in range(lo, hi):
            if t < lengths[n]:
                dh[n - lo] += dh_rec[n - lo]
    return dh


@one_blas_thread()
def gru_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, saved"""
    x, h0, W_ih, W_hh, b_ih, b_hh, lengths = _prepare(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths)
    (T, B, I), H = x.shape, h0.shape[1]
    (out,) = _empty_arrays(x.dtype, (T, B, H))
    hs, ha_n, gates = _empty_arrays(x.dtype, (T + 1, B, H), (T, B, H), (T, B, 3 * H))
    # x W_ih^T for all steps in one product, turned into the gates [r z n] in place
    in_parallel(_project, T * B, T * B * I * 3 * H, x.reshape(T * B, I), W_ih, gates.reshape(T * B, 3 * H))
    factors, tile = _right_factors(W_hh.T, [[(0, 3 * H)]])          # step product: h_{t-1} W_hh^T
    in_parallel(_gru_forward, B, T * B * 3 * H * (H + 8), h0, factors, tile, b_ih, b_hh, lengths, out, hs, gates,
                ha_n)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, gates, ha_n)


@one_blas_thread()
def gru_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    d_hn = np.ascontiguousarray(d_hn)                                   # d_out: any strides (see `_prepare`)
    x, W_ih, W_hh, lengths, hs, gates, ha_n = saved
    (T, B, _), H = x.shape, hs.shape[2]
    dxa, dha = _empty_arrays(x.dtype, gates.shape, gates.shape)
    (dx,) = _empty_arrays(x.dtype, x.shape)
    factors, tile = _right_factors(W_hh, [[(0, H)]])                # step product: dha_t W_hh
    dh = np.concatenate(in_parallel(_gru_backward, B, T * B * 3 * H * (H + 8), d_out, d_hn, factors, tile,
                                    lengths, hs, gates, ha_n, dxa, dha))
    dW_ih, dW_hh, db_ih = _weight_grads_over_steps(dxa, dha, x, hs, W_ih, dx)
    return dx, dh, dW_ih, dW_hh, db_ih, dha.reshape(T * B, 3 * H).sum(axis=0)


@jit
def _gru_reset_before_step_row_gates(a, ha, b_ih, b_hh, h_prev, rh):
    """First half of one reset_after=False GRU step of one sequence
    (see reference.gru_reset_before_step_pointwise_forward).

    a (3H,) holds x_t W_ih^T on entry, [r z] in its first 2H on exit;
    ha = h_{t-1} [W_hr; W_hz]^T (2H,); h_prev (H,); rh (H,) receives r * h_{t-1}.
    """
    H = h_prev.size
    for j in range(H):
        r = sigmoid(a[j] + b_ih[j] + ha[j] + b_hh[j])
        a[j] = r
        a[H + j] = sigmoid(a[H + j] + b_ih[H + j] + ha[H + j] + b_hh[H + j])
        rh[j] = r * h_prev[j]


@jit
def _gru_reset_before_step_row_state(a, ha_n, b_ih, b_hh, h_prev, h):
    """Second half: a's n block becomes n = tanh(a_n + b_in + W_hn (r * h_{t-1}) + b_hn), with
    ha_n = (r * h_{t-1}) W_hn^T (H,); then h = (1 - z) * n + z * h_prev."""
    H = h.size
    one = h.dtype.type(1)
    for j in range(H):
        z = a[H + j]
        n = tanh(a[2 * H + j] + b_ih[2 * H + j] + ha_n[j] + b_hh[2 * H + j])
        a[2 * H + j] = n
        h[j] = (one - z) * n + z * h_prev[j]


@jit
def _gru_reset_before_forward(h0, W_hrz, W_hn, b_ih, b_hh, lengths, out, hs, gates, rh, lo, hi):
    """The reset_after=False GRU's time loop of the sequences lo..hi-1: fills their rows of out (T, B, H),
    hs (T + 1, B, H), gates [r z n] (T, B, 3H) (x W_ih^T on entry) and rh = r * h_{t-1} (T, B, H).
    W_hrz (2H, H) and W_hn (H, H) are the two row blocks of W_hh: each step makes two recurrent
    products, h_{t-1} W_hrz^T, then (r * h_{t-1}) W_hn^T, with half of the step's rows between them.
    """
    T, H = gates.shape[0], hs.shape[2]
    ha = np.empty((hi - lo, 2 * H), hs.dtype)                       # h_{t-1} W_hrz^T
    ha_n = np.empty((hi - lo, H), hs.dtype)                         # (r * h_{t-1}) W_hn^T
    hs[0, lo:hi] = h0[lo:hi]
    for t in range(T):
        np.dot(hs[t, lo:hi], W_hrz.T, ha)
        for n in range(lo, hi):
            if t >= lengths[n]:
                rh[t, n] = 0
                continue
            _gru_reset_before_step_row_gates(gates[t, n], ha[n - lo], b_ih, b_hh, hs[t, n], rh[t, n])
        np.dot(rh[t, lo:hi], W_hn.T, ha_n)
        for n in range(lo, hi):
            if t >= lengths[n]:                                     # padded: carry state
                hs[t + 1, n] = hs[t, n]
                out[t, n] = 0
                continue
            _gru_reset_before_step_row_state(gates[t, n], ha_n[n - lo], b_ih, b_hh, hs[t, n], hs[t + 1, n])
            out[t, n] = hs[t + 1, n]


@jit
def _gru_reset_before_step_row_backward_state(gates, h_prev, dh_t, da):
    """First half of one step's gradients (see reference.gru_reset_before_step_pointwise_backward):
    da's z and n blocks from dh_t (H,):  dn_a = dh_t (1 - z)(1 - n^2),  dz_a = dh_t (h_{t-1} - n) z (1 - z)."""
    H = h_prev.size
    one = h_prev.dtype.type(1)
    z, n = gates[H:2 * H], gates[2 * H:]
    dz_a, dn_a = da[H:2 * H], da[2 * H:]
    for j in range(H):
        dn_a[j] = dh_t[j] * (one - z[j]) * (one - n[j] * n[j])
    for j in range(H):
        dz_a[j] = dh_t[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])


@jit
def _gru_reset_before_step_row_backward_gates(gates, h_prev, d_rh, dh_t, da):
    """Second half, with d_rh = dn_a W_hn (H,):  dr_a = d_rh h_{t-1} r (1 - r);
    dh_t becomes its direct part dh_t z + d_rh r (the product through [W_hr; W_hz] comes after)."""
    H = h_prev.size
    one = h_prev.dtype.type(1)
    r, z = gates[:H], gates[H:2 * H]
    dr_a = da[:H]
    for j in range(H):
        dr_a[j] = d_rh[j] * h_prev[j] * r[j] * (one - r[j])
    for j in range(H):
        dh_t[j] = dh_t[j] * z[j] + d_rh[j] * r[j]


@jit
def _gru_reset_before_backward(d_out, d_hn, W_hrz, W_hn, lengths, hs, gates, da, lo, hi):
    """The time loop backward of the sequences lo..hi-1: fills their rows of da = [dr_a dz_a dn_a]
    (T, B, 3H); returns their dh_0 (hi - lo, H)."""
    T, _, H = d_out.shape
    dh = d_hn[lo:hi].copy()
    dn_a = np.zeros((hi - lo, H), hs.dtype)                         # a contiguous copy for the product
    d_rh = np.empty((hi - lo, H), hs.dtype)                         # dn_a W_hn
    da_rz = np.zeros((hi - lo, 2 * H), hs.dtype)
    dh_rec = np.empty((hi - lo, H), hs.dtype)                       # [dr_a dz_a] W_hrz
    for t in range(T - 1, -1, -1):
        for n in range(lo, hi):
            if t >= lengths[n]:                                     # padded: no gradient
                da[t, n] = 0
                dn_a[n - lo] = 0
                continue
            dh[n - lo] += d_out[t, n]                               # dh_t
            _gru_reset_before_step_row_backward_state(gates[t, n], hs[t, n], dh[n - lo], da[t, n])
            dn_a[n - lo] = da[t, n, 2 * H:]
        np.dot(dn_a, W_hn, d_rh)
        for n in range(lo, hi):
            if t >= lengths[n]:
                da_rz[n - lo] = 0
                continue
            _gru_reset_before_step_row_backward_gates(gates[t, n], hs[t, n], d_rh[n - lo], dh[n - lo], da[t, n])
            da_rz[n - lo] = da[t, n, :2 * H]
        np.dot(da_rz, W_hrz, dh_rec)
        for n in range(lo, hi):
            if t < lengths[n]:
                dh[n - lo] += dh_rec[n - lo]
    return dh


@one_blas_thread()
def gru_reset_before_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None):
    """-> out (T, B, H), h_n, saved"""
    x, h0, W_ih, W_hh, b_ih, b_hh, lengths = _prepare(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=lengths)
    (T, B, I), H = x.shape, h0.shape[1]
    (out,) = _empty_arrays(x.dtype, (T, B, H))
    hs, rh, gates = _empty_arrays(x.dtype, (T + 1, B, H), (T, B, H), (T, B, 3 * H))
    in_parallel(_project, T * B, T * B * I * 3 * H, x.reshape(T * B, I), W_ih, gates.reshape(T * B, 3 * H))
    in_parallel(_gru_reset_before_forward, B, T * B * 3 * H * (H + 8), h0, W_hh[:2 * H], W_hh[2 * H:], b_ih, b_hh,
                lengths, out, hs, gates, rh)
    return out, hs[-1], (x, W_ih, W_hh, lengths, hs, gates, rh)


@one_blas_thread()
def gru_reset_before_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh

    Every pre-activation gradient is both the input's and the hidden part's (da = dxa = dha);
    the n rows of W_hh multiply r * h_{t-1}:  dW_hn = sum_t da_n,t^T (r_t * h_{t-1}).
    """
    d_hn = np.ascontiguousarray(d_hn)                                   # d_out: any strides (see `_prepare`)
    x, W_ih, W_hh, lengths, hs, gates, rh = saved
    (T, B, I), H = x.shape, hs.shape[2]
    (da,) = _empty_arrays(x.dtype, gates.shape)
    dh = np.concatenate(in_parallel(_gru_reset_before_backward, B, T * B * 3 * H * (H + 8), d_out, d_hn,
                                    W_hh[:2 * H], W_hh[2 * H:], lengths, hs, gates, da))
    da2 = da.reshape(T * B, 3 * H)
    dW_hh = np.concatenate([da2[:, :2 * H].T @ hs[:T].reshape(T * B, H), da2[:, 2 * H:].T @ rh.reshape(T * B, H)])
    db = da2.sum(axis=0)
    return (da2 @ W_ih).reshape(T, B, I), dh, da2.T @ x.reshape(T * B, I), dW_hh, db, db.copy()


# --------------------------------------------------------------------------
# Elman RNN (tanh or relu)
# --------------------------------------------------------------------------

@jit
def _rnn_step_row(a, h, relu):
    """One Elman step of one sequence: h (H,) = tanh or relu of a (H,) = z_t W^T (see "One product a step")."""
    zero = h.dtype.type(0)
    if relu:
        for j in range(h.size):
            h[j] = max(a[j], zero)
    else:
        for j in range(h.size):
            h[j] = tanh(a[j])


@jit
def _rnn_forward(x, h0, W_factors, tile, lengths, relu, out, zs, lo, hi):
    """The time loop of the sequences lo..hi-1: fills their rows of out (T, B, H) and of
    zs (T + 1, B, K) with z_t = [x_t | h_{t-1} | 1] (the state part of zs[T] is h_n)."""
    T, I, H, K = x.shape[0], x.shape[2], out.shape[2], zs.shape[2]
    zs[:T, lo:hi, :I] = x[:, lo:hi]
    zs[:T, lo:hi, K - 1] = 1
    zs[0, lo:hi, I:I + H] = h0[lo:hi]
    W = W_factors[0]                                                # tiles of W^T: `_right_factors`
    a = np.empty((hi - lo, H), zs.dtype)                            # z_t W^T
    for t in range(T):
        _product(zs[t, lo:hi], W, a, tile)
        for n in range(lo, hi):
            h = zs[t + 1, n, I:I + H]                               # h_t
            if t >= lengths[n]:                                     # padded: carry state
                h[:] = zs[t, n, I:I + H]
                out[t, n] = 0
                continue
            _rnn_step_row(a[n - lo], h, relu)
            out[t, n] = h


@jit
def _rnn_step_row_backward(h, dh_t, da, relu):
    """da (H,) = dh_t * (1 - h^2) for tanh, dh_t * [h > 0] for relu (see reference.rnn_step_pointwise_backward)."""
    one, zero = h.dtype.type(1), h.dtype.type(0)
    if relu:
        for j in range(h.size):
            da[j] = dh_t[j] if h[j] > zero else zero
    else:
        for j in range(h.size):
            da[j] = dh_t[j] * (one - h[j] * h[j])


@jit
def _rnn_backward(d_out, d_hn, F_factors, tile, lengths, zs, relu, da, dx, lo, hi):
    """The time loop backward of the sequences lo..hi-1: fills their rows of da (T, B, H) and
    dx (T, B, I); returns their dh_0 (hi - lo, H). F_factors: [W_ih | W_hh] (see `_right_factors`)."""
    T, H, I = d_out.shape[0], d_out.shape[2], dx.shape[2]
    dh = d_hn[lo:hi].copy()
    dz = np.empty((hi - lo, I + H), da.dtype)                       # [dx_t | dh_{t-1}] = da_t [W_ih | W_hh]
    W = F_factors[0]                                                # tiles of [W_ih | W_hh]: `_right_factors`
    for t in range(T - 1, -1, -1):
        for n in range(lo, hi):
            if t >= lengths[n]:                                     # padded: no gradient
                da[t, n] = 0
                continue
            dh[n - lo] += d_out[t, n]                               # dh_t
            _rnn_step_row_backward(zs[t + 1, n, I:I + H], dh[n - lo], da[t, n], relu)
        _product(da[t, lo:hi], W, dz, tile)
        dx[t, lo:hi] = dz[:, :I]                                    # zero on padded steps (da = 0)
        for n in range(lo, hi):
            if t < lengths[n]:
                dh[n - lo] = dz[n - lo, I:]
    return dh


@one_blas_thread()
def rnn_seq_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, nonlinearity="tanh"):
    """-> out (T, B, H), h_n, saved

    One product a step, a_t = z_t W^T with z_t = [x_t | h_{t-1} | 1] and
    W = [W_ih | W_hh | b], as the LSTM's (see `_lstm_seq_forward`).
    """
    x, h0, lengths = _prepare(x, h0, lengths=lengths)
    relu = nonlinearity == "relu"
    (T, B, I), H = x.shape, h0.shape[1]
    K = I + H + 1
    W = _stacked_weights(W_ih, W_hh, b_ih + b_hh, split(H, 1), 1)  # [W_ih | W_hh | b]
    (out,) = _empty_arrays(x.dtype, (T, B, H))
    (zs,) = _empty_arrays(x.dtype, (T + 1, B, K))
    factors, tile = _right_factors(W.T, [[(0, H)]])                 # step product: z_t W^T
    in_parallel(_rnn_forward, B, T * B * H * (K + 8), x, h0, factors, tile, lengths, relu, out, zs)
    return out, zs[T, :, I:I + H], (W, lengths, zs, np.array(relu))


@one_blas_thread()
def rnn_seq_backward(d_out, d_hn, saved):
    """-> dx, dh0, dW_ih, dW_hh, db_ih, db_hh"""
    d_hn = np.ascontiguousarray(d_hn)                                   # d_out: any strides (see `_prepare`)
    W, lengths, zs, relu = saved
    (T, B, H), K = d_out.shape, zs.shape[2]
    I = K - H - 1
    (da,), (dx,) = _empty_arrays(zs.dtype, (T, B, H)), _empty_arrays(zs.dtype, (T, B, I))
    factors, tile = _right_factors(W, [[(0, I + H)]])               # step product: da_t [W_ih | W_hh]
    dh = np.concatenate(in_parallel(_rnn_backward, B, T * B * H * (K + 8), d_out, d_hn, factors, tile, lengths,
                                    zs, bool(relu), da, dx))
    return (dx, dh, *_split_weight_grads(_stacked_weight_grads(da, zs), I))
