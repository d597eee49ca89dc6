"""The autograder: `tinygrad-rnn grade` gives partial credit and never crashes on a student's file."""
import json
import shutil
from pathlib import Path

import pytest

from tinygrad_rnn import cli, grade

STUDENTS = Path(__file__).parent / "students"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
TOP_LEVEL = {"score", "output", "tests", "visibility", "stdout_visibility", "execution_time", "output_format",
             "extra_data", "leaderboard"}


def validate_gradescope(results):
    """Gradescope's results.json: top-level score, and tests with name, score, max_score, output, visibility."""
    assert set(results) <= TOP_LEVEL and isinstance(results["score"], (int, float))
    assert isinstance(results["tests"], list) and results["tests"]
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "output", "visibility"}
        assert isinstance(test["name"], str) and isinstance(test["output"], str) and test["output"]
        assert 0 <= test["score"] <= test["max_score"] and test["visibility"] in VISIBILITY
    assert results["score"] == sum(t["score"] for t in results["tests"])


def student_file(tmp_path, body, name="student.py"):
    path = tmp_path / name
    path.write_text(body)
    return path


def grade_to_json(tmp_path, path, *options):
    out = tmp_path / "results.json"
    assert cli.main(["grade", str(path), "--format", "gradescope", "--output", str(out), *options]) == 0
    results = json.loads(out.read_text())
    validate_gradescope(results)
    return results, {t["name"]: t for t in results["tests"]}


def test_a_correct_student_gets_full_marks(tmp_path):
    path = shutil.copy(STUDENTS / "cs231n_solution.py", tmp_path / "student.py")
    results, tests = grade_to_json(tmp_path, path)
    assert results["score"] == sum(g.points for g in grade.GRADED) and "rnn_backward_truncated" in tests
    assert all(t["score"] == t["max_score"] for t in tests.values())


def test_a_buggy_student_gets_partial_credit_and_the_finding(tmp_path):
    path = student_file(tmp_path, f"import sys\nsys.path.insert(0, {str(STUDENTS)!r})\n"
                                  "from cs231n_solution import *\n"
                                  "from bugs import dc_missing_path_through_h as lstm_step_backward\n"
                                  "from bugs import lstm_backward_drops_dc as lstm_backward\n")
    results, tests = grade_to_json(tmp_path, path)
    assert tests["lstm_step_backward"]["score"] == 0 and "through h" in tests["lstm_step_backward"]["output"]
    assert tests["lstm_backward"]["score"] == 0 and "carried from step t+1" in tests["lstm_backward"]["output"]
    assert tests["lstm_step_forward"]["score"] == tests["lstm_step_forward"]["max_score"]
    assert 0 < results["score"] < sum(t["max_score"] for t in tests.values())


@pytest.mark.parametrize("body, message", [
    ("raise RuntimeError('boom')\n", "could not be imported: RuntimeError: boom"),
    ("def rnn_step_forward(:\n", "could not be imported: SyntaxError"),
    ("import sys\nsys.exit(3)\n", "could not be imported: SystemExit: 3"),
    ("import no_such_module_here\n", "could not be imported: ModuleNotFoundError"),
])
def test_a_file_that_cannot_be_imported_gets_zero_with_the_reason(tmp_path, body, message):
    results, tests = grade_to_json(tmp_path, student_file(tmp_path, body))
    assert results["score"] == 0 and message in results["output"]
    assert all(message in t["output"] for t in tests.values())


def test_an_empty_file_gets_zero_and_names_each_missing_function(tmp_path):
    results, tests = grade_to_json(tmp_path, student_file(tmp_path, ""))
    assert results["score"] == 0
    assert "rnn_step_forward is missing" in tests["rnn_step_forward"]["output"]
    assert "rnn_backward_truncated" not in tests                 # optional: graded only when defined
    assert "not graded yet" in tests["rnn_step_backward"]["output"] or "missing" in tests["rnn_step_backward"]["output"]


def test_a_function_that_loops_forever_or_exits_is_graded_not_fatal(tmp_path):
    body = (f"import sys\nsys.path.insert(0, {str(STUDENTS)!r})\nfrom cs231n_solution import *\n"
            "def gru_step_forward(*args):\n    while True:\n        pass\n"
            "def lstm_step_forward(*args):\n    sys.exit(1)\n")
    results, tests = grade_to_json(tmp_path, student_file(tmp_path, body), "--timeout", "10")
    assert tests["rnn_step_backward"]["score"] == 2                 # graded before the loop started
    assert "lstm_step_forward called sys.exit(1)" in tests["lstm_step_forward"]["output"]
    assert "gru_step_forward: stopped after 10 s" in tests["gru_step_forward"]["output"]
    assert tests["gru_step_backward"]["score"] == 0


def test_text_and_json_formats(tmp_path, capsys):
    path = shutil.copy(STUDENTS / "cs231n_solution.py", tmp_path / "student.py")
    assert cli.main(["grade", str(path), "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["score"] == results["max_score"]
    assert cli.main(["grade", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"student.py: {results['score']}/{results['max_score']} points")
    assert "lstm_step_backward: 2/2 passed" in text


def test_user_mistakes_get_one_line_not_a_traceback(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nothing.py")]) == 1
    assert "tinygrad-rnn: error: grade: no student file" in capsys.readouterr().err
    path = student_file(tmp_path, "")
    assert cli.main(["grade", str(path), "--gate-order", "ifgx"]) == 1
    assert "--gate-order must be a permutation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", str(path), "--timeout", "0"])
    assert "must be a number of seconds > 0" in capsys.readouterr().err


@pytest.mark.parametrize("body, message", [
    ("", "defines none of the graded functions (rnn_step_forward"),
    ("import os\nos._exit(0)\n", "ended the grader's process early"),
    ("name = input('your name? ')\n", "could not be imported: EOFError"),      # stdin is closed, never the TA's
])
def test_odd_files_get_zero_with_a_message_saying_why(tmp_path, body, message):
    results, tests = grade_to_json(tmp_path, student_file(tmp_path, body), "--timeout", "20")
    assert results["score"] == 0 and message in results["output"], results["output"]


def test_an_unwritable_results_file_is_one_line_not_a_traceback(tmp_path, capsys):
    blocker = student_file(tmp_path, "", name="not_a_folder")
    out = blocker / "results.json"                                  # a path under a file
    assert cli.main(["grade", str(student_file(tmp_path, "")), "--format", "gradescope", "--output", str(out)]) == 1
    assert "grade: cannot write" in capsys.readouterr().err


def test_a_student_killed_by_a_signal_gets_a_graded_result(tmp_path):
    body = "import os, signal\ndef rnn_step_forward(*args):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    results, tests = grade_to_json(tmp_path, student_file(tmp_path, body), "--timeout", "20")
    assert results["score"] == 0 and "killed by signal 9 (SIGKILL" in tests["rnn_step_forward"]["output"]
