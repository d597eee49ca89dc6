"""The assignment kit and the tutorials as notebooks.

    tinygrad-rnn assignment make OUT_DIR     the student version of the tutorials with exercises
    tinygrad-rnn notebooks OUT_DIR           every tutorial as an executed .ipynb (needs [notebooks])

A tutorial asks students to implement something by marking the lines of the
solution inside a function (after its docstring):

    def backward(hs, ys):
        \"\"\"dL/dW for every weight, by BPTT.\"\"\"
        # BEGIN SOLUTION
        ...
        # END SOLUTION

`assignment make` copies every tutorial that has such marks into
OUT_DIR/tutorials with each marked block replaced by
``raise NotImplementedError(...)`` (the docstring stays, so the student
knows what to write), and writes OUT_DIR/test_assignment.py, the grader
entry: ``pytest OUT_DIR`` runs each tutorial and reports "not implemented",
a failed check, or a pass. The tutorials check their own results against
the engine, so a tutorial that runs to the end is a pass.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .check import CheckReport

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"


# --------------------------------------------------------------------------
# Stripping the solutions
# --------------------------------------------------------------------------


def strip_solutions(text, source="tutorial"):
    """`text` with each BEGIN/END SOLUTION block replaced by raise NotImplementedError(...)."""
    lines, out = text.splitlines(keepends=True), []
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.strip() == END:
            raise ValueError(f"{source}, line {k + 1}: {END} without {BEGIN}")
        if line.strip() != BEGIN:
            out.append(line)
            k += 1
            continue
        end = next((j for j in range(k + 1, len(lines)) if lines[j].strip() in (BEGIN, END)), None)
        if end is None or lines[end].strip() != END:
            raise ValueError(f"{source}, line {k + 1}: {BEGIN} without a matching {END}")
        indent = line[:len(line) - len(line.lstrip())]
        function = _enclosing_function(out, len(indent))
        out.append(f'{indent}raise NotImplementedError("{function} is not implemented yet: '
                   f'the exercise in {source}")\n')
        k = end + 1
    return "".join(out)


def _enclosing_function(lines, indent):
    for line in reversed(lines):
        match = re.match(r"(\s*)def (\w+)\(", line)
        if match and len(match.group(1)) < indent:
            return match.group(2)
    raise ValueError(f"a {BEGIN} block must be inside a function")


def has_solutions(path):
    return any(line.strip() == BEGIN for line in Path(path).read_text().splitlines())


GRADER_ENTRY = '''"""The grader entry of this assignment: run `pytest` in this folder.

Each test runs one tutorial from start to finish; the tutorials compare your
functions with the engine as they go, so a test passes when its tutorial
runs to the end. A function you have not written yet is reported as
"not implemented".
"""
from pathlib import Path

import pytest

from tinygrad_rnn.assignment import check_tutorial

TUTORIALS = sorted((Path(__file__).parent / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial(path):
    report = check_tutorial(path)
    assert report.passed, str(report)
'''


def make(out_dir, tutorials=TUTORIALS):
    """Write the student version of every tutorial with solutions, and the grader entry; returns the files."""
    tutorials = Path(tutorials)
    sources = sorted(p for p in tutorials.glob("*.py") if has_solutions(p)) if tutorials.is_dir() else []
    if not sources:
        raise FileNotFoundError(f"assignment make: no tutorials with {BEGIN} marks in {tutorials} "
                                f"(it needs a source checkout of tinygrad_rnn)")
    out = Path(out_dir)
    files = {out / "tutorials" / source.name: strip_solutions(source.read_text(), source.name) for source in sources}
    files[out / "test_assignment.py"] = GRADER_ENTRY
    _check_can_write(out, files)
    (out / "tutorials").mkdir(parents=True, exist_ok=True)
    for target, text in files.items():
        target.write_text(text)
    return list(files)


def _check_can_write(out, files):
    """Refuse, before writing anything, an OUT_DIR that is a file, or files a student has changed.

    Running `make` again over the same folder is fine while its files are as
    `make` wrote them; an exercise with the student's answers is never replaced.
    """
    for folder in (out, out / "tutorials"):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"assignment make: {str(folder)!r} exists and is not a folder; "
                                     f"choose another OUT_DIR")
    changed = [str(target) for target, text in files.items()
               if target.exists() and (not target.is_file() or target.read_text(errors="replace") != text)]
    if changed:
        raise FileExistsError(f"assignment make: {changed[0]} already exists and differs from the fresh copy "
                              f"(a student's work?); refusing to replace it: choose another OUT_DIR "
                              f"(or delete {len(changed)} changed file(s) first)")


# --------------------------------------------------------------------------
# Grading a tutorial
# --------------------------------------------------------------------------


def check_tutorial(path, timeout=600):
    """Run the tutorial at `path` as a script in an empty folder; a `CheckReport` of the result.

    The finding names the first function that is not implemented, or the
    error that stopped the tutorial.
    """
    path = Path(path).resolve()
    report = CheckReport(f"tutorial {path.name}")
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = subprocess.run([sys.executable, str(path)], cwd=folder, capture_output=True, text=True,
                                    timeout=timeout, env={**os.environ, "MPLBACKEND": "Agg"})
        except subprocess.TimeoutExpired:
            report.add_finding(f"{path.name} did not finish in {timeout} s (an infinite loop?)")
            return report
    if result.returncode == 0:
        report.lines.append(f"  {path.name} ran to the end: every check in it passed")
        return report
    missing = re.search(r"(\w+) is not implemented yet", result.stderr + result.stdout)
    if missing:
        report.add_finding(f"{missing.group(1)} is not implemented yet ({path.name})")
    else:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        report.add_finding(f"{path.name} stopped: {last}")
    report.lines += ["  " + line for line in result.stderr.strip().splitlines()[-15:]]
    return report


# --------------------------------------------------------------------------
# The tutorials as executed notebooks
# --------------------------------------------------------------------------


def notebooks(out_dir, tutorials=TUTORIALS, names=None, timeout=900):
    """Convert each tutorial to .ipynb with jupytext, execute it with nbclient, write it to `out_dir`.

    Figures appear in the notebooks as PNG outputs (`viz.show_figure`) and as
    files under out_dir/figures. `names`: only the tutorials whose file name
    contains one of these strings. Returns the written paths.
    """
    try:
        import jupytext
        import nbformat
        from nbclient import NotebookClient
    except ImportError as err:
        raise RuntimeError(f"notebooks needs the [notebooks] extra: pip install 'tinygrad-rnn[notebooks]' "
                           f"({err})") from err
    sources = sorted(Path(tutorials).glob("*.py")) if Path(tutorials).is_dir() else []
    if names:
        sources = [p for p in sources if any(n in p.name for n in names)]
    if not sources:
        raise FileNotFoundError(f"notebooks: no tutorials found in {tutorials}"
                                + (f" matching {', '.join(names)}" if names else ""))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        notebook = jupytext.read(source)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        print(f"executing {source.name} ...", flush=True)
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(out)}}).execute()
        target = out / (source.stem + ".ipynb")
        nbformat.write(notebook, target)
        written.append(target)
    return written


# --------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------


def command_assignment(args):
    for path in make(args.out_dir):
        print(f"wrote {path}")
    print(f"students fill in the functions that raise NotImplementedError; `pytest {args.out_dir}` grades them")
    return 0


def command_notebooks(args):
    for path in notebooks(args.out_dir, names=args.only):
        print(f"wrote {path}")
    return 0


def add_commands(commands):
    """Register `tinygrad-rnn assignment make` and `tinygrad-rnn notebooks` on the CLI's subparsers."""
    assignment = commands.add_parser("assignment", help="the assignment kit: tutorials with the solutions removed")
    actions = assignment.add_subparsers(dest="action", required=True)
    make_parser = actions.add_parser("make", help="write the student version and its grader entry to OUT_DIR")
    make_parser.add_argument("out_dir", metavar="OUT_DIR")
    make_parser.set_defaults(run=command_assignment)

    notebook = commands.add_parser("notebooks", help="write every tutorial as an executed Jupyter notebook "
                                   "(needs pip install 'tinygrad-rnn[notebooks]'; source checkout only)")
    notebook.add_argument("out_dir", metavar="OUT_DIR")
    notebook.add_argument("--only", nargs="+", metavar="NAME", help="only tutorials whose file name contains NAME")
    notebook.set_defaults(run=command_notebooks)
