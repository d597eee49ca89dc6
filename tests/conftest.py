"""Shared test settings: Hypothesis profiles and optional-dependency markers."""
import os

# One BLAS thread: the matrices here are tiny, and on a 2-core machine OpenBLAS's
# thread pool only waits on itself (measured 2-30x slower under load). It must be
# set before NumPy is first imported, which is why it comes before everything else.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

# deadline=None everywhere: the first call of a Numba kernel compiles it.
settings.register_profile("dev", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=15, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
