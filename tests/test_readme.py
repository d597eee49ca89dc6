"""The Python examples in README.md must run as written.

Each ```python block is executed in a fresh process from an empty directory,
so a README that drifts away from the library fails the test suite.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_readme_has_python_examples():
    assert PYTHON_BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"block{k}" for k in range(len(PYTHON_BLOCKS))])
def test_readme_example_runs(code, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"README example failed:\n{code}\n{result.stderr[-4000:]}"
