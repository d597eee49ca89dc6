"""A careless user's mistakes, found by an adversarial pass: each ends in a clear error or a
correct result, and no file of the user's is lost (real files, a real Ctrl-C)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import apps, assignment, cli, io


def run_cli(argv):
    """cli.main in this process: (exit status, stderr)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as stop:     # argparse's usage errors
        status = stop.code
    return status


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------

def test_ctrl_c_while_the_command_is_still_starting_exits_130_without_a_traceback(tmp_path):
    script = Path(sys.executable).parent / "tinygrad-rnn"
    if not script.exists():
        pytest.skip("the tinygrad-rnn script is not installed beside this python")
    process = subprocess.Popen([str(script), "train", "--task", "routine", "--steps", "100000",
                                "--checkpoint", str(tmp_path / "o.npz")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.15)                  # inside the imports (NumPy, Numba), before cli.main runs
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not [name for name in os.listdir(tmp_path) if "tmp" in name]


def test_a_device_as_checkpoint_is_refused_before_training(capsys):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    assert run_cli(["train", "--task", "routine", "--steps", "1", "--checkpoint", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert "'/dev/null'" in err and "not a regular file" in err


def test_reading_a_device_never_reads_without_end():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    assert not io.is_checkpoint("/dev/zero")          # zipfile would read /dev/zero until memory runs out
    with pytest.raises(ValueError, match="not a regular file"):
        io.load("/dev/zero")


def test_grade_never_writes_its_results_over_the_student_file(tmp_path, capsys):
    student = tmp_path / "student.py"
    student.write_text("import numpy as np\n# my work\n")
    assert run_cli(["grade", student, "--format", "gradescope", "--output", student]) == 1
    assert student.read_text() == "import numpy as np\n# my work\n"
    assert "--output" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["nan", "inf"])
def test_grade_timeout_must_be_finite(tmp_path, seconds, capsys):
    student = tmp_path / "student.py"
    student.write_text("")
    assert run_cli(["grade", student, "--timeout", seconds]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_grade_a_folder_says_it_is_a_folder(tmp_path, capsys):
    assert run_cli(["grade", tmp_path]) == 1
    assert "is a folder" in capsys.readouterr().err


def test_assignment_make_keeps_a_students_edited_exercise(tmp_path):
    out = tmp_path / "hw"
    written = assignment.make(out)
    assignment.make(out)                               # again over untouched files: fine
    exercise = written[0]
    exercise.write_text(exercise.read_text() + "\n# my answer\n")
    with pytest.raises(FileExistsError, match="refusing to replace"):
        assignment.make(out)
    assert exercise.read_text().endswith("# my answer\n")


def test_assignment_make_into_a_file_is_refused_and_keeps_it(tmp_path, capsys):
    target = tmp_path / "notes"
    target.write_text("mine")
    assert run_cli(["assignment", "make", target]) == 1
    assert target.read_text() == "mine"
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["train", "--task", "pixels", "--levels", "1"], "--levels"),
    (["train", "--task", "pixels", "--levels", "100000"], "--levels"),     # would allocate 37 GiB
    (["draw", "x.npz", "-n", "100000000"], "--count"),                    # would allocate 48 GiB
])
def test_out_of_range_numbers_name_the_flag(argv, flag, capsys):
    assert run_cli(argv) == 2
    assert flag in capsys.readouterr().err


def test_tbptt_takes_at_most_two_numbers(tmp_path, capsys):
    assert run_cli(["train", "--task", "chars", "--tbptt", "3", "2", "1", "--checkpoint", tmp_path / "o.npz"]) == 1
    assert "--tbptt takes K1 or K1 K2" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


# --------------------------------------------------------------------------
# hand-edited checkpoint headers
# --------------------------------------------------------------------------

def set_option(key, value):
    def edit(header):
        header["extra"]["task_options"][key] = value
        return header
    return edit


def set_model_type(header):
    header["extra"]["model_type"] = "os.system"
    return header


@pytest.mark.parametrize("edit, field", [
    (set_option("batch_size", 10**9), "task_options.batch_size"),     # would allocate 730 GiB
    (set_option("vocab", 123), "task_options.vocab"),
    (set_model_type, "extra.model_type"),
])
def test_edited_task_options_name_the_file_and_field(routine_checkpoint, edit_header, tmp_path, edit, field):
    path = edit_header(routine_checkpoint, tmp_path / "edited.npz", edit)
    with pytest.raises(ValueError, match=field) as error:
        apps.resume(path)
    assert "edited.npz" in str(error.value)


def test_a_config_size_that_is_a_list_names_the_field(routine_checkpoint, edit_header, tmp_path):
    def edit(header):
        header["config"]["hidden_size"] = [8]
        return header
    path = edit_header(routine_checkpoint, tmp_path / "edited.npz", edit)
    with pytest.raises(ValueError, match=r"config\.hidden_size must be a number"):
        apps.read_checkpoint(path)


# --------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------

def test_adam_betas_must_be_a_pair():
    w = tr.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="betas must be two numbers"):
        tr.optim.Adam([w], betas=0.9)


def test_an_optimizer_refuses_a_non_leaf_tensor():
    w = tr.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="parameter 0 .* is not a leaf"):
        tr.optim.SGD([w * 2], lr=0.1)


def test_load_state_dict_refuses_non_finite_values_and_changes_nothing():
    model = tr.nn.LSTM(3, 4, fused=False)
    before = {name: np.array(value) for name, value in model.state_dict().items()}
    state = {name: np.ones_like(value) for name, value in before.items()}
    last = sorted(state)[-1]
    state[last].flat[0] = np.nan
    with pytest.raises(ValueError, match=f"'{last}' holds 1 NaN/Inf values"):
        model.load_state_dict(state)
    assert all(np.array_equal(before[name], value) for name, value in model.state_dict().items())


def test_io_load_into_refuses_a_checkpoint_of_nan_weights(tmp_path):
    model = tr.nn.Linear(2, 2)
    before = {name: np.array(value) for name, value in model.state_dict().items()}
    io.save({name: np.full_like(value, np.nan) for name, value in before.items()}, tmp_path / "nan.npz")
    with pytest.raises(ValueError, match="NaN/Inf"):
        io.load(tmp_path / "nan.npz", into=model)
    assert all(np.array_equal(before[name], value) for name, value in model.state_dict().items())


def test_detect_anomaly_on_the_fused_path_names_the_time_step_and_batch_row_of_the_input():
    model = tr.nn.LSTM(3, 4, fused=True)
    x = np.random.default_rng(0).standard_normal((6, 3, 3)).astype(np.float32)
    x[4, 2, 1] = np.nan
    with tr.detect_anomaly(), pytest.raises(tr.AnomalyError, match=r"LSTMSequence .* already contains NaN"
                                                                  r" at time step 4, batch row 2"):
        model(tr.Tensor(x))


def test_detect_anomaly_names_where_a_gradient_passed_to_backward_is_nan():
    model = tr.nn.GRU(3, 4, fused=True)
    out, _ = model(tr.randn(6, 3, 3))
    grad = np.ones(out.shape, np.float32)
    grad[3, 1, 0] = np.inf
    with tr.detect_anomaly(), pytest.raises(tr.AnomalyError, match=r"gradient passed to backward\(\) contains "
                                                                  r"Inf; first at index \[3, 1, 0\]"):
        out.backward(tr.Tensor(grad))


def test_detect_anomaly_names_the_index_on_the_composite_path():
    x = tr.Tensor([1.0, 2.0, np.inf])
    with tr.detect_anomaly(), pytest.raises(tr.AnomalyError, match=r"first at index \[2\]"):
        x.tanh()


def test_an_empty_prime_names_the_flag(tmp_path, capsys):
    path = tmp_path / "chars.npz"
    assert run_cli(["train", "--task", "chars", "--steps", "1", "--hidden", "8", "--checkpoint", path]) == 0
    capsys.readouterr()
    assert run_cli(["sample", path, "--prime", ""]) == 1
    assert "--prime must have at least one character" in capsys.readouterr().err


def test_a_corpus_cut_shorter_than_a_window_names_the_flags(tmp_path, capsys):
    assert run_cli(["train", "--task", "chars", "--max-chars", "5", "--steps", "1",
                    "--checkpoint", tmp_path / "o.npz"]) == 1
    err = capsys.readouterr().err
    assert "--seq-len" in err and "--max-chars" in err
    assert not (tmp_path / "o.npz").exists()


def test_numpy_operators_on_a_tensor_keep_the_graph():
    a = tr.Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], np.float32) * a + np.float32(1.0)
    assert isinstance(y, tr.Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    assert (np.array([0.0, 5.0], np.float32) < a).data.tolist() == [True, False]


def test_other_numpy_functions_of_a_tensor_are_refused():
    a = tr.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"np.tanh of a Tensor would drop the graph"):
        np.tanh(a)          # was an object array of Tensors, and backward never saw it


def test_tr_tensor_copies_an_array_as_torch_tensor_does():
    array = np.array([1.0, 2.0], np.float32)
    t = tr.tensor(array)
    array[0] = 99.0
    assert t.data[0] == 1.0
