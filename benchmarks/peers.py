"""What every benchmark shares: each peer runs in its own process, as a user runs it.

A user's machine has none of this dev machine's OpenBLAS overrides
(OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, OPENBLAS_THREAD_TIMEOUT each change our
speed by 30-40 %), so every peer's process starts without them.
"""
import json
import os
import platform
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


def sweep(script, size_flag, sizes, repeats, *options):
    """Run `script --peer P size_flag N --repeats R *options` for every size N (ascending) and every
    peer (ours, and torch when installed), each in its own process: one result row each."""
    peers = ["tinygrad_rnn"] + (["torch"] if torch_available() else [])
    return [run_in_child(script, "--peer", peer, size_flag, size, "--repeats", repeats, *options)
            for size in sorted(sizes) for peer in peers]


def machine_info():
    """Versions, core count and load: what a reader needs to compare two results files."""
    import numba
    import numpy
    info = dict(python=platform.python_version(), numpy=numpy.__version__, numba=numba.__version__,
                cpu_count=os.cpu_count(), platform=platform.platform(), processor=platform.processor())
    if torch_available():
        import torch
        info["torch"] = torch.__version__
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def write_results(path, report):
    """Write `report` and the machine's description as JSON to `path` (results/ is not committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(report, machine=machine_info()), indent=1))
    print(f"\nwrote {path}")
