"""The autograder: grade a student's file of CS231n-named functions, with partial credit.

    tinygrad-rnn grade student.py                         a text report
    tinygrad-rnn grade student.py --format json           the same as JSON
    tinygrad-rnn grade student.py --format gradescope     Gradescope's results.json

The student's file is run in a separate Python process with a time limit,
so a file that fails to import, raises, calls sys.exit, loops forever or
lacks some functions still gets a graded result with a message saying what
happened; the grader itself never crashes. Every function in `GRADED` the
file defines is graded by the matching `tinygrad_rnn.check` function; a
backward pass is graded only once its forward pass is right (its gradients
would be compared with the wrong values otherwise). A function earns its
points when its check passes and nothing otherwise; the "output" of each
test is the check's report, the finding first.

Functions use CS231n's layout (Wx (D, G*H), LSTM gate blocks i, f, o, g);
see `tinygrad_rnn.check` for every signature. ``rnn_backward_truncated(dh,
cache, k)`` is graded only when the file defines it.

Exit status: 0 whenever a result was produced, whatever the student's file
did; 1 for a mistake of the TA (no such student file, a bad --gate-order,
an --output that cannot be written); 2 for arguments argparse rejects.

TAs who write their own pytest tests call the checks directly:

    import tinygrad_rnn as tr
    from student import lstm_step_forward, lstm_step_backward

    def test_lstm_step():
        report = tr.check.check_lstm_step(lstm_step_forward, lstm_step_backward, gate_order="ifog", verbose=False)
        assert report.passed, report          # the failure message is the report, finding first
"""
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import check

TRUNCATION = 3          # k for rnn_backward_truncated(dh, cache, k)


@dataclass(frozen=True)
class Graded:
    """One student function: its name, its points, and how to check it."""

    name: str
    points: int
    check: str                 # a function of tinygrad_rnn.check
    forward: str               # the forward it is checked with (itself for a forward)
    backward: str = None       # set for a backward pass
    optional: bool = False     # graded only when the file defines it


GRADED = [
    Graded("rnn_step_forward", 1, "check_rnn_step", "rnn_step_forward"),
    Graded("rnn_step_backward", 2, "check_rnn_step", "rnn_step_forward", "rnn_step_backward"),
    Graded("rnn_forward", 1, "check_rnn_sequence", "rnn_forward"),
    Graded("rnn_backward", 2, "check_rnn_sequence", "rnn_forward", "rnn_backward"),
    Graded("lstm_step_forward", 1, "check_lstm_step", "lstm_step_forward"),
    Graded("lstm_step_backward", 2, "check_lstm_step", "lstm_step_forward", "lstm_step_backward"),
    Graded("lstm_forward", 1, "check_lstm_sequence", "lstm_forward"),
    Graded("lstm_backward", 2, "check_lstm_sequence", "lstm_forward", "lstm_backward"),
    Graded("gru_step_forward", 1, "check_gru_step", "gru_step_forward"),
    Graded("gru_step_backward", 2, "check_gru_step", "gru_step_forward", "gru_step_backward"),
    Graded("rnn_backward_truncated", 2, "check_truncated_bptt", "rnn_forward", "rnn_backward_truncated",
           optional=True),
]


# --------------------------------------------------------------------------
# Grading functions already imported (in the worker process)
# --------------------------------------------------------------------------


def _run(item, forward, backward, gate_order):
    options = dict(verbose=False)
    if item.check in ("check_lstm_step", "check_lstm_sequence"):
        options["gate_order"] = gate_order
    if item.check == "check_truncated_bptt":
        return check.check_truncated_bptt(forward, lambda dh, cache: backward(dh, cache, TRUNCATION), TRUNCATION,
                                          **options)
    return getattr(check, item.check)(forward, backward, **options)


def grade_one(item, functions, gate_order="ifog", graded=None):
    """A test result {name, score, max_score, output} for one `Graded` item.

    `graded` maps names to the results of items already graded: a backward item
    reuses its forward's result from there instead of running the student's forward
    through that check again."""
    def result(passed, output):
        return {"name": item.name, "score": item.points if passed else 0, "max_score": item.points,
                "output": output}

    if not callable(functions.get(item.name)):
        return result(False, f"{item.name} is missing: define it in your file (signatures: tinygrad_rnn.check)")
    if item.backward is not None:
        prior = (graded or {}).get(item.forward)
        if prior is None:
            prior = grade_one(next(g for g in GRADED if g.name == item.forward), functions, gate_order)
        if prior["score"] == 0:
            return result(False, f"not graded yet: {item.forward} must pass first (its outputs feed this check)")
    forward = functions[item.forward]
    backward = functions[item.backward] if item.backward else None
    try:
        report = _run(item, forward, backward, gate_order)
    except SystemExit as err:
        return result(False, f"{item.name} called sys.exit({err.code}) while being graded")
    return result(report.passed, str(report))


def _worker(student, out, gate_order):
    """Import `student`, grade each function, append one JSON line per event to `out`."""
    def emit(**event):
        with open(out, "a") as f:
            f.write(json.dumps(event) + "\n")

    sys.path.insert(0, str(Path(student).parent))
    spec = importlib.util.spec_from_file_location("student", student)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:    # SyntaxError, ImportError, SystemExit: all are the student's file's
        emit(import_error=f"{type(err).__name__}: {err}")
        return
    functions = vars(module)
    if not any(callable(functions.get(item.name)) for item in GRADED):
        emit(no_functions=True)
    graded = {}
    for item in GRADED:
        if item.optional and item.name not in functions:
            continue
        emit(started=item.name)
        try:
            graded[item.name] = grade_one(item, functions, gate_order, graded)
            emit(test=graded[item.name])
        except Exception as err:   # a failure of the grader itself: reported, then the next test
            emit(test={"name": item.name, "score": 0, "max_score": item.points,
                       "output": f"the grader could not run this check: {type(err).__name__}: {err}"})
    emit(done=True)


# --------------------------------------------------------------------------
# Grading a file (in a separate process)
# --------------------------------------------------------------------------


def grade_file(path, timeout=60.0, gate_order="ifog"):
    """Grade the student's file at `path`: {"score", "max_score", "output", "tests": [...]}."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"grade: {str(path)!r} is a folder; give the student's .py file")
    if not path.is_file():
        raise FileNotFoundError(f"grade: no student file {str(path)!r}")
    if sorted(gate_order) != sorted("ifgo"):
        raise ValueError(f"grade: --gate-order must be a permutation of 'ifgo', got {gate_order!r}")
    if not 0 < timeout < math.inf:
        raise ValueError(f"grade: --timeout must be a number of seconds > 0 and finite, got {timeout}")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "events.jsonl"
        out.touch()
        command = [sys.executable, "-m", "tinygrad_rnn.grade", str(path.resolve()), str(out), gate_order]
        stopped = None
        try:
            process = subprocess.run(command, cwd=path.resolve().parent, stdin=subprocess.DEVNULL,
                                     capture_output=True, text=True, timeout=timeout,
                                     env={**os.environ, "MPLBACKEND": "Agg"})
            if process.returncode < 0:
                name = next((s.name for s in signal.Signals if s == -process.returncode), "unknown")
                stopped = f"the student's code was killed by signal {-process.returncode} ({name}; out of memory?)"
            elif process.returncode != 0:
                stopped = (f"the student's file stopped the grader (exit status {process.returncode}): "
                           + (process.stderr.strip().splitlines() or ["no message"])[-1])
        except subprocess.TimeoutExpired:
            stopped = f"stopped after {timeout:g} s (an infinite loop?)"
        events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    if not stopped and not any("done" in e or "import_error" in e for e in events):
        stopped = "the student's file ended the grader's process early (exit status 0: os._exit?)"
    return _collect(path.name, events, stopped)


def _collect(name, events, stopped):
    """The tests from the worker's events; every test not reached gets 0 and the reason."""
    tests, running, message = {}, None, ""
    for event in events:
        if "import_error" in event:
            message = f"{name} could not be imported: {event['import_error']}"
        if "no_functions" in event:
            message = (f"{name} defines none of the graded functions ("
                       + ", ".join(g.name for g in GRADED if not g.optional) + ")")
        running = event.get("started", running)
        if "test" in event:
            tests[event["test"]["name"]] = event["test"]
            running = None
    if stopped and running:
        message = f"{running}: {stopped}"
    elif stopped and not message:
        message = stopped
    results = []
    for item in GRADED:
        if item.name in tests:
            results.append(tests[item.name])
        elif not item.optional or item.name == running:
            reason = message or f"{item.name} was not graded"
            results.append({"name": item.name, "score": 0, "max_score": item.points, "output": f"not graded: {reason}"})
    for test in results:
        test["visibility"] = "visible"
    score = sum(t["score"] for t in results)
    total = sum(t["max_score"] for t in results)
    summary = f"{name}: {score}/{total} points" + (f". {message}" if message else "")
    return {"score": score, "max_score": total, "output": summary, "tests": results}


def to_text(result):
    """The summary, then one line per passed function and the report's head for each other one."""
    lines = [result["output"], ""]
    for test in result["tests"]:
        passed = test["score"] == test["max_score"]
        lines.append(f"{test['name']}: {test['score']}/{test['max_score']}" + (" passed" if passed else ""))
        if not passed:
            lines += ["    " + line for line in test["output"].splitlines()[:12]]
    return "\n".join(lines)


def to_gradescope(result):
    """Gradescope's results.json: top-level score and output, and one entry per test."""
    return {"score": result["score"], "output": result["output"], "tests": result["tests"]}


def command_grade(args):
    result = grade_file(args.student, timeout=args.timeout, gate_order=args.gate_order)
    if args.format == "text":
        print(to_text(result))
    elif args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        output = Path(args.output or ("/autograder/results/results.json" if Path("/autograder/results").is_dir()
                                      else "results.json"))
        if output.is_dir():
            output = output / "results.json"
        if output.exists() and os.path.samefile(output, args.student):
            raise ValueError(f"grade: --output {str(output)!r} is the student's file; writing the results "
                             f"there would replace it: choose another file such as results.json")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(to_gradescope(result), indent=2))
        except OSError as err:
            raise RuntimeError(f"grade: cannot write {output}: {err.strerror or err}; pass --output PATH") from err
        print(f"{result['output']}; wrote {output}")
    return 0


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:
        import argparse
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 and finite, got {text}")
    return value


def add_command(commands):
    """Register `tinygrad-rnn grade` on the CLI's subparsers."""
    grade = commands.add_parser("grade", help="grade a student's file of CS231n RNN/LSTM/GRU functions")
    grade.add_argument("student", help="the student's .py file")
    grade.add_argument("--format", choices=["text", "json", "gradescope"], default="text",
                       help="text (default), json, or gradescope (writes results.json)")
    grade.add_argument("--timeout", type=_seconds, default=60.0,
                       help="seconds the student's code may run in all (default 60)")
    grade.add_argument("--gate-order", default="ifog",
                       help="the LSTM gate blocks' order in the student's code (default ifog, CS231n's)")
    grade.add_argument("--output", help="where --format gradescope writes (default /autograder/results/"
                       "results.json when that folder exists, else ./results.json)")
    grade.set_defaults(run=command_grade)


if __name__ == "__main__":
    _worker(*sys.argv[1:4])
