"""The package's layers, enforced by reading every module's imports (with `ast`).

    kernels            the numeric kernels: import nothing else from the package
    tensor, autograd,  the engine: nothing from nn, apps or cli
    functions
    nn                 the layers: nothing from apps or cli
    apps, cli          on top: may import anything

and no module imports another module's private (`_`-prefixed) names: what a
module shares it shares under a public name.
"""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "tinygrad_rnn"


def module_files():
    """{module name: path}; kernels/ installs as tinygrad_rnn.kernels (see pyproject.toml)."""
    files = {}
    for folder, prefix in ((ROOT / PACKAGE, PACKAGE), (ROOT / "kernels", PACKAGE + ".kernels")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([prefix] + parts)] = path
    return files


MODULES = module_files()


def imports(name, path):
    """(imported module, imported name or None) for every import in the file, with
    relative imports made absolute. `from .x import y` gives (x, y), or
    (x.y, None) when x.y is a module of the package."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.append((submodule, None) if submodule in MODULES else (module, alias.name))
    return found


def within(module, *layers):
    return any(module == f"{PACKAGE}.{layer}" or module.startswith(f"{PACKAGE}.{layer}.") for layer in layers)


def test_the_modules_are_found():
    assert {"tinygrad_rnn.autograd", "tinygrad_rnn.nn.cells", "tinygrad_rnn.kernels",
            "tinygrad_rnn.cli", "tinygrad_rnn.apps"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_respect_the_layers(name):
    package_imports = [(m, n) for m, n in imports(name, MODULES[name]) if m == PACKAGE or m.startswith(PACKAGE + ".")]
    targets = {m for m, _ in package_imports}
    if within(name, "kernels"):
        outside = sorted(m for m in targets if not within(m, "kernels"))
        assert not outside, f"{name} (kernels) imports {outside}: kernels import nothing from the package"
    if within(name, "tensor", "autograd", "functions"):
        above = sorted(m for m in targets if within(m, "nn", "apps", "cli") or m == PACKAGE)
        assert not above, f"{name} (the engine) imports {above}, a layer above it"
    if within(name, "nn"):
        above = sorted(m for m in targets if within(m, "apps", "cli"))
        assert not above, f"{name} (nn) imports {above}, a layer above it"
    private = sorted(f"{m}.{n}" for m, n in package_imports
                     if n and n.startswith("_") and not n.startswith("__") and m != name)
    assert not private, f"{name} imports private names {private}: give them public names where they belong"


def test_the_checker_sees_a_private_import_and_a_layer_violation(tmp_path):
    """The test itself can fail: a made-up nn module that breaks both rules."""
    path = tmp_path / "bad.py"
    path.write_text("from ..cli import main\nfrom .cells import _CellBase\n")
    found = imports("tinygrad_rnn.nn.bad", path)
    assert ("tinygrad_rnn.cli", "main") in found and ("tinygrad_rnn.nn.cells", "_CellBase") in found


def test_an_uninstalled_clone_says_to_install_first(tmp_path):
    """A copy of the package folder alone (no kernels/ beside it, no install): one hint."""
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    # -S: no site-packages, so neither an installed nor an editable tinygrad_rnn is found
    result = subprocess.run([sys.executable, "-S", "-c", "import tinygrad_rnn"], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: tinygrad_rnn: run pip install -e . first: kernels/ installs as tinygrad_rnn.kernels")
