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


# --------------------------------------------------------------------------
# Bugs from a second, independently written corpus that the grader once missed
# or located too vaguely. Each small student below is CS231n-style numpy with
# at most one planted bug (`bug`); the finding must name the cause.
# --------------------------------------------------------------------------


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def rnn_student(bug=None):
    """rnn_forward and rnn_backward (BPTT) keeping a list of per-step caches."""
    def forward(x, h0, Wx, Wh, b):
        h, caches, hs = (np.zeros_like(h0) if bug == "h0 ignored" else h0), [], []
        for t in range(x.shape[1]):
            h_next = np.tanh(x[:, t] @ Wx + h @ Wh + b)
            caches.append((x[:, t], h, h_next, Wx, Wh))
            hs.append(h if bug == "h stored before the step" else h_next)
            h = h_next
        stored = {"caches reversed": caches[::-1], "caches shifted": caches[1:] + caches[:1]}.get(bug, caches)
        return np.stack(hs, axis=1), stored

    def backward(dh, caches, k=None):
        """BPTT; with k, truncated: the gradient is cut before every step t with t % k == 0."""
        xs = np.stack([c[0] for c in caches], axis=1)              # (N, T, D)
        Wx, Wh = caches[0][3:]
        dx, dWx, dWh, db = np.zeros(xs.shape), np.zeros(Wx.shape), np.zeros(Wh.shape), np.zeros(Wh.shape[0])
        dh_prev = np.zeros(dh[:, 0].shape)
        for t in reversed(range(dh.shape[1])):
            x, h_prev, h_next = caches[t][:3]
            da = (dh[:, t] + dh_prev) * (1 - h_next ** 2)
            dx[:, t], dh_prev = da @ Wx.T, da @ Wh.T
            dWx += xs[:, t - 1 if bug == "dWx with x of step t-1" else t].T @ da
            dWh += h_prev.T @ da
            db += da.sum(axis=0)
            if k and t % k == 0:
                dh_prev = np.zeros_like(dh_prev)
            if t == 1:
                dh_prev_of_step_1 = dh_prev
        if bug == "dh0 zero":
            dh_prev = np.zeros_like(dh_prev)
        if bug == "dh0 from step 1":
            dh_prev = dh_prev_of_step_1          # a NameError on a one-step sequence, as in the student's code
        return dx, dh_prev, dWx, dWh, db

    return forward, backward


def rnn_step_forward_with(bug):
    def forward(x, h_prev, Wx, Wh, b):
        a = x @ Wx + h_prev @ Wh + (0 if bug == "no bias" else b)
        return np.maximum(a, 0) if bug == "relu" else np.tanh(a)
    return forward


def lstm_step_forward_with(bug):
    """CS231n's blocks i, f, o, g."""
    def forward(x, h_prev, c_prev, Wx, Wh, b):
        a, H = x @ Wx + h_prev @ Wh + b, h_prev.shape[1]
        a_o = a[:, 2 * H:3 * H + (bug == "o's slice one column too wide")]
        a = np.split(a, 4, axis=1)
        i = np.tanh(a[0]) if bug == "i as tanh" else sigmoid(a[3] if bug == "i reads g's block" else a[0])
        f, o = sigmoid(a[1]), sigmoid(a_o)
        g = sigmoid(a[3]) if bug == "g as sigmoid" else np.tanh(a[3])
        c = f * c_prev + i * g
        return o * np.tanh(c), c
    return forward


def lstm_forward_c0_from_h0(x, h0, Wx, Wh, b):
    h, c, hs = h0, h0.copy(), []                                  # CS231n starts from c0 = 0
    for t in range(x.shape[1]):
        h, c = lstm_step_forward_with(None)(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
    return np.stack(hs, axis=1)


def gru_student(bug=None):
    """gru_step_forward/backward with PyTorch's equations (blocks r, z, n; two biases)."""
    def forward(x, h_prev, Wx, Wh, bx, bh):
        ax, ah = np.split(x @ Wx + bx, 3, axis=1), np.split(h_prev @ Wh + bh, 3, axis=1)
        r = sigmoid(ax[0] + ah[0])
        z = sigmoid(ax[1] + (ah[0] if bug == "z reads r's hidden block" else ah[1]))
        hn = (r * h_prev) @ np.split(Wh, 3, axis=1)[2] + np.split(bh, 3)[2] if bug == "r applied twice" else ah[2]
        a_n = ax[2] + (hn if bug == "no reset" else r * hn)
        n = sigmoid(a_n) if bug == "n as sigmoid" else np.tanh(a_n)
        return (1 - z) * n + z * h_prev, (x, h_prev, Wx, Wh, r, z, n, hn)

    def backward(dh_next, cache):
        x, h_prev, Wx, Wh, r, z, n, hn = cache
        da_n = dh_next * (1 - z) * (1 - n if bug == "tanh' as 1 - n" else 1 - n ** 2)
        da_r = da_n * hn * r * (1 - r)
        da_z = dh_next * (h_prev - n) * z * (1 - z)
        dax, dah = np.hstack((da_r, da_z, da_n)), np.hstack((da_r, da_z, da_n * r))
        return (dax @ Wx.T, dh_next * z + dah @ Wh.T, x.T @ dax, h_prev.T @ dah, dax.sum(0), dah.sum(0))

    return forward, backward


def test_the_second_corpus_students_pass_without_a_bug():
    assert check.check_rnn_sequence(*rnn_student(), verbose=False).passed
    assert check.check_rnn_step(rnn_step_forward_with(None), verbose=False).passed
    assert check.check_lstm_step(lstm_step_forward_with(None), gate_order="ifog", verbose=False).passed
    assert check.check_gru_step(*gru_student(), verbose=False).passed


REGRESSIONS = {
    "relu": (lambda: check.check_rnn_step(rnn_step_forward_with("relu"), verbose=False), r"relu instead of tanh"),
    "no bias": (lambda: check.check_rnn_step(rnn_step_forward_with("no bias"), verbose=False), r"bias b"),
    "h stored before the step": (lambda: check.check_rnn_sequence(rnn_student("h stored before the step")[0],
                                                                  verbose=False), r"shifted by one time step"),
    "h0 ignored": (lambda: check.check_rnn_sequence(rnn_student("h0 ignored")[0], verbose=False),
                   r"t=0.*ignores h0"),
    "c0 from h0": (lambda: check.check_lstm_sequence(lstm_forward_c0_from_h0, gate_order="ifog", verbose=False),
                   r"c0 = h0"),
    "dWx with x of step t-1": (lambda: check.check_rnn_sequence(*rnn_student("dWx with x of step t-1"),
                                                                verbose=False), r"dWx pairs da of step t with x of "
                                                                                r"step t-1"),
    "caches reversed": (lambda: check.check_rnn_sequence(*rnn_student("caches reversed"), verbose=False),
                        r"cache\[t\] must be step t's"),
    "dh0 zero": (lambda: check.check_rnn_sequence(*rnn_student("dh0 zero"), verbose=False), r"dh0 is zero"),
    "dh0 from step 1": (lambda: check.check_rnn_sequence(*rnn_student("dh0 from step 1"), verbose=False),
                        r"dh0 is wrong while every other gradient is right"),
    "caches shifted": (lambda: check.check_rnn_sequence(*rnn_student("caches shifted"), verbose=False),
                       r"shifted by one step.*cache\[t\] must be step t's"),
    "o's slice one column too wide": (lambda: check.check_lstm_step(
        lstm_step_forward_with("o's slice one column too wide"), gate_order="ifog", verbose=False),
        r"o has shape \(\d, (\d)\).*gate slices"),
    "dnext_c ignored": (lambda: check.check_lstm_step(
        solution.lstm_step_forward, lambda dh, dc, cache: solution.lstm_step_backward(dh, 0 * dc, cache),
        gate_order="ifog", verbose=False), r"through dc_next"),
    "i as tanh": (lambda: check.check_lstm_step(lstm_step_forward_with("i as tanh"), gate_order="ifog",
                                                verbose=False), r"gate i \(input gate\) is wrong"),
    "i reads g's block": (lambda: check.check_lstm_step(lstm_step_forward_with("i reads g's block"),
                                                        gate_order="ifog", verbose=False),
                          r"gate i \(input gate\) does not follow its block"),
    "g as sigmoid": (lambda: check.check_lstm_step(lstm_step_forward_with("g as sigmoid"), gate_order="ifog",
                                                   verbose=False), r"gate g \(candidate\) is wrong"),
    "no reset": (lambda: check.check_gru_step(gru_student("no reset")[0], verbose=False),
                 r"gate r \(reset gate\) is not applied"),
    "r applied twice": (lambda: check.check_gru_step(gru_student("r applied twice")[0], verbose=False),
                        r"gate r \(reset gate\) is used wrongly"),
    "n as sigmoid": (lambda: check.check_gru_step(gru_student("n as sigmoid")[0], verbose=False),
                     r"gate n \(candidate\) is wrong"),
    "z reads r's hidden block": (lambda: check.check_gru_step(gru_student("z reads r's hidden block")[0],
                                                              verbose=False), r"gate z \(update gate\) is wrong"),
    "tanh' as 1 - n": (lambda: check.check_gru_step(*gru_student("tanh' as 1 - n"), verbose=False),
                       r"local derivative of gate n \(candidate\) is wrong"),
}


@pytest.mark.parametrize("bug", list(REGRESSIONS))
def test_the_second_corpus_bugs_are_located(bug):
    run, where = REGRESSIONS[bug]
    report = run()
    assert not report.passed and len(report.findings) == 1, (bug, report.findings)
    assert re.search(where, report.finding), (bug, report.finding)
    named = set(re.findall(r"gate ([a-z]) \(", report.finding))
    assert len(named) <= 1, f"{bug}: the finding names several gates: {report.finding}"


def test_a_truncated_backward_that_also_cuts_before_step_0_is_told_dh0_gets_gradient():
    forward, backward = rnn_student()
    def cut_before_0_too(dh, caches):
        return backward(dh, caches, k=3)

    report = check.check_truncated_bptt(forward, cut_before_0_too, 3, trials=1, verbose=False)
    assert "dh0 is zero" in (report.finding or ""), report.finding


def test_an_error_inside_numpy_is_reported_at_the_students_line_with_the_shapes():
    def rnn_step_forward(x, h_prev, Wx, Wh, b):
        stacked = np.hstack((x, h_prev.T))                        # h_prev should not be transposed
        return np.tanh(stacked @ np.vstack((Wx, Wh)) + b)

    finding = check.check_rnn_step(rnn_step_forward, verbose=False).finding
    assert "in rnn_step_forward: stacked = np.hstack((x, h_prev.T))" in finding, finding
    assert re.search(r"there x has shape \(\d, \d\), h_prev has shape", finding), finding
