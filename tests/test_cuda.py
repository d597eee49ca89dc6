"""CUDA kernels (``kernels/cuda.py``) against the NumPy reference, with or without a GPU.

Without a GPU the kernels run in Numba's CUDA simulator, which has to be
switched on (``NUMBA_ENABLE_CUDASIM=1``) before ``numba.cuda`` is first
imported — too late in a pytest process whose other test modules already
imported numba. So the comparisons run in a child process: this file, run as
a script with the simulator on, performs every check in ``CHECKS`` and prints
the results as JSON, and each test asserts one check's rows. With a real GPU
(or with the simulator already on in this process) the same checks run here,
in this process.

The simulator runs every GPU thread as a Python thread, so the shapes are
tiny (B <= 2, T <= 3, H, I <= 3) apart from a few sizes that cross a tile or
block edge. (The clear error of ``tr.set_backend("cuda")`` with neither a GPU
nor the simulator is tested in test_fused.py.)
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

TOLERANCE = {"float64": 1e-10, "float32": 2e-5}
CHECKS = {}


def check(fn):
    """Register a check: fn() -> rows (what, dtype name, error); error <= TOLERANCE[dtype] passes."""
    CHECKS[fn.__name__] = fn
    return fn


def _error(got, want):
    """Largest |got - want| relative to 1 + |want| (absolute near 0, relative for large values)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != reference {want.shape}"
    return float(np.max(np.abs(got - want) / (1 + np.abs(want)), initial=0.0))


def _rows(what, dtype, got, want):
    return [(f"{what}[{k}]", np.dtype(dtype).name, _error(g, w)) for k, (g, w) in enumerate(zip(got, want))]


def _random(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


def _kernels():
    from tinygrad_rnn.kernels import cuda, reference
    return cuda, reference


# --------------------------------------------------------------------------
# The checks (run where the CUDA kernels can run: GPU or simulator)
# --------------------------------------------------------------------------

@check
def elementwise_map_and_zip():
    from numba import cuda as numba_cuda
    K, R = _kernels()

    @numba_cuda.jit(device=True)
    def cube(v, one):
        return v * v * v

    rows = []
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(1)
        a, dh = _random(rng, dtype, 2, 5), _random(rng, dtype, 2, 5)
        rows += _rows("sigmoid", dtype, [K.sigmoid(a)], [R.sigmoid(a)])
        rows += _rows("cube (a user's map)", dtype, [K.elementwise_map(cube, a).copy_to_host()], [a ** 3])
        for nonlinearity in ("tanh", "relu"):
            h = R.rnn_step_pointwise_forward(a, nonlinearity)
            rows += _rows(f"rnn_step_pointwise_forward {nonlinearity}", dtype,
                          [K.rnn_step_pointwise_forward(a, nonlinearity)], [h])
            rows += _rows(f"rnn_step_pointwise_backward {nonlinearity} (zip)", dtype,
                          [K.rnn_step_pointwise_backward(dh, h, nonlinearity == "relu")],
                          [R.rnn_step_pointwise_backward(dh, h, nonlinearity == "relu")])
    return rows


@check
def sum_rows_is_the_bias_gradient():
    K, _ = _kernels()
    rng = np.random.default_rng(2)
    rows = []
    # (1, 2): one row; (6, 5): fewer rows than lanes; (20, 40): more rows than
    # lanes and more columns than one block holds.
    for shape in ((1, 2), (6, 5), (20, 40)):
        a = _random(rng, np.float64, *shape)
        rows += _rows(f"sum_rows {shape}", np.float64, [K.sum_rows(a).copy_to_host()], [a.sum(axis=0)])
    a = _random(rng, np.float32, 6, 5)
    return rows + _rows("sum_rows (6, 5)", np.float32, [K.sum_rows(a).copy_to_host()], [a.sum(axis=0)])


@check
def tiled_matmul_any_shape():
    K, R = _kernels()
    rng = np.random.default_rng(3)
    t = K.TILE
    rows = []
    # inside one tile; every dimension one past a tile; the inner one two tiles and a bit
    for M, Kdim, N in ((2, 3, 2), (t + 1, t + 1, t + 1), (3, 2 * t + 1, 2)):
        for dtype in (np.float64, np.float32):
            a, b = _random(rng, dtype, M, Kdim), _random(rng, dtype, Kdim, N)
            rows += _rows(f"matmul ({M},{Kdim})@({Kdim},{N})", dtype, [K.matmul(a, b)], [R.matmul(a, b)])
    a, b = _random(rng, np.float64, t + 1, 3), _random(rng, np.float64, 2, t + 1)
    got = K.device_matmul(a, b, trans_a=True, trans_b=True).copy_to_host()
    return rows + _rows("matmul a^T b^T read in place", np.float64, [got], [a.T @ b.T])


@check
def gate_kernels():
    K, R = _kernels()
    rows = []
    B, H = 2, 3
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(4)
        a, c_prev = _random(rng, dtype, B, 4 * H), _random(rng, dtype, B, H)
        want = R.lstm_step_pointwise_forward(a, c_prev)
        rows += _rows("lstm_step_pointwise_forward", dtype, K.lstm_step_pointwise_forward(a, c_prev), want)
        dh, dc = _random(rng, dtype, B, H), _random(rng, dtype, B, H)
        _, c_t, gates = want
        rows += _rows("lstm_step_pointwise_backward", dtype, K.lstm_step_pointwise_backward(dh, dc, gates, c_prev, c_t),
                      R.lstm_step_pointwise_backward(dh, dc, gates, c_prev, c_t))
        xa, ha, h_prev = _random(rng, dtype, B, 3 * H), _random(rng, dtype, B, 3 * H), _random(rng, dtype, B, H)
        want = R.gru_step_pointwise_forward(xa, ha, h_prev)
        rows += _rows("gru_step_pointwise_forward", dtype, K.gru_step_pointwise_forward(xa, ha, h_prev), want)
        _, gates, ha_n = want
        rows += _rows("gru_step_pointwise_backward", dtype, K.gru_step_pointwise_backward(dh, gates, ha_n, h_prev),
                      R.gru_step_pointwise_backward(dh, gates, ha_n, h_prev))
    return rows


def _sequence_rows(cell, dtype, lengths, T=3, B=2, I=3, H=3):
    """Forward and backward of one whole-sequence kernel, CUDA vs reference."""
    K, R = _kernels()
    rng = np.random.default_rng(5)
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    x, h0, c0 = _random(rng, dtype, T, B, I), _random(rng, dtype, B, H), _random(rng, dtype, B, H)
    weights = [_random(rng, dtype, *s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    d_out, d_hn, d_cn = _random(rng, dtype, T, B, H), _random(rng, dtype, B, H), _random(rng, dtype, B, H)
    what = f"{cell} lengths={lengths}"
    if cell == "lstm":
        *got, saved_k = K.lstm_seq_forward(x, h0, c0, *weights, lengths)
        *want, saved_r = R.lstm_seq_forward(x, h0, c0, *weights, lengths)
        grads = (d_out, d_hn, d_cn)
    else:
        name, extra = (cell, {}) if cell == "gru" else ("rnn", {"nonlinearity": cell.split("_")[1]})
        *got, saved_k = getattr(K, f"{name}_seq_forward")(x, h0, *weights, lengths, **extra)
        *want, saved_r = getattr(R, f"{name}_seq_forward")(x, h0, *weights, lengths, **extra)
        grads = (d_out, d_hn)
    assert len(saved_k) == len(saved_r), f"{what}: saved has {len(saved_k)} arrays, reference {len(saved_r)}"
    backward = cell.split("_")[0] + "_seq_backward"
    got_grads = getattr(K, backward)(*grads, saved_k)
    return (_rows(f"{what} forward", dtype, got, want)
            + _rows(f"{what} backward", dtype, got_grads, getattr(R, backward)(*grads, saved_r))
            + [_new_arrays_row(f"{what} backward", dtype, got_grads, [x, h0, c0, *weights, *grads])])


def _new_arrays_row(what, dtype, results, given):
    """A row whose error is 0 when the results are writeable and share no memory with each other
    or with `given` (the contract of KernelFunction.new_grads), else inf."""
    fresh = all(r.flags.writeable for r in results) and not any(
        np.shares_memory(a, b) for n, a in enumerate(results) for b in [*results[n + 1:], *given])
    return (f"{what} returns new arrays", np.dtype(dtype).name, 0.0 if fresh else float("inf"))


def _sequence_check(cell):
    def sequence_check():
        rows = []
        for dtype in (np.float64, np.float32):
            for lengths in (None, np.array([3, 1])):
                rows += _sequence_rows(cell, dtype, lengths)
        return rows
    sequence_check.__name__ = f"{cell}_sequence_forward_backward"
    return check(sequence_check)


for _cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
    _sequence_check(_cell)


@check
def one_steps():
    K, R = _kernels()
    rng = np.random.default_rng(6)
    B, I, H = 2, 3, 3
    x, h, c = _random(rng, np.float64, B, I), _random(rng, np.float64, B, H), _random(rng, np.float64, B, H)
    dh, dc = _random(rng, np.float64, B, H), _random(rng, np.float64, B, H)
    rows = []
    for cell, G in (("lstm", 4), ("gru", 3), ("rnn", 1)):
        weights = [_random(rng, np.float64, *s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
        state, d_state = ((h, c), (dh, dc)) if cell == "lstm" else ((h,), (dh,))
        # the fused cell ops run a step as a sequence of length 1
        _, *got, saved_k = getattr(K, f"{cell}_seq_forward")(x[None], *state, *weights)
        *want, saved_r = getattr(R, f"{cell}_step_forward")(x, *state, *weights)
        rows += _rows(f"{cell} step forward", np.float64, got, want)
        dx, *grads = getattr(K, f"{cell}_seq_backward")(np.zeros_like(dh)[None], *d_state, saved_k)
        rows += _rows(f"{cell} step backward", np.float64, [dx[0], *grads],
                      getattr(R, f"{cell}_step_backward")(*d_state, saved_r))
    return rows


@check
def fused_layer_on_the_cuda_backend():
    """tr.set_backend("cuda") runs nn.LSTM's fused path on the kernels: same as the numpy backend."""
    import tinygrad_rnn as tr
    from tinygrad_rnn import nn
    tr.manual_seed(0)
    lstm = nn.LSTM(3, 3).to(np.float64)
    x = tr.randn(3, 2, 3, dtype=np.float64)
    results = {}
    for backend in ("numpy", "cuda"):
        lstm.zero_grad()
        with tr.backend(backend):
            out, (h_n, c_n) = lstm(x, lengths=[3, 2])
            (out.sum() + h_n.sum() * 2 + c_n.sum()).backward()
        results[backend] = [out.data, h_n.data] + [p.grad for _, p in lstm.named_parameters()]
    return _rows("nn.LSTM on backend cuda vs numpy", np.float64, results["cuda"], results["numpy"])


@check
def matmul_with_mismatched_shapes_names_them():
    K, _ = _kernels()
    try:
        K.device_matmul(np.ones((2, 3)), np.ones((4, 5)))
    except ValueError as err:
        assert "(2, 3)" in str(err) and "(4, 5)" in str(err), err
        return [("ValueError naming both shapes", "float64", 0.0)]
    raise AssertionError("device_matmul of (2, 3) and (4, 5) raised no ValueError")


@check
def proj_size_and_reset_after_false_give_a_clear_error():
    """The cuda backend has no kernels for these two variants: a clear error names the option."""
    import tinygrad_rnn as tr
    from tinygrad_rnn import nn
    x = tr.randn(2, 1, 3, dtype=np.float64)
    rows = []
    for layer, option in ((nn.LSTM(3, 4, proj_size=2), "proj_size"), (nn.GRU(3, 4, reset_after=False),
                                                                       "reset_after=False")):
        with tr.backend("cuda"):
            try:
                layer.to(np.float64)(x)
            except NotImplementedError as err:
                assert f"{option} is not supported by the cuda backend" in str(err), err
                assert "tr.set_backend('numba')" in str(err), err
                rows.append((f"{option}: clear NotImplementedError", "float64", 0.0))
                continue
        raise AssertionError(f"{option} on the cuda backend raised no error")
    return rows


def run_checks():
    """Every check -> {name: {"rows": [...]} or {"error": message}}."""
    from numba import config
    switch_interval = sys.getswitchinterval()
    if config.ENABLE_CUDASIM:
        sys.setswitchinterval(5e-4)   # the simulator's threads hand over the GIL sooner: ~5x faster
    results = {}
    try:
        for name, fn in CHECKS.items():
            try:
                results[name] = {"rows": fn()}
            except Exception as err:              # reported by the test of that check
                results[name] = {"error": f"{type(err).__name__}: {err}"}
    finally:
        sys.setswitchinterval(switch_interval)
    return results


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

def _kernels_run_here():
    """True when this process can run CUDA kernels: a GPU, or the simulator already on."""
    from numba import config, cuda
    return bool(config.ENABLE_CUDASIM) or cuda.is_available()


@pytest.fixture(scope="module")
def results():
    if _kernels_run_here():
        return run_checks()
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the simulator run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", list(CHECKS))
def test_cuda_kernel_matches_reference(results, name):
    result = results[name]
    assert "error" not in result, f"{name} raised {result.get('error')}"
    assert result["rows"], f"{name} compared nothing"
    failed = [(what, err) for what, dtype, err in result["rows"] if not err <= TOLERANCE[dtype]]
    assert not failed, f"{name}: outside tolerance {TOLERANCE}: {failed}"


if __name__ == "__main__":
    print(json.dumps(run_checks()))
