"""Shared test settings: Hypothesis profiles, optional-dependency markers, and each test
getting back the fused ops' backend it started with."""
import os

# One BLAS thread: the matrices here are tiny, and on a 2-core machine OpenBLAS's
# thread pool only waits on itself (measured 2-30x slower under load). It must be
# set before NumPy is first imported, which is why it comes before everything else.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

import tinygrad_rnn as tr

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
