"""Off the golden path: nothing lost, checkpoints as untrusted input, no traceback.

Real files, real symlinks and real signals: each test does what a careless
user would and checks that the answer is a clear error or a correct result,
and that no file was replaced or half-written.
"""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import apps, cli, io, nn, optim
from tinygrad_rnn.apps.training import Task, Trainer

CLI = [sys.executable, "-m", "tinygrad_rnn.cli"]


def run_cli(args, cwd, env=None):
    """The command line in its own process: (exit status, stdout, stderr)."""
    process = subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=300,
                             env={**os.environ, **(env or {})})
    return process.returncode, process.stdout, process.stderr


# --------------------------------------------------------------------------
# Nothing lost
# --------------------------------------------------------------------------

def test_checkpoint_equal_to_the_corpus_is_refused(tmp_path, capsys):
    corpus = tmp_path / "mycorpus.txt"
    corpus.write_text("hello world, hello again. " * 20, encoding="utf-8")
    before = corpus.read_bytes()
    link = tmp_path / "same.txt"
    link.symlink_to(corpus)
    for checkpoint in (corpus, link):
        assert cli.main(["train", "--task", "chars", "--corpus", str(corpus), "--checkpoint", str(checkpoint),
                         "--steps", "1"]) == cli.EXIT_ERROR
        assert "also an input of this run" in capsys.readouterr().err
    assert corpus.read_bytes() == before


def test_an_existing_file_that_is_not_a_checkpoint_is_not_replaced(tmp_path, capsys):
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    assert cli.main(["train", "--task", "routine", "--checkpoint", str(notes), "--steps", "1"]) == cli.EXIT_ERROR
    assert "not a tinygrad_rnn checkpoint" in capsys.readouterr().err
    assert notes.read_text() == "my notes"


def _toy_task(loss):
    model = nn.Linear(2, 1)
    return Task("toy", {}, model, next_batch=lambda rng: None, loss=lambda m, batch: loss(m))


@pytest.mark.parametrize("loss", [
    lambda m: (m.weight * float("nan")).sum(),          # the loss itself becomes NaN
    lambda m: (m.weight * 0.0).sqrt().sum(),            # loss 0, but d sqrt(0) = inf: NaN weights
], ids=["nan-loss", "nan-weights"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")       # the NaN is the point of the test
def test_diverged_training_never_replaces_a_good_checkpoint(tmp_path, loss):
    task = _toy_task(loss)
    path = tmp_path / "good.npz"
    io.save(task.model, path)
    before = path.read_bytes()
    result = Trainer(task, optim.SGD(task.model.parameters(), lr=0.1)).train(steps=3, checkpoint=path,
                                                                              progress=False)
    assert result.diverged and result.saved_to is None
    assert path.read_bytes() == before


def test_the_cli_says_a_diverged_run_kept_the_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "run.npz"
    assert cli.main(["train", "--task", "routine", "--hidden", "4", "--steps", "1", "--checkpoint", str(path)]) == 0
    before = path.read_bytes()
    monkeypatch.setattr(Trainer, "weights_are_finite", lambda self: False)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(path), "--steps", "1"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "diverged" in err and "keeps its previous content" in err
    assert path.read_bytes() == before


def test_a_failed_save_after_training_goes_to_a_sibling_file(tmp_path, monkeypatch):
    task = _toy_task(lambda m: (m.weight ** 2).sum())
    target = tmp_path / "run.npz"
    real_save = io.save

    def full_disk(module, path, extra=None):
        if os.fspath(path) == os.fspath(target):
            raise OSError(28, "No space left on device")
        real_save(module, path, extra=extra)

    monkeypatch.setattr(io, "save", full_disk)
    result = Trainer(task, optim.SGD(task.model.parameters(), lr=0.1)).train(steps=2, checkpoint=target,
                                                                              progress=False)
    assert result.saved_to == str(tmp_path / "run.rescued.npz") and "No space left" in result.save_error
    saved = io.load(result.saved_to).state["weight"]
    np.testing.assert_array_equal(saved, task.model.weight.data)
    assert not target.exists()


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    target, link = tmp_path / "real.npz", tmp_path / "link.npz"
    io.save({"w": np.zeros(2)}, target)
    link.symlink_to(target)
    io.save({"w": np.ones(2)}, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(io.load(target).state["w"], np.ones(2))


def test_stale_temporary_files_of_the_target_are_removed(tmp_path):
    stale = tmp_path / ".model.npz.x1y2.tmp"
    other = tmp_path / ".other.npz.x1y2.tmp"
    stale.write_bytes(b"half written")
    other.write_bytes(b"another target's")
    io.save({"w": np.zeros(2)}, tmp_path / "model.npz")
    assert not stale.exists() and other.exists()


def test_the_temporary_of_a_save_still_running_is_kept(tmp_path):
    in_progress = tmp_path / f".model.npz.{os.getpid()}.x1y2.tmp"     # this process is alive
    in_progress.write_bytes(b"being written")
    io.save({"w": np.zeros(2)}, tmp_path / "model.npz")
    assert in_progress.exists()


def test_ctrl_c_while_saving_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    io.save({"w": np.zeros(2)}, path)
    before = path.read_bytes()

    def interrupted(file, arrays):
        file.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "_write_arrays", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.save({"w": np.ones(2)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


# --------------------------------------------------------------------------
# Checkpoints are untrusted input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda h: {**h, "config": {**h["config"], "hidden_size": 200000},
                "extra": {**h["extra"], "task_options": {**h["extra"]["task_options"], "hidden_size": 200000}}},
     "header field hidden_size=200000 does not fit"),
    (lambda h: {**h, "config": "abc"}, "header field 'config' must be a dict"),
    (lambda h: {**h, "extra": json.loads("[" * 100 + "]" * 100)}, "nested more than 32 levels"),
    (lambda h: {**h, "arrays": {k: {**v, "shape": [-1]} for k, v in h["arrays"].items()}}, "sizes >= 0"),
    (lambda h: {**h, "extra": {**h["extra"], "step": -5}}, "extra.step must be an integer >= 0"),
    (lambda h: {**h, "extra": {**h["extra"], "data_rng": {"a": 1}}}, "extra.data_rng is not a generator state"),
    (lambda h: {**h, "extra": {**h["extra"], "clip": float("nan")}}, "clip"),
    (lambda h: {**h, "extra": {**h["extra"], "optimizer": {
        **h["extra"]["optimizer"], "hyperparameters": {"lr": float("nan")}}}}, "lr must be a finite number"),
], ids=["huge-hidden", "config-type", "deep", "negative-shape", "step", "rng", "clip", "lr-nan"])
def test_edited_headers_give_an_error_naming_the_file_and_field(routine_checkpoint, edit_header, tmp_path, change,
                                                                message):
    edited = tmp_path / "edited.npz"
    edit_header(routine_checkpoint, edited, change)
    with pytest.raises(ValueError, match=message) as err:
        apps.resume(edited)
    assert "edited.npz" in str(err.value)


def test_an_array_declaring_a_huge_shape_is_refused_before_allocating(routine_checkpoint, tmp_path):
    with zipfile.ZipFile(routine_checkpoint) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in members if n.startswith("state/"))
    huge = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    huge["shape"] = (100000, 100000, 100)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        for member, data in members.items():
            if member == name:
                with archive.open(member, "w") as file:
                    np.lib.format.write_array_header_1_0(file, huge)
                    file.write(np.zeros(4, np.float32).tobytes())
            else:
                archive.writestr(member, data)
    with pytest.raises(ValueError, match=r"declares shape \(100000, 100000, 100\).*holds only"):
        io.load(tmp_path / "huge.npz")


def test_a_checkpoint_never_opens_the_corpus_it_names(edit_header, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 10, encoding="utf-8")
    path = tmp_path / "chars.npz"
    assert cli.main(["train", "--task", "chars", "--corpus", str(corpus), "--hidden", "4", "--seq-len", "8",
                     "--batch-size", "2", "--steps", "1", "--checkpoint", str(path)]) == 0
    edited = tmp_path / "edited.npz"
    secret = tmp_path / "secret.txt"          # exists, so only a refusal to open it stops the run
    secret.write_text("private text", encoding="utf-8")
    edit_header(path, edited, lambda h: {**h, "extra": {**h["extra"], "task_options": {
        **h["extra"]["task_options"], "corpus": str(secret)}}})
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(edited), "--steps", "1"]) == cli.EXIT_ERROR
    assert "pass it again with --corpus" in capsys.readouterr().err
    other = tmp_path / "other.txt"
    other.write_text("a different text entirely. " * 10, encoding="utf-8")
    assert cli.main(["train", "--resume", str(path), "--corpus", str(other), "--steps", "1"]) == cli.EXIT_ERROR
    assert "not the text this model was trained on" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(path), "--corpus", str(corpus), "--steps", "1"]) == 0


def test_load_into_a_model_is_all_or_nothing(tmp_path):
    model = nn.Linear(2, 2)
    before = model.weight.data.copy()
    io.save({"weight": np.zeros((2, 2)), "bias": np.zeros(3)}, tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="'bias' has shape"):
        io.load(tmp_path / "bad.npz", into=model)
    np.testing.assert_array_equal(model.weight.data, before)


def test_load_state_dict_takes_tensors_and_explains_torch_tensors():
    torch = pytest.importorskip("torch")
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": tr.Tensor(np.eye(2, dtype=np.float32)), "bias": np.ones(2)})
    np.testing.assert_array_equal(model.weight.data, np.eye(2))
    with pytest.raises(TypeError, match=r"\.detach\(\)\.cpu\(\)\.numpy\(\) first"):
        model.load_state_dict({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)})
    np.testing.assert_array_equal(model.bias.data, np.ones(2))


# --------------------------------------------------------------------------
# The command line: one line, the right exit status, Ctrl-C at any moment
# --------------------------------------------------------------------------

def test_ctrl_c_before_training_exits_130_without_traceback(tmp_path):
    """A real SIGINT while the task is being built (before the training loop's handler)."""
    code = ("import os, signal, sys\n"
            "from tinygrad_rnn import apps, cli\n"
            "def build_task(*args, **kwargs):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "apps.build_task = build_task\n"
            "sys.exit(cli.main(['train', '--task', 'routine', '--checkpoint', 'x.npz']))\n")
    process = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert "Traceback" not in process.stderr and "interrupted" in process.stderr
    assert os.listdir(tmp_path) == []


def test_bad_backend_variable_is_one_line(tmp_path):
    status, out, err = run_cli(["train", "--task", "routine", "--steps", "1"], tmp_path,
                               env={"TINYGRAD_RNN_BACKEND": "bogus"})
    assert status == cli.EXIT_ERROR and out == ""
    assert err.strip().splitlines() == [err.strip()] and "TINYGRAD_RNN_BACKEND" in err and "'bogus'" in err


def test_debug_shows_the_traceback(tmp_path):
    status, _, err = run_cli(["train", "--resume", "missing.npz"], tmp_path)
    assert status == cli.EXIT_ERROR and "Traceback" not in err
    for args, env in ((["--debug", "train", "--resume", "missing.npz"], None),
                      (["train", "--resume", "missing.npz", "--debug"], None),
                      (["train", "--resume", "missing.npz"], {"TINYGRAD_RNN_DEBUG": "1"})):
        status, _, err = run_cli(args, tmp_path, env=env)
        assert status != 0 and "Traceback" in err and "does not exist" in err


def test_option_not_valid_for_the_resumed_task(routine_checkpoint, capsys):
    before = routine_checkpoint.read_bytes()
    assert cli.main(["train", "--resume", str(routine_checkpoint), "--tbptt", "2"]) == cli.EXIT_ERROR
    assert "--tbptt does not apply to the resumed task" in capsys.readouterr().err
    assert routine_checkpoint.read_bytes() == before


def test_checkpoint_that_is_a_folder(tmp_path, capsys):
    assert cli.main(["train", "--task", "routine", "--checkpoint", str(tmp_path)]) == cli.EXIT_ERROR
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["sample", str(tmp_path)]) == cli.EXIT_ERROR
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--cells", "nope"], ["--configs", "C9"]])
def test_bench_refuses_unknown_cells_and_configs(args, capsys):
    if cli.benchmark_script() is None:
        pytest.skip("benchmarks/bench_rnn.py not present in this checkout")
    assert cli.main(["bench", *args]) == 2


def test_sampling_at_a_tiny_temperature_is_greedy():
    p = apps.char_rnn.sampling_distribution(np.array([1.0, 3.0, 2.0]), temperature=1e-320)
    np.testing.assert_array_equal(p, [0.0, 1.0, 0.0])
    levels = apps.pixel_rnn.draw_levels(np.array([[[0.0, 5.0, 1.0]]]), 1e-320, np.random.default_rng(0))
    np.testing.assert_array_equal(levels, [[1]])


@pytest.mark.parametrize("make", [
    lambda p: optim.Adam(p, lr=float("nan")), lambda p: optim.SGD(p, lr=0.1, momentum=float("inf")),
    lambda p: optim.RMSprop(p, alpha=float("nan")), lambda p: optim.Adagrad(p, eps=float("inf")),
    lambda p: optim.Adam(p, betas=(0.9, float("nan"))), lambda p: optim.SGD(p, lr=0.1, weight_decay=float("nan")),
    lambda p: optim.clip_grad_norm_(p, float("nan")), lambda p: optim.clip_grad_value_(p, float("inf")),
], ids=["adam-lr", "sgd-momentum", "rmsprop-alpha", "adagrad-eps", "adam-beta2", "weight-decay",
        "clip-norm", "clip-value"])
def test_non_finite_hyperparameters_are_refused(make):
    with pytest.raises(ValueError, match="must be a finite number"):
        make(nn.Linear(2, 2).parameters())


def test_a_schedule_cannot_set_a_nan_learning_rate():
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        opt.lr = float("nan")
    assert opt.lr == 0.1


@pytest.mark.parametrize("options, message", [
    ({"eps": 0}, "eps must be a finite number > 0"), ({"eps": float("nan")}, "eps must be"),
    ({"atol": -1.0}, "atol must be a finite number >= 0"), ({"rtol": float("inf")}, "rtol must be"),
])
def test_gradcheck_refuses_bad_tolerances(options, message):
    with pytest.raises(ValueError, match=message):
        tr.gradcheck(lambda x: x * x, [np.ones(3)], **options)


@pytest.fixture(scope="module")
def pixel_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("pixels") / "pixels.npz"
    assert cli.main(["train", "--task", "pixels", "--hidden", "4", "--steps", "1", "--checkpoint", str(path)]) == 0
    return path


def test_draw_png_into_a_folder_or_without_suffix(pixel_checkpoint, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "1", "--png", str(tmp_path)]) == cli.EXIT_ERROR
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "1", "--png", str(tmp_path / "grid")]) == 0
    assert f"saved {tmp_path / 'grid.png'}" in capsys.readouterr().out
    assert (tmp_path / "grid.png").is_file()
    before = pixel_checkpoint.read_bytes()
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "1", "--png", str(pixel_checkpoint)]) == cli.EXIT_ERROR
    assert pixel_checkpoint.read_bytes() == before


def test_draw_label_for_a_model_without_labels(pixel_checkpoint, capsys):
    assert cli.main(["draw", str(pixel_checkpoint), "--label", "3"]) == cli.EXIT_ERROR
    assert "--label needs a model trained with --condition" in capsys.readouterr().err


def test_every_hyperparameter_set_as_an_attribute_is_checked():
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        opt.momentum = float("nan")
    assert opt.momentum == 0.9


def test_ctrl_c_during_the_final_save_keeps_the_previous_checkpoint(tmp_path):
    """A real SIGINT arrives while the checkpoint is being written: exit 130, no traceback,
    the previous file untouched and no temporary file left behind."""
    io.save(nn.Linear(2, 2), tmp_path / "run.npz")
    before = (tmp_path / "run.npz").read_bytes()
    code = ("import os, signal, sys\n"
            "from tinygrad_rnn import cli, io\n"
            "write = io._write_arrays\n"
            "def interrupted_write(file, arrays):\n"
            "    file.write(b'partial')\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    write(file, arrays)\n"
            "io._write_arrays = interrupted_write\n"
            "sys.exit(cli.main(['train', '--task', 'routine', '--hidden', '4', '--steps', '1',\n"
            "                   '--checkpoint', 'run.npz']))\n")
    process = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED, process.stderr
    assert "Traceback" not in process.stderr and "interrupted" in process.stderr
    assert os.listdir(tmp_path) == ["run.npz"] and (tmp_path / "run.npz").read_bytes() == before
