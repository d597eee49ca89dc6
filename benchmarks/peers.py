"""What every benchmark shares: each peer runs in its own process, as a user runs it.

A user's machine has none of this dev machine's OpenBLAS overrides
(OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, OPENBLAS_THREAD_TIMEOUT each change our
speed by 30-40 %), so every peer's process starts without them.
"""
import json
import os
import subprocess
import sys

MACHINE_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_THREAD_TIMEOUT")


def clean_env(**extra):
    """The environment a user has (no OpenBLAS overrides), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in MACHINE_OVERRIDES}
    env.update(extra)
    return env


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_in_child(script, *args, env=None):
    """Run `python script *args` in a fresh process; its last stdout line is one JSON result."""
    command = [sys.executable, str(script), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env or clean_env())
    return json.loads(result.stdout.strip().splitlines()[-1])
