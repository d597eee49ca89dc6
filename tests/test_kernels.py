"""Kernels: Numba (cpu.py) vs the NumPy reference, the reference vs finite differences and PyTorch."""
import os
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import njit

from tinygrad_rnn.kernels import cpu, get_kernels, reference, threads

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


def make_case(cell, T, B, I, H, dtype, seed, with_lengths=False):
    """Random inputs of one kernel call, and random output gradients for its backward."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def r(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(dtype)

    case = dict(x=r(T, B, I), h0=r(B, H), c0=r(B, H), W_ih=r(G * H, I), W_hh=r(G * H, H),
                b_ih=r(G * H), b_hh=r(G * H),
                lengths=rng.integers(1, T + 1, size=B) if with_lengths else None,
                d_out=r(T, B, H), d_hn=r(B, H), d_cn=r(B, H))
    return case


def forward_sequence(k, cell, case, nonlinearity="tanh"):
    """The forward of one sequence kernel: its outputs, as a list, and what it saved for backward."""
    c = case
    if cell == "lstm":
        *outputs, saved = k.lstm_seq_forward(c["x"], c["h0"], c["c0"], c["W_ih"], c["W_hh"], c["b_ih"],
                                             c["b_hh"], c["lengths"])
    elif cell == "gru":
        *outputs, saved = k.gru_seq_forward(c["x"], c["h0"], c["W_ih"], c["W_hh"], c["b_ih"], c["b_hh"],
                                            c["lengths"])
    else:
        *outputs, saved = k.rnn_seq_forward(c["x"], c["h0"], c["W_ih"], c["W_hh"], c["b_ih"], c["b_hh"],
                                            c["lengths"], nonlinearity)
    return outputs, saved


def backward_sequence(k, cell, case, saved):
    """The backward of one sequence kernel, from the case's output gradients: every input gradient."""
    c = case
    if cell == "lstm":
        return k.lstm_seq_backward(c["d_out"], c["d_hn"], c["d_cn"], saved)
    return (k.gru_seq_backward if cell == "gru" else k.rnn_seq_backward)(c["d_out"], c["d_hn"], saved)


def run_sequence(k, cell, case, nonlinearity="tanh"):
    """Forward then backward of one sequence kernel: every output and gradient, as a list."""
    outputs, saved = forward_sequence(k, cell, case, nonlinearity)
    return [*outputs, *backward_sequence(k, cell, case, saved)]


def run_cell(k, cell, case, nonlinearity="tanh"):
    """One step on the first time step of `case`, forward then backward: the reference's cell
    kernels, or for a fast backend its sequence kernel on a sequence of length 1 (as the fused
    cell ops run it)."""
    c = case
    x, d_h = c["x"][0], c["d_out"][0]
    if k is not reference:
        step = dict(c, x=c["x"][:1], d_out=np.zeros_like(c["d_out"][:1]), d_hn=d_h, lengths=None)
        results = run_sequence(k, cell, step, nonlinearity)
        return results[1:3] + [results[3][0]] + results[4:] if cell == "lstm" else \
            results[1:2] + [results[2][0]] + results[3:]
    if cell == "lstm":
        h, cc, saved = k.lstm_step_forward(x, c["h0"], c["c0"], c["W_ih"], c["W_hh"], c["b_ih"], c["b_hh"])
        return [h, cc, *k.lstm_step_backward(d_h, c["d_cn"], saved)]
    if cell == "gru":
        h, saved = k.gru_step_forward(x, c["h0"], c["W_ih"], c["W_hh"], c["b_ih"], c["b_hh"])
        return [h, *k.gru_step_backward(d_h, saved)]
    h, saved = k.rnn_step_forward(x, c["h0"], c["W_ih"], c["W_hh"], c["b_ih"], c["b_hh"], nonlinearity)
    return [h, *k.rnn_step_backward(d_h, saved)]


def assert_all_close(got, expected, dtype):
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        assert a.dtype == dtype, f"result {k} has dtype {a.dtype}"
        np.testing.assert_allclose(a, b, err_msg=f"result {k}", **TOLERANCE[dtype])


CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")]
shapes = st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 5), st.integers(1, 6))


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, with_lengths=st.booleans(), seed=st.integers(0, 2**16))
def test_numba_sequence_matches_reference(cell, nonlinearity, dtype, shape, with_lengths, seed):
    case = make_case(cell, *shape, dtype, seed, with_lengths)
    assert_all_close(run_sequence(cpu, cell, case, nonlinearity),
                     run_sequence(reference, cell, case, nonlinearity), dtype)


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_numba_cell_matches_reference(cell, nonlinearity, dtype, shape, seed):
    case = make_case(cell, *shape, dtype, seed)
    assert_all_close(run_cell(cpu, cell, case, nonlinearity),
                     run_cell(reference, cell, case, nonlinearity), dtype)


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_edge_shapes_one(cell, nonlinearity):
    """B = 1, T = 1, H = 1, I = 1 at once."""
    case = make_case(cell, 1, 1, 1, 1, np.float64, seed=3)
    assert_all_close(run_sequence(cpu, cell, case, nonlinearity),
                     run_sequence(reference, cell, case, nonlinearity), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((4, 3)).astype(dtype)
    assert_all_close([cpu.matmul(a, b.T)], [reference.matmul(a, b.T)], dtype)


def test_extreme_preactivations_stay_finite():
    """sigmoid(-100) in float32: exp overflows to inf, and 1 / (1 + inf) must still be 0."""
    case = make_case("lstm", 3, 2, 2, 3, np.float32, seed=0)
    case["x"] *= 1000
    results = run_sequence(cpu, "lstm", case)
    assert all(np.all(np.isfinite(r)) for r in results)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # and the reference quietly
        expected = run_sequence(reference, "lstm", case)[0]
    np.testing.assert_allclose(results[0], expected, atol=1e-5)


def _apply(fn, v):
    """fn (one of cpu.exp, cpu.sigmoid, cpu.tanh, which exist only in compiled code) of every element of v."""
    @njit
    def loop(v):
        out = np.empty_like(v)
        for m in range(v.size):
            out[m] = fn(v[m])
        return out
    return loop(v)


def test_float32_exp_matches_exact_exp():
    """cpu.exp in float32 (arithmetic only, vectorizable) vs exp in float64, on a dense grid of its range."""
    v = np.linspace(-87, 88, 1_000_001, dtype=np.float32)
    got = _apply(cpu.exp, v)
    assert got.dtype == np.float32
    exact = np.exp(v.astype(np.float64))
    assert np.max(np.abs(got - exact) / exact) < 4e-7          # NumPy's float32 exp: 2e-7


def test_float64_activations_are_exact():
    """In float64 exp is np.exp, so sigmoid and tanh agree with NumPy's to rounding."""
    v = np.linspace(-30, 30, 10_001)
    np.testing.assert_allclose(_apply(cpu.exp, v), np.exp(v), rtol=1e-15)
    np.testing.assert_allclose(_apply(cpu.sigmoid, v), 1 / (1 + np.exp(-v)), rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(_apply(cpu.tanh, v), np.tanh(v), rtol=0, atol=4e-16)


def test_float32_sigmoid_and_tanh_saturate():
    """Far outside exp's float32 range sigmoid is 0 or 1 and tanh is -1 or 1, never NaN or Inf."""
    v = np.array([-1e30, -100, -88, 0, 88, 100, 1e30], np.float32)
    sigmoid, tanh = _apply(cpu.sigmoid, v), _apply(cpu.tanh, v)
    assert sigmoid.dtype == tanh.dtype == np.float32
    np.testing.assert_allclose(sigmoid, [0, 0, 0, 0.5, 1, 1, 1], atol=1e-37, rtol=0)
    np.testing.assert_allclose(tanh, [-1, -1, -1, 0, 1, 1, 1], atol=1e-7, rtol=0)


def test_activations_are_for_compiled_code_only():
    with pytest.raises(TypeError, match="@jit"):
        cpu.sigmoid(0.5)


@pytest.mark.parametrize("M,K,N,width", [(0, 64, 256, 256), (1, 64, 256, 256), (20, 128, 512, 512),
                                         (37, 1000, 64, 64), (20, 1000, 200, 64), (9, 2000, 100, 0),
                                         (3, 0, 5, 5), (3, 5, 0, 1)])
def test_step_product_in_tiles_or_packed(M, K, N, width):
    """No rows, one row, the whole factor in one tile, three row blocks, tiles of 64 columns and a last
    narrower one, one packed product (K too large for a tile of 64 columns), and empty factors
    (a layer with hidden_size=0)."""
    rng = np.random.default_rng(M)
    a, F = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    factors, got_width = cpu._right_factors(F, [[(0, N)]])
    assert got_width == width
    out = np.empty((M, N))
    cpu._product(a, factors[0], out, width)
    np.testing.assert_allclose(out, a @ F, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("units", [[0, 5], [0, 2, 5], [0, 1, 3, 5]])
def test_stacked_weights_give_each_thread_its_gates_and_come_back(units):
    """W = [W_ih | W_hh | b]: thread k's block of the gate axis is [i f g o] of its units;
    _in_pytorch_order undoes the order."""
    H, units, rng = 5, np.array(units), np.random.default_rng(0)
    W_ih, W_hh, b = rng.standard_normal((4 * H, 3)), rng.standard_normal((4 * H, 2)), rng.standard_normal(4 * H)
    stacked = np.hstack([W_ih, W_hh, b[:, None]])                  # row gate * H + j of PyTorch's order
    W = cpu._stacked_weights(W_ih, W_hh, b, units, 4)
    start = 0
    for j0, j1 in zip(units[:-1], units[1:]):
        for gate in range(4):
            np.testing.assert_array_equal(W[start:start + j1 - j0], stacked[gate * H + j0:gate * H + j1])
            start += j1 - j0
    np.testing.assert_array_equal(cpu._in_pytorch_order(W, units), stacked)


@pytest.mark.parametrize("products", ["whole", "tiles of 3", "packed"])
@pytest.mark.parametrize("blocks", [[[(0, 12)]], [[(0, 5)], [(5, 12)]], [[(0, 4)], [(4, 8)], [(8, 12)]],
                                    [[(0, 3)], [(3, 3)], [(3, 12)]], [[(0, 2), (6, 9)], [(2, 6), (9, 12)]]])
@pytest.mark.parametrize("given", ["F", "F^T viewed"])
def test_right_factors_are_the_threads_column_blocks_in_tiles(monkeypatch, products, blocks, given):
    """Thread k's tiles hold its column ranges of F side by side, `width` columns a tile (width 0: the
    block's transpose in one), whichever way F is stored; every tile starts on a cache line. Tiles of 3
    with BLAS's direct kernel taken to fit 200 multiply-adds (8 rows of 3 columns of K = 7: 168)."""
    if products == "tiles of 3":
        monkeypatch.setattr(cpu, "TILE", 3)
        monkeypatch.setattr(cpu, "SMALL_PRODUCT", 200)
    if products == "packed":
        monkeypatch.setattr(cpu, "SMALL_PRODUCT", 0)
    rng = np.random.default_rng(len(blocks))
    F = rng.standard_normal((7, 12)).astype(np.float32)
    F_in = F if given == "F" else np.ascontiguousarray(F.T).T
    factors, width = cpu._right_factors(F_in, blocks)
    assert width == {"whole": cpu._widest(blocks), "tiles of 3": 3, "packed": 0}[products]
    assert factors.shape[0] == len(blocks)
    for thread, ranges in zip(factors, blocks):
        expected = np.hstack([F[:, c0:c1] for c0, c1 in ranges])
        N = expected.shape[1]
        assert all(tile.ctypes.data % 64 == 0 for tile in thread)
        if width == 0:
            got = thread[0, :7 * N].reshape(N, 7).T
        else:
            got = np.hstack([thread[c0 // width, :7 * min(width, N - c0)].reshape(7, -1)
                             for c0 in range(0, N, width)] or [np.empty((7, 0), np.float32)])
        np.testing.assert_array_equal(got, expected)


def test_cut_gives_each_thread_one_range():
    assert cpu._cut(np.array([0, 3, 3, 8])) == [[(0, 3)], [(3, 3)], [(3, 8)]]


@njit(nogil=True)
def _failing_kernel(lo, hi):
    raise ValueError("kernel failed")


def test_blas_runs_one_thread_inside_a_kernel(monkeypatch):
    """Kernels run with BLAS at one thread (a kernel in Python here, to read the setting)."""
    from threadpoolctl import threadpool_limits
    monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1 << 60)
    libraries = threads._blas_libraries()             # NumPy's and SciPy's BLAS: both loaded from here on
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        threads.in_parallel(lambda lo, hi: seen.append([library.num_threads for library in libraries]), 4, 1)
        assert [library.num_threads for library in libraries] == [2] * len(libraries)
    assert seen == [[1] * len(libraries)]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_kernel_call_sets_blas_once(monkeypatch, cell):
    """Forward and backward each set BLAS to one thread once and back once, not around every
    parallel call inside them (each setting costs a call into every BLAS library)."""
    from threadpoolctl import threadpool_limits
    monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    libraries = threads._blas_libraries()
    case = make_case(cell, 4, 3, 2, 3, np.float64, seed=0)
    settings = []
    for library in libraries:
        monkeypatch.setattr(library, "set_num_threads",
                            lambda n, set_threads=library.set_num_threads: (settings.append(n), set_threads(n)))
    with threadpool_limits(limits=2, user_api="blas"):
        run_sequence(cpu, cell, case)
    assert settings == [1] * len(libraries) + [2] * len(libraries) + [1] * len(libraries) + [2] * len(libraries)


@pytest.mark.parametrize("split", [False, True])
def test_blas_threads_are_restored_when_a_kernel_fails(monkeypatch, split):
    """The user's BLAS setting comes back after an error, in the caller's slice or a worker's."""
    from threadpoolctl import threadpool_limits
    monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1 if split else 1 << 60)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    libraries = threads._blas_libraries()
    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(ValueError, match="kernel failed"):
            threads.in_parallel(_failing_kernel, 4, 1 << 40)
        assert [library.num_threads for library in libraries] == [2] * len(libraries)


def test_blas_setting_survives_kernels_called_from_several_threads():
    from concurrent.futures import ThreadPoolExecutor
    from threadpoolctl import threadpool_limits
    libraries = threads._blas_libraries()
    case = make_case("lstm", 4, 3, 2, 3, np.float64, seed=0)
    expected = run_sequence(cpu, "lstm", case)
    with threadpool_limits(limits=2, user_api="blas"):
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: run_sequence(cpu, "lstm", case), range(40)))
        assert [library.num_threads for library in libraries] == [2] * len(libraries)
    for result in results:
        for got, want in zip(result, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def _forward_sum(seed):
    """out.sum() of an LSTM forward big enough to be cut over the cores."""
    case = make_case("lstm", 40, 64, 8, 128, np.float32, seed=seed)
    out = cpu.lstm_seq_forward(case["x"], case["h0"], case["c0"], case["W_ih"], case["W_hh"],
                               case["b_ih"], case["b_hh"])[0]
    return float(out.astype(np.float64).sum())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kernels_run_in_a_forked_child():
    """A child forked after the parent used the thread pool makes its own (the parent's threads are not in it)."""
    import multiprocessing
    expected = _forward_sum(1)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_forward_sum, (1,)).get(timeout=120) == expected


@njit(nogil=True)
def _mark_slice(ends, lo, hi):
    """ends[lo] = hi: which slices ran."""
    ends[lo] = hi
    return lo


def _slices_run(n, work):
    ends = np.full(n + 1, -1)
    starts = threads.in_parallel(_mark_slice, n, work, ends)
    assert starts == sorted(starts)                             # results in the order of the slices
    return [(lo, int(ends[lo])) for lo in starts]


def test_threads_grow_with_the_work(monkeypatch):
    """One thread more per PARALLEL_MIN_WORK multiply-adds, at most one per core and one per row; no rows: one call."""
    monkeypatch.setattr(threads, "_cores", lambda: 6)
    for n, work, expected in [(32, 3 * threads.PARALLEL_MIN_WORK, [(0, 8), (8, 16), (16, 24), (24, 32)]),
                              (3, 1 << 60, [(0, 1), (1, 2), (2, 3)]),
                              (32, threads.PARALLEL_MIN_WORK - 1, [(0, 32)]),
                              (0, 1 << 60, [(0, 0)])]:
        assert _slices_run(n, work) == expected


def test_team_runs_many_jobs_in_a_row_and_after_its_workers_slept(monkeypatch):
    """Jobs back to back (workers still spinning), after the workers went to sleep, and with the team growing."""
    import time
    monkeypatch.setattr(threads, "SPIN_LOADS", 1000)            # a worker gives up spinning at once
    for cores in (2, 3, 2, 5):
        monkeypatch.setattr(threads, "_cores", lambda: cores)
        for _ in range(200):
            assert _slices_run(10, 1 << 60) == [(10 * k // cores, 10 * (k + 1) // cores) for k in range(cores)]
        time.sleep(0.01)                                        # so it sleeps here, and is woken for the next job


@njit(nogil=True)
def _sum_in_rounds(values, sums, arrived, k, _):
    """Round r: thread k writes values[k] = r (k + 1), all wait, each adds up everyone's values, all wait."""
    for r in range(1, sums.shape[1] + 1):
        values[k] = r * (k + 1)
        threads.barrier(arrived, k, 2 * r - 1)
        for value in values:
            sums[k, r - 1] += value
        threads.barrier(arrived, k, 2 * r)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_threads_of_a_together_call_meet_at_every_barrier(monkeypatch, count):
    """After a barrier every thread sees what every other wrote before it: all sums are r (1 + ... + count)."""
    monkeypatch.setattr(threads, "_cores", lambda: count)
    values, sums = np.zeros(count, np.int64), np.zeros((count, 300), np.int64)
    threads.together(_sum_in_rounds, count, values, sums)
    expected = np.arange(1, 301) * count * (count + 1) // 2
    np.testing.assert_array_equal(sums, np.broadcast_to(expected, sums.shape))


@njit(nogil=True)
def _count_rounds_unless(failing, counts, arrived, k, _):
    """Thread `failing` fails at once; the others pass 100 barriers, counting them."""
    if k == failing:
        raise ValueError("slice failed")
    for r in range(1, 101):
        threads.barrier(arrived, k, r)
        counts[k] += 1


def _within(seconds, call):
    """call() in a thread: its outcome, or a failure if it has not returned after `seconds` (a hang)."""
    import threading
    outcome = []

    def run():
        try:
            outcome.append(call())
        except BaseException as error:              # noqa: B036 (KeyboardInterrupt is one of the outcomes)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call hangs"
    return outcome[0]


@pytest.mark.parametrize("failing", [0, 1])
def test_a_failing_thread_of_a_together_call_lets_the_others_finish(monkeypatch, failing):
    """The caller's slice (0) or a worker's (1) fails before its first barrier: the call raises
    the error instead of waiting forever, the other thread ran to the end, and the team still works."""
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    counts = np.zeros(2, np.int64)
    error = _within(60, lambda: threads.together(_count_rounds_unless, 2, failing, counts))
    assert isinstance(error, ValueError) and "slice failed" in str(error)
    assert counts[1 - failing] == 100
    counts[:] = 0
    _within(60, lambda: threads.together(_count_rounds_unless, 2, -1, counts))
    assert counts.tolist() == [100, 100]


def test_a_caller_interrupted_after_posting_a_job_waits_for_it(monkeypatch):
    """Ctrl-C between posting a job and setting `go`: the worker still runs its slice (alone: the
    barriers are opened), the call raises KeyboardInterrupt once it is done, and the team still works."""
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "SPIN_LOADS", 1000)

    def interrupted(go, jobs):
        raise KeyboardInterrupt

    counts = np.zeros(2, np.int64)
    with monkeypatch.context() as patch:
        patch.setattr(threads, "_signal", interrupted)
        assert isinstance(_within(60, lambda: threads.together(_count_rounds_unless, 2, -1, counts)),
                          KeyboardInterrupt)
    assert counts.tolist() == [0, 100]                          # the caller's slice never ran; the worker's did
    counts[:] = 0
    _within(60, lambda: threads.together(_count_rounds_unless, 2, -1, counts))
    assert counts.tolist() == [100, 100]


def test_a_busy_team_runs_a_second_callers_slices_on_the_caller(monkeypatch):
    monkeypatch.setattr(threads, "_cores", lambda: 3)
    team = threads._team()
    with team.lock:                                             # as if another thread's call were running
        assert _slices_run(9, 1 << 60) == [(0, 3), (3, 6), (6, 9)]


def test_a_finished_job_keeps_no_reference_to_its_arrays(monkeypatch):
    """What the workers were given is dropped after the call, so a kept block is free again (see cpu._block)."""
    monkeypatch.setattr(threads, "_cores", lambda: 3)
    ends = np.full(10, -1)
    before = sys.getrefcount(ends)
    threads.in_parallel(_mark_slice, 9, 1 << 60, ends)
    assert sys.getrefcount(ends) == before


@pytest.fixture(params=["sequences", "sequences, tiles", "units, tiles", "units, packed"])
def cut_over_threads(monkeypatch, request):
    """Every kernel call cut over three threads: an odd number, and more than CI may have cores;
    the LSTM's time loop cut by sequences, or by hidden units (as when a step's product is big);
    the step products whole, in tiles of 2 columns (tiles that straddle a thread's column ranges:
    BLAS's direct kernel taken to fit 400 multiply-adds), or packed."""
    monkeypatch.setattr(threads, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(threads, "_cores", lambda: 3)
    cut, _, products = request.param.partition(", ")
    monkeypatch.setattr(cpu, "_direct", lambda K, N: cut == "sequences")
    monkeypatch.setattr(cpu, "TILE", 2)
    if products:
        monkeypatch.setattr(cpu, "SMALL_PRODUCT", 400 if products == "tiles" else 0)


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("B", [2, 7])
def test_kernels_cut_over_threads_match_reference(cut_over_threads, cell, nonlinearity, with_lengths, B):
    case = make_case(cell, 6, B, 3, 5, np.float64, seed=B, with_lengths=with_lengths)
    expected = run_sequence(reference, cell, case, nonlinearity)
    for got, want in zip(run_sequence(cpu, cell, case, nonlinearity), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_float32_kernels_cut_over_threads_match_reference(cut_over_threads, cell):
    """The tiles and blocks of float32 (16 to a cache line, not 8): against the float64 reference."""
    case = make_case(cell, 6, 7, 3, 5, np.float32, seed=3, with_lengths=True)
    expected = run_sequence(reference, cell, {k: v.astype(np.float64) if isinstance(v, np.ndarray) and
                                               v.dtype == np.float32 else v for k, v in case.items()})
    for got, want in zip(run_sequence(cpu, cell, case), expected, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _variant_calls(variant, c):
    """(forward(k) -> (outputs, saved), backward(k, saved)) of kernel pair `variant` on case `c`: the
    three cells and the two variants (a projection of h to 2 units; the GRU's reset gate before its
    product)."""
    if variant == "lstm_projected":
        W_hr = np.random.default_rng(0).standard_normal((2, c["W_ih"].shape[0] // 4)).astype(c["x"].dtype)
        h0, d_out, d_hn, W_hh = c["h0"][:, :2], c["d_out"][..., :2], c["d_hn"][:, :2], c["W_hh"][:, :2].copy()
        return (lambda k: _outputs_and_saved(k.lstm_projected_seq_forward(c["x"], h0, c["c0"], c["W_ih"], W_hh,
                                                                          c["b_ih"], c["b_hh"], W_hr, c["lengths"])),
                lambda k, saved: k.lstm_projected_seq_backward(d_out, d_hn, c["d_cn"], saved))
    if variant == "gru_reset_before":
        return (lambda k: _outputs_and_saved(k.gru_reset_before_seq_forward(c["x"], c["h0"], c["W_ih"], c["W_hh"],
                                                                            c["b_ih"], c["b_hh"], c["lengths"])),
                lambda k, saved: k.gru_reset_before_seq_backward(c["d_out"], c["d_hn"], saved))
    return (lambda k: forward_sequence(k, variant, c), lambda k, saved: backward_sequence(k, variant, c, saved))


def _outputs_and_saved(results):
    *outputs, saved = results
    return outputs, saved


@pytest.mark.parametrize("variant", ["lstm_projected", "gru_reset_before"])
def test_variants_cut_over_threads_match_reference(cut_over_threads, variant):
    cell = "lstm" if variant == "lstm_projected" else "gru"
    forward, backward = _variant_calls(variant, make_case(cell, 5, 7, 3, 4, np.float64, seed=11, with_lengths=True))
    results = {}
    for k in (cpu, reference):
        outputs, saved = forward(k)
        results[k] = [*outputs, *backward(k, saved)]
    for got, want in zip(results[cpu], results[reference], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["lstm", "gru", "rnn", "lstm_projected", "gru_reset_before"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_backward_kernels_return_new_arrays(cut_over_threads, variant, backend):
    """The contract that lets a leaf keep a fused op's gradient as its .grad without a copy
    (``KernelFunction.new_grads``): every array a backward kernel returns is writeable and shares
    no memory with another one it returns, nor with anything passed to forward or backward."""
    cell = variant.split("_")[0]
    k = get_kernels(backend)
    for dtype in (np.float32, np.float64):
        c = make_case(cell, 5, 7, 3, 4, dtype, seed=2, with_lengths=True)
        forward, backward = _variant_calls(variant, c)
        _, saved = forward(k)
        grads = [g for g in backward(k, saved) if g is not None]
        given = [v for v in c.values() if isinstance(v, np.ndarray)]
        given += [a for a in saved if isinstance(a, np.ndarray)]
        for n, g in enumerate(grads):
            assert g.flags.writeable, f"{variant} backward: result {n} is read-only"
            for m, other in enumerate(grads[n + 1:], start=n + 1):
                assert not np.shares_memory(g, other), f"{variant} backward: results {n} and {m} share memory"
            assert not any(np.shares_memory(g, a) for a in given), \
                f"{variant} backward: result {n} shares memory with an input or a saved array"


def test_padded_steps_carry_state_and_output_zero():
    case = make_case("lstm", 5, 3, 2, 4, np.float64, seed=1)
    case["lengths"] = np.array([5, 2, 1])
    out, h_n, c_n, *_ = run_sequence(cpu, "lstm", case)
    assert np.all(out[2:, 1] == 0) and np.all(out[1:, 2] == 0)
    np.testing.assert_allclose(h_n[1], out[1, 1])
    np.testing.assert_allclose(h_n[2], out[0, 2])


def test_get_kernels():
    assert get_kernels("numpy") is reference
    assert get_kernels("numba") is cpu
    with pytest.raises(ValueError, match="numpy, numba, cuda"):
        get_kernels("tpu")


# --------------------------------------------------------------------------
# The reference itself: finite differences and PyTorch
# --------------------------------------------------------------------------

INPUTS = {"lstm": ["x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh"],
          "gru": ["x", "h0", "W_ih", "W_hh", "b_ih", "b_hh"],
          "rnn": ["x", "h0", "W_ih", "W_hh", "b_ih", "b_hh"]}


def projected_loss(cell, case, nonlinearity):
    """L = sum(out * d_out) + sum(h_n * d_hn) (+ sum(c_n * d_cn)): its gradients are what backward returns."""
    results = run_sequence(reference, cell, case, nonlinearity)
    outputs = results[:3] if cell == "lstm" else results[:2]
    weights = [case["d_out"], case["d_hn"], case["d_cn"]]
    return sum(float(np.sum(o * w)) for o, w in zip(outputs, weights))


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_reference_backward_matches_finite_differences(cell, nonlinearity, with_lengths):
    case = make_case(cell, 3, 2, 2, 3, np.float64, seed=7, with_lengths=with_lengths)
    if with_lengths:
        case["lengths"] = np.array([3, 2])
    results = run_sequence(reference, cell, case, nonlinearity)
    grads = results[3:] if cell == "lstm" else results[2:]
    eps = 1e-6
    for name, analytic in zip(INPUTS[cell], grads):
        array = case[name]
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + eps
            up = projected_loss(cell, case, nonlinearity)
            array[index] = original - eps
            down = projected_loss(cell, case, nonlinearity)
            array[index] = original
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_reference_matches_pytorch(cell, nonlinearity):
    torch = pytest.importorskip("torch")
    T, B, I, H = 4, 3, 2, 5
    case = make_case(cell, T, B, I, H, np.float64, seed=11)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    module = layer(I, H, **options).double()
    with torch.no_grad():
        for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
            torch_name = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0",
                          "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}[name]
            getattr(module, torch_name).copy_(torch.from_numpy(case[name]))
    x = torch.from_numpy(case["x"]).requires_grad_()
    h0 = torch.from_numpy(case["h0"][None]).requires_grad_()
    if cell == "lstm":
        c0 = torch.from_numpy(case["c0"][None]).requires_grad_()
        out, (h_n, c_n) = module(x, (h0, c0))
        finals, leaves = [h_n[0], c_n[0]], [x, h0, c0]
    else:
        out, h_n = module(x, h0)
        finals, leaves = [h_n[0]], [x, h0]
    loss = (out * torch.from_numpy(case["d_out"])).sum()
    for final, d in zip(finals, [case["d_hn"], case["d_cn"]]):
        loss = loss + (final * torch.from_numpy(d)).sum()
    loss.backward()
    expected = [out.detach().numpy()] + [f.detach().numpy() for f in finals]
    expected += [x.grad.numpy()] + [state.grad.numpy()[0] for state in leaves[1:]]
    expected += [module.weight_ih_l0.grad.numpy(), module.weight_hh_l0.grad.numpy(),
                 module.bias_ih_l0.grad.numpy(), module.bias_hh_l0.grad.numpy()]
    got = run_sequence(reference, cell, case, nonlinearity)
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"result {k}")


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("view", ["broadcast", "every other step"])
def test_backward_takes_d_out_with_any_strides(cell, nonlinearity, view):
    """d_out as out.sum() gives it (a broadcast view of one number) or strided: the same as its contiguous copy."""
    case = make_case(cell, 6, 3, 2, 4, np.float64, seed=5, with_lengths=True)
    if view == "broadcast":
        d_out = np.broadcast_to(np.float64(0.7), case["d_out"].shape)
    else:
        d_out = np.repeat(case["d_out"], 2, axis=0)[::2]
    assert not d_out.flags.c_contiguous
    got = run_sequence(cpu, cell, dict(case, d_out=d_out), nonlinearity)
    want = run_sequence(cpu, cell, dict(case, d_out=np.ascontiguousarray(d_out)), nonlinearity)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 64), (130, 7), (512, 128)])
def test_transposed_copy_in_bands(shape):
    """W^T made band by band is W^T, C-contiguous, for shapes that fill no band, one, and a part of one."""
    W = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    W_t = cpu._transposed(W)
    assert W_t.flags.c_contiguous and W_t.dtype == W.dtype
    np.testing.assert_array_equal(W_t, W.T)


# --------------------------------------------------------------------------
# Big blocks kept for the next calls (cpu._block)
# --------------------------------------------------------------------------

POOLED = dict(T=64, B=64, I=16, H=128)      # LSTM gates of 8 MB: the forward's block is kept


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_block_in_use_is_never_handed_out_again(cell):
    """Two forwards alive at once (two graphs before their backward) give exactly what each
    gives alone: the second never writes into the block that the first saved for backward."""
    cases = [make_case(cell, **POOLED, dtype=np.float32, seed=seed) for seed in (1, 2)]
    alone = [run_sequence(cpu, cell, case) for case in cases]
    both = [forward_sequence(cpu, cell, case) for case in cases]
    assert both[0][0][1].base is not both[1][0][1].base            # h_n, in each forward's own block
    for (outputs, saved), case, wanted in zip(both, cases, alone):
        for got, want in zip([*outputs, *backward_sequence(cpu, cell, case, saved)], wanted, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_free_block_is_handed_out_again():
    case = make_case("lstm", **POOLED, dtype=np.float32, seed=0)
    gates = forward_sequence(cpu, "lstm", case)[1][-1]                  # a view of the forward's block
    first_block = weakref.ref(gates.base)
    del gates                                                           # the first forward's arrays are all gone
    assert first_block().nbytes >= cpu.POOL_MIN_BYTES                   # kept by the pool
    assert forward_sequence(cpu, "lstm", case)[1][-1].base is first_block()


def test_a_kept_state_keeps_its_block_out_of_the_pool():
    """h_n is a view of the forward's block: while the user keeps it, the block stays theirs."""
    case = make_case("lstm", **POOLED, dtype=np.float32, seed=0)
    (_, h_n, _), _ = forward_sequence(cpu, "lstm", case)
    kept = h_n.copy()
    other = make_case("lstm", **POOLED, dtype=np.float32, seed=5)
    assert forward_sequence(cpu, "lstm", other)[0][1].base is not h_n.base
    np.testing.assert_array_equal(h_n, kept)


def test_the_pool_keeps_a_bounded_number_of_blocks():
    for T in range(40, 40 + 2 * cpu.POOL_SIZE):              # as many different block sizes
        forward_sequence(cpu, "lstm", make_case("lstm", T, 64, 16, 128, np.float32, seed=0))
    assert len(cpu._Pool.blocks) <= cpu.POOL_SIZE


def test_kept_blocks_from_several_threads_at_once():
    """Kernels called from 4 Python threads at once, each on its own inputs, with blocks big
    enough to be kept: every result is exactly what the same call gives alone."""
    from concurrent.futures import ThreadPoolExecutor
    cases = [make_case("gru", **POOLED, dtype=np.float32, seed=seed) for seed in range(4)]
    alone = [run_sequence(cpu, "gru", case) for case in cases]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda k: run_sequence(cpu, "gru", cases[k % 4]), range(16)))
    for k, result in enumerate(together):
        for got, want in zip(result, alone[k % 4], strict=True):
            np.testing.assert_array_equal(got, want)
