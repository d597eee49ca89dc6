"""The assignment kit: solutions marked in the tutorials, stripped for students, graded by running them."""
import re
from pathlib import Path

import pytest

from tinygrad_rnn import assignment, cli

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
WITH_SOLUTIONS = sorted(p for p in TUTORIALS.glob("*.py") if assignment.has_solutions(p))
QUICK = [p for p in WITH_SOLUTIONS if not p.name.startswith("10_")]   # 10 compiles kernels: test_tutorials runs it


def test_the_tutorials_that_ask_for_code_mark_their_solutions():
    names = {p.name for p in WITH_SOLUTIONS}
    assert {"03_bptt_by_hand.py", "10_fast_kernels.py", "12_grading_your_lstm.py", "13_inside_autograd.py"} <= names


def test_strip_keeps_the_docstring_and_raises_not_implemented():
    source = ('def f(x):\n    """Return 2 x."""\n    # BEGIN SOLUTION\n    y = 2 * x\n    return y\n'
              '    # END SOLUTION\n\n\nprint(f(1))\n')
    stripped = assignment.strip_solutions(source, "t.py")
    assert '"""Return 2 x."""' in stripped and "2 * x" not in stripped and "print(f(1))" in stripped
    assert '    raise NotImplementedError("f is not implemented yet: the exercise in t.py")\n' in stripped
    namespace = {}
    with pytest.raises(NotImplementedError, match="f is not implemented yet"):
        exec(stripped, namespace)
    with pytest.raises(ValueError, match="t.py, line 3: # BEGIN SOLUTION without a matching"):
        assignment.strip_solutions(source.replace("    # END SOLUTION\n", ""), "t.py")
    with pytest.raises(ValueError, match="END SOLUTION without"):
        assignment.strip_solutions("# END SOLUTION\n", "t.py")


@pytest.mark.parametrize("path", QUICK, ids=[p.name for p in QUICK])
def test_the_solution_version_passes_its_check(path):
    report = assignment.check_tutorial(path)
    assert report.passed, str(report)


def test_the_student_version_fails_each_check_with_not_implemented(tmp_path, capsys):
    assert cli.main(["assignment", "make", str(tmp_path)]) == 0
    assert "test_assignment.py" in capsys.readouterr().out
    written = sorted((tmp_path / "tutorials").glob("*.py"))
    assert [p.name for p in written] == [p.name for p in WITH_SOLUTIONS]
    for path in written:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "not implemented yet" in text
        report = assignment.check_tutorial(path)
        assert not report.passed
        assert re.fullmatch(r"\w+ is not implemented yet \(" + re.escape(path.name) + r"\)", report.finding)
    entry = (tmp_path / "test_assignment.py").read_text()
    assert "check_tutorial" in entry and 'glob("*.py")' in entry


def test_make_without_tutorials_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tutorials with # BEGIN SOLUTION"):
        assignment.make(tmp_path / "out", tutorials=tmp_path)
