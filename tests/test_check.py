"""The grading helper: a correct student passes, each planted bug is caught and located.

The students live in tests/students: `cs231n_solution.py` gets everything
right (CS231n's layout, LSTM gate blocks i, f, o, g); `bugs.py` holds one
realistic mistake per function, each with the words the finding must contain
(the gate, parameter, time step or layout that locates it).
"""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import check

sys.path.insert(0, str(Path(__file__).parent / "students"))
import cs231n_solution as solution  # noqa: E402
from bugs import BUGS  # noqa: E402


def check_everything(functions, seed=0):
    """Every check on a student's {name: function}, with CS231n's LSTM order; {check name: report}."""
    f = functions.get
    return {
        "rnn_step": check.check_rnn_step(f("rnn_step_forward"), f("rnn_step_backward"), seed=seed, verbose=False),
        "rnn_sequence": check.check_rnn_sequence(f("rnn_forward"), f("rnn_backward"), seed=seed, verbose=False),
        "lstm_step": check.check_lstm_step(f("lstm_step_forward"), f("lstm_step_backward"), gate_order="ifog",
                                           seed=seed, verbose=False),
        "lstm_sequence": check.check_lstm_sequence(f("lstm_forward"), f("lstm_backward"), gate_order="ifog",
                                                   seed=seed, verbose=False),
        "gru_step": check.check_gru_step(f("gru_step_forward"), f("gru_step_backward"), seed=seed, verbose=False),
        "truncated": check.check_truncated_bptt(f("rnn_forward"), f("rnn_backward_truncated"), 3, seed=seed,
                                                verbose=False),
    }


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 16))
def test_the_correct_student_passes_every_check(seed):
    reports = check_everything(vars(solution), seed)
    assert all(r.passed for r in reports.values()), {k: str(r) for k, r in reports.items() if not r.passed}


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_is_caught_and_located(bug):
    replaced, function, where = BUGS[bug]
    reports = check_everything({**vars(solution), replaced: function})
    failed = {name: r for name, r in reports.items() if not r.passed}
    assert failed, f"{bug}: no check failed"
    findings = [r.finding for r in failed.values()]
    assert any(re.search(where, f) for f in findings), f"{bug}: {findings} do not match {where!r}"


def test_a_correct_cs231n_lstm_gets_one_finding_the_layout():
    report = check.check_lstm_step(solution.lstm_step_forward, solution.lstm_step_backward, verbose=False)
    assert len(report.findings) == 1
    assert "order i,f,o,g" in report.finding and "gate_order='ifog'" in report.finding
    assert str(report).splitlines()[1] == f"finding: {report.finding}"
    assert check.check_lstm_step(solution.lstm_step_forward, solution.lstm_step_backward, gate_order="ifog",
                                 verbose=False).passed
    sequence = check.check_lstm_sequence(solution.lstm_forward, solution.lstm_backward, verbose=False)
    assert len(sequence.findings) == 1 and "gate_order='ifog'" in sequence.finding


def test_pytorch_layout_is_checked_when_asked():
    def forward(x, h_prev, W_ih, W_hh, b):      # PyTorch shapes: W_ih (H, D)
        return solution.rnn_step_forward(x, h_prev, W_ih.T, W_hh.T, b)

    def backward(dh_next, cache):
        dx, dh_prev, dWx, dWh, db = solution.rnn_step_backward(dh_next, cache)
        return dx, dh_prev, dWx.T, dWh.T, db

    assert check.check_rnn_step(forward, backward, layout="pytorch", verbose=False).passed
    with pytest.raises(ValueError, match="layout"):
        check.check_rnn_step(forward, layout="tensorflow", verbose=False)


def test_random_shapes_never_degenerate():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        for _ in range(3):
            N, T, D, H = check._trial_shapes(rng)
            assert len({N, D, H}) == 3 and min(N, D, H) >= 2 and T >= 3


def test_a_transposed_forward_weight_is_named_for_every_seed_with_one_trial():
    bug = BUGS["Wh transposed in forward"][1]
    for seed in range(30):
        report = check.check_rnn_step(bug, trials=1, seed=seed, verbose=False)
        assert "Wh transposed" in report.finding, (seed, report.finding)


def test_student_errors_are_findings_not_crashes():
    def raises(*args):
        raise IndexError("index 5 is out of bounds")

    report = check.check_rnn_step(raises, verbose=False)
    assert not report.passed and "rnn_step_forward raised IndexError: index 5" in report.finding
    assert "not implemented" in check.check_gru_step(lambda *a: (_ for _ in ()).throw(NotImplementedError()),
                                                     verbose=False).finding
    report = check.check_lstm_step(lambda *a: a[0], verbose=False)
    assert "lstm_step_forward should return 2 array(s)" in report.finding
    assert "is missing" in check.check_rnn_sequence(None, verbose=False).finding
    report = check.check_rnn_step(lambda x, h, Wx, Wh, b: np.zeros((1, 7, 7)), verbose=False)
    assert "h_next has shape (1, 7, 7)" in report.finding
    report = check.check_rnn_step(solution.rnn_step_forward, lambda dh, cache: ("a", "b", "c", "d", "e"),
                                  verbose=False)
    assert not report.passed and "shape None" in report.finding


def test_the_report_names_the_wrong_gate_and_lists_the_right_ones(capsys):
    forget_bug = BUGS["forget gate derivative misses c_prev"][1]
    report = check.check_lstm_step(solution.lstm_step_forward, forget_bug, gate_order="ifog")
    text = capsys.readouterr().out
    assert {part for _, _, part in report.failures if part and part.startswith("gate")} == {"gate f (forget gate)"}
    assert "dWx gate f (forget gate)" in text and "correct for: gate i (input gate)" in text


def test_truncated_bptt_reports_which_steps_received_gradient():
    report = check.check_truncated_bptt(solution.rnn_forward, solution.rnn_backward, 3, trials=1, verbose=False)
    assert not report.passed                                       # full BPTT is not truncated
    assert any(re.match(r"  loss at step 4 reached steps 0\.\.4; expected 3\.\.4", line) for line in report.lines)
    with pytest.raises(ValueError, match="k must be a positive int"):
        check.check_truncated_bptt(solution.rnn_forward, solution.rnn_backward, 0)


def test_bad_arguments_from_the_ta_raise():
    with pytest.raises(ValueError, match="gate_order"):
        check.check_lstm_step(solution.lstm_step_forward, gate_order="ifgx")


def test_checks_are_exported():
    assert tr.check.check_lstm_sequence is check.check_lstm_sequence
