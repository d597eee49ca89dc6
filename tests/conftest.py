"""Shared test settings: Hypothesis profiles, optional-dependency markers, each test
getting back the fused ops' backend it started with, and a small checkpoint to edit."""
import json
import os

# One BLAS thread: the matrices here are tiny, and on a 2-core machine OpenBLAS's
# thread pool only waits on itself (measured 2-30x slower under load). It must be
# set before NumPy is first imported, which is why it comes before everything else.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import tinygrad_rnn as tr
from tinygrad_rnn import cli, io

# deadline=None everywhere: the first call of a Numba kernel compiles it.
settings.register_profile("dev", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=15, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def restore_backend():
    """A test that switches the fused ops' backend (the CLI's --backend does, in-process)
    must not change which kernels the tests after it run."""
    previous = tr.get_backend()
    yield
    tr.set_backend(previous)


@pytest.fixture(scope="module")
def routine_checkpoint(tmp_path_factory):
    """A real checkpoint of the routine task (two training steps), for tests that edit or misuse it."""
    path = tmp_path_factory.mktemp("routine") / "routine.npz"
    assert cli.main(["train", "--task", "routine", "--hidden", "8", "--steps", "2", "--checkpoint", str(path)]) == 0
    return path


@pytest.fixture
def edit_header():
    """edit_header(source, target, change): copy checkpoint `source` to `target` with its JSON
    header replaced by `change(header)` (a hand-edited header, as a user might write one)."""
    def edit(source, target, change):
        with np.load(source, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = change(json.loads(arrays[io.HEADER].tobytes()))
        arrays[io.HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with open(target, "wb") as file:
            np.savez(file, **arrays)
        return target
    return edit
