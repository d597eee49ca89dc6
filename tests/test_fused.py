"""Fused cell and sequence ops: gradcheck on both CPU backends, fused vs composite, backend selection."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import fused
from tinygrad_rnn.nn.cells import gru_step, lstm_step, rnn_step

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
BACKENDS = ["numpy", "numba"]


def params(cell, T, B, I, H, seed=0, dtype=np.float64, sequence=True):
    """x, h0 (, c0), W_ih, W_hh, b_ih, b_hh as Tensors (x is (T, B, I) or, for a cell, (B, I))."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def r(*shape):
        return tr.Tensor((0.5 * rng.standard_normal(shape)).astype(dtype), requires_grad=True)

    states = [r(B, H), r(B, H)] if cell == "lstm" else [r(B, H)]
    x = r(T, B, I) if sequence else r(B, I)
    return [x, *states, r(G * H, I), r(G * H, H), r(G * H), r(G * H)]


def flat(*tensors):
    """All outputs of an op as one vector, so gradcheck sees every one of them."""
    return tr.concat([t.reshape(-1) for t in tensors])


def as_tuple(outputs):
    return outputs if isinstance(outputs, tuple) else (outputs,)


SEQUENCES = [("lstm", fused.lstm_sequence, {}), ("gru", fused.gru_sequence, {}),
             ("rnn", fused.rnn_sequence, {"nonlinearity": "tanh"}),
             ("rnn", fused.rnn_sequence, {"nonlinearity": "relu"})]
CELLS = [("lstm", fused.lstm_cell, {}), ("gru", fused.gru_cell, {}),
         ("rnn", fused.rnn_cell, {"nonlinearity": "tanh"}), ("rnn", fused.rnn_cell, {"nonlinearity": "relu"})]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell,op,options", SEQUENCES)
@pytest.mark.parametrize("lengths", [None, np.array([3, 1])])
def test_sequence_gradcheck(backend, cell, op, options, lengths):
    with tr.backend(backend):
        tr.gradcheck(lambda *a: flat(*op(*a, lengths=lengths, **options)), params(cell, 3, 2, 2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell,op,options", CELLS)
def test_cell_gradcheck(backend, cell, op, options):
    with tr.backend(backend):
        tr.gradcheck(lambda *a: flat(*as_tuple(op(*a, **options))),
                     params(cell, 1, 2, 3, 2, sequence=False))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sequence_without_bias_gradcheck(backend):
    with tr.backend(backend):
        tr.gradcheck(lambda x, h, c, W_ih, W_hh: flat(*fused.lstm_sequence(x, h, c, W_ih, W_hh)),
                     params("lstm", 2, 2, 2, 2)[:5])


def composite_sequence(cell, x, states, weights, lengths, nonlinearity="tanh"):
    """The unrolled graph the fused op replaces: one composite cell step per time step."""
    outputs = []
    for t in range(x.shape[0]):
        if cell == "lstm":
            new = lstm_step(x[t], *states, *weights)
        elif cell == "gru":
            new = (gru_step(x[t], *states, *weights),)
        else:
            new = (rnn_step(x[t], *states, *weights, nonlinearity),)
        running = np.ones((x.shape[1], 1), bool) if lengths is None else (t < lengths)[:, None]
        states = tuple(tr.where(running, n, s) for n, s in zip(new, states))
        outputs.append(tr.where(running, new[0], 0.0))
    return (tr.stack(outputs), *states)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,op,options", SEQUENCES)
@pytest.mark.parametrize("lengths", [None, np.array([4, 2, 1])])
def test_fused_matches_composite(backend, dtype, cell, op, options, lengths):
    inputs = params(cell, 4, 3, 3, 5, seed=1, dtype=dtype)
    n_states = 2 if cell == "lstm" else 1
    x, states, weights = inputs[0], inputs[1:1 + n_states], inputs[1 + n_states:]
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    direction = np.random.default_rng(2).standard_normal(4 * 3 * 5 + 3 * 5 * n_states).astype(dtype)

    results = []
    for run in ("fused", "composite"):
        for t in inputs:
            t.zero_grad()
        with tr.backend(backend):
            if run == "fused":
                outputs = op(*inputs, lengths=lengths, **options)
            else:
                outputs = composite_sequence(cell, x, states, weights, lengths, **options)
        (flat(*outputs) * tr.Tensor(direction)).sum().backward()
        results.append([o.data for o in outputs] + [t.grad for t in inputs])
    for k, (a, b) in enumerate(zip(*results)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, err_msg=f"result {k}", **tolerance)


# --------------------------------------------------------------------------
# Backend selection
# --------------------------------------------------------------------------

def test_set_and_get_backend():
    previous = tr.get_backend()
    try:
        tr.set_backend("numpy")
        assert tr.get_backend() == "numpy"
        tr.set_backend("numba")
        assert tr.get_backend() == "numba"
    finally:
        tr.set_backend(previous)


def test_context_manager_restores_backend_even_on_error():
    previous = tr.get_backend()
    with pytest.raises(KeyError):
        with tr.backend("numpy" if previous != "numpy" else "numba"):
            assert tr.get_backend() != previous
            raise KeyError("boom")
    assert tr.get_backend() == previous


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError, match="numpy, numba, cuda"):
        tr.set_backend("tpu")


def test_cuda_without_gpu_says_so():
    from numba import cuda
    if cuda.is_available():
        pytest.skip("a GPU (or the CUDA simulator) is available here")
    with pytest.raises(RuntimeError, match="no GPU was found.*NUMBA_ENABLE_CUDASIM=1"):
        tr.set_backend("cuda")
    assert tr.get_backend() != "cuda"


def run_python(code, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)


def test_environment_variable_selects_backend():
    done = run_python("import tinygrad_rnn as tr; print(tr.get_backend())", TINYGRAD_RNN_BACKEND="numpy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "numpy"


def test_bad_environment_variable_is_a_clear_error():
    done = run_python("import tinygrad_rnn as tr; tr.get_backend()", TINYGRAD_RNN_BACKEND="gpu")  # read at first use
    assert done.returncode != 0
    assert "TINYGRAD_RNN_BACKEND" in done.stderr and "numpy, numba, cuda" in done.stderr


def test_default_backend_is_numba():
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_RNN_BACKEND"}
    done = subprocess.run([sys.executable, "-c", "import tinygrad_rnn as tr; print(tr.get_backend())"],
                          env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "numba", done.stderr


def test_backend_is_fixed_when_the_node_is_made():
    """backward uses the kernels that ran forward, even if the backend changed in between."""
    inputs = params("gru", 3, 2, 2, 3)
    with tr.backend("numpy"):
        out, _ = fused.gru_sequence(*inputs)
    with tr.backend("numba"):
        out.sum().backward()
    assert inputs[0].grad.shape == (3, 2, 2)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_weight_shape_error_names_op_and_shapes():
    x, h, c, _, W_hh, b_ih, b_hh = params("lstm", 3, 2, 4, 3)
    W_ih = tr.Tensor(np.zeros((12, 5)))
    with pytest.raises(ValueError, match=r"lstm_sequence: W_ih has shape \(12, 5\) but x has I=4.*"
                                         r"expected \(4\*H, I\) = \(12, 4\)"):
        fused.lstm_sequence(x, h, c, W_ih, W_hh, b_ih, b_hh)


def test_state_shape_error():
    x, h, *weights = params("gru", 3, 2, 2, 3)
    with pytest.raises(ValueError, match=r"gru_sequence: h0 has shape \(5, 3\) but x \(3, 2, 2\) has B=2"):
        fused.gru_sequence(x, tr.Tensor(np.zeros((5, 3))), *weights)


def test_input_rank_error():
    x, h, *weights = params("rnn", 3, 2, 2, 3)
    with pytest.raises(ValueError, match=r"rnn_cell: x must have shape \(B, I\), got \(3, 2, 2\)"):
        fused.rnn_cell(x, h, *weights)


def test_lengths_errors():
    inputs = params("rnn", 3, 2, 2, 3)
    with pytest.raises(ValueError, match="between 1 and T=3"):
        fused.rnn_sequence(*inputs, lengths=np.array([4, 1]))
    with pytest.raises(ValueError, match="B=2 integers"):
        fused.rnn_sequence(*inputs, lengths=np.array([1.0, 2.0]))


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        fused.rnn_sequence(*params("rnn", 2, 1, 1, 1), nonlinearity="sigmoid")


def test_mixed_dtypes_are_a_type_error():
    inputs = params("gru", 2, 2, 2, 2)
    inputs[0] = tr.Tensor(inputs[0].data.astype(np.float32))
    with pytest.raises(TypeError, match="dtypes"):
        fused.gru_sequence(*inputs)
