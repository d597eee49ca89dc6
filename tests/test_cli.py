"""The `tinygrad-rnn` command line: each command, resume, Ctrl-C, and bad input (exit 1, nothing written)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_rnn import apps, cli, io, nn


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    """One short demo run shared by the tests that need a char-model checkpoint."""
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.npz"
    assert cli.main(["demo", "--seconds", "3", "--hidden", "32", "--checkpoint", str(path)]) == 0
    return path


def test_demo_saves_a_char_model_checkpoint(demo_checkpoint):
    assert demo_checkpoint.is_file()
    assert io.load(demo_checkpoint).class_name == "CharRNN"


def test_demo_prints_loss_and_a_sample(tmp_path, capsys):
    assert cli.main(["demo", "--seconds", "2", "--hidden", "16", "--sample-every", "0.5",
                     "--checkpoint", str(tmp_path / "d.npz")]) == 0
    out = capsys.readouterr().out
    assert "loss" in out and "checkpoint saved to" in out
    assert "step" in out                      # a sample line printed while learning


def test_sample_from_checkpoint(demo_checkpoint, capsys):
    assert cli.main(["sample", str(demo_checkpoint), "--prime", "The ", "--length", "30",
                     "--temperature", "0.7", "--top-k", "5"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("The ") and len(text) == 34


@pytest.mark.parametrize("options, message", [
    (["--prime", "Thé\u20ac"], "not in the vocabulary"),
])
def test_sample_bad_input(demo_checkpoint, capsys, options, message):
    assert cli.main(["sample", str(demo_checkpoint), *options]) == cli.EXIT_ERROR
    assert message in capsys.readouterr().err


def test_sample_refuses_a_non_char_checkpoint(tmp_path, capsys):
    io.save(nn.Linear(2, 2), tmp_path / "linear.npz")
    assert cli.main(["sample", str(tmp_path / "linear.npz")]) == cli.EXIT_ERROR
    assert "not a character model" in capsys.readouterr().err


def test_train_then_resume(tmp_path, capsys):
    path = tmp_path / "routine.npz"
    assert cli.main(["train", "--task", "routine", "--hidden", "8", "--steps", "6", "--clip", "1",
                     "--checkpoint", str(path)]) == 0
    assert apps.resume(path).step == 6
    assert cli.main(["train", "--resume", str(path), "--steps", "4"]) == 0
    resumed = apps.resume(path)
    assert resumed.step == 10 and resumed.clip == 1.0
    assert "test accuracy" in capsys.readouterr().out


def test_train_chars_with_tbptt_and_numpy_backend(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    path = tmp_path / "chars.npz"
    assert cli.main(["train", "--task", "chars", "--corpus", str(corpus), "--hidden", "8", "--seq-len", "8",
                     "--batch-size", "2", "--steps", "2", "--tbptt", "4", "--backend", "numpy",
                     "--checkpoint", str(path)]) == 0
    assert apps.resume(path, corpus=str(corpus)).task.options["tbptt"] == [4]


def test_train_bad_corpus_fails_and_writes_nothing(tmp_path, capsys):
    empty, latin1 = tmp_path / "empty.txt", tmp_path / "latin1.txt"
    empty.write_bytes(b"")
    latin1.write_bytes("naïve".encode("latin-1"))
    for corpus, message in [(empty, "is empty"), (latin1, "not UTF-8"), (tmp_path / "missing.txt", "does not exist")]:
        assert cli.main(["train", "--task", "chars", "--corpus", str(corpus), "--steps", "1",
                         "--checkpoint", str(tmp_path / "out.npz")]) == cli.EXIT_ERROR
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_resume_from_another_model_fails_and_keeps_the_file(tmp_path, capsys):
    path = tmp_path / "linear.npz"
    io.save(nn.Linear(2, 2), path)
    before = path.read_bytes()
    assert cli.main(["train", "--resume", str(path), "--steps", "1"]) == cli.EXIT_ERROR
    assert "not one written by `tinygrad-rnn train`" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_resume_refuses_to_change_the_model(tmp_path, capsys):
    path = tmp_path / "r.npz"
    assert cli.main(["train", "--task", "routine", "--hidden", "8", "--steps", "1", "--checkpoint", str(path)]) == 0
    before = path.read_bytes()
    assert cli.main(["train", "--resume", str(path), "--hidden", "16"]) == cli.EXIT_ERROR
    assert "--hidden" in capsys.readouterr().err and path.read_bytes() == before


def test_option_that_does_not_apply_to_the_task(tmp_path, capsys):
    assert cli.main(["train", "--task", "digits", "--seq-len", "5", "--checkpoint",
                     str(tmp_path / "x.npz")]) == cli.EXIT_ERROR
    assert "--seq-len does not apply to task 'digits'" in capsys.readouterr().err


def test_train_into_a_missing_folder_fails_before_training(tmp_path, capsys):
    assert cli.main(["train", "--task", "routine", "--checkpoint", str(tmp_path / "no" / "x.npz")]) == cli.EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--hidden", "0"], ["train", "--steps", "-3"],
                                  ["demo", "--seconds", "0"], ["sample", "x.npz", "--length", "0"],
                                  ["gradcheck", "--steps", "0"], ["sample", "x.npz", "--temperature", "0"],
                                  ["sample", "x.npz", "--top-k", "0"], ["train", "--lr", "inf"],
                                  ["train", "--lr", "nan"], ["train", "--clip", "-1"], ["demo", "--seconds", "inf"],
                                  ["train", "--seed", "-1"], ["draw", "x.npz", "--temperature", "nan"],
                                  ["draw", "x.npz", "--label", "10"], ["train", "--steps", "1e3"]])
def test_bad_numbers_are_one_line_usage_errors_naming_the_flag(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err or "expected a whole number" in err
    assert f"argument {argv[-2]}" in err and err.count("\n") == 1


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "leaky"])
def test_gradcheck_prints_the_per_step_table(cell, capsys):
    assert cli.main(["gradcheck", "--cell", cell, "--steps", "3", "--hidden", "2", "--input", "2"]) == 0
    out = capsys.readouterr().out
    assert "bptt_gradcheck passed" in out
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["0", "1", "2"]


def test_gradcheck_of_the_unrolled_primitives(capsys):
    assert cli.main(["gradcheck", "--cell", "primitives", "--steps", "3"]) == 0
    assert "unrolled from primitive ops" in capsys.readouterr().out


def test_bench_without_the_source_tree_says_so(monkeypatch, capsys):
    monkeypatch.setattr(cli, "benchmark_script", lambda: None)
    assert cli.main(["bench"]) == cli.EXIT_ERROR
    assert "benchmarks/bench_rnn.py" in capsys.readouterr().err


def test_bench_runs_the_script_of_the_source_tree_with_the_arguments(monkeypatch):
    script = cli.benchmark_script()
    if script is None:
        pytest.skip("benchmarks/bench_rnn.py not present in this checkout")
    assert script.name == "bench_rnn.py" and script.parent.name == "benchmarks"
    calls = []
    monkeypatch.setattr(cli.subprocess, "run", lambda command: calls.append(command) or
                        subprocess.CompletedProcess(command, 3))
    assert cli.main(["bench", "--cells", "lstm", "--repeats", "1"]) == 3        # its exit status
    assert calls == [[sys.executable, str(script), "--cells", "lstm", "--repeats", "1"]]


def test_unknown_arguments_are_refused_outside_bench(capsys):
    with pytest.raises(SystemExit):
        cli.main(["gradcheck", "--cells", "lstm"])
    assert "unrecognized arguments: --cells" in capsys.readouterr().err


def test_ctrl_c_in_a_subprocess_saves_and_exits_130(tmp_path):
    path = tmp_path / "interrupted.npz"
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "tinygrad_rnn.cli", "train", "--task", "routine", "--hidden", "8",
         "--seconds", "120", "--checkpoint", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert process.stdout.readline().startswith("train: task routine")
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED, err
    assert "interrupted at step" in out and "Traceback" not in err
    trainer = apps.resume(path)
    assert trainer.step > 0
    assert int(trainer.optimizer.state_dict()["state"]["0"]["step"]) == trainer.step
    assert np.isfinite(trainer.task.model.head.weight.data).all()
    assert os.listdir(tmp_path) == ["interrupted.npz"]


@pytest.mark.parametrize("task", ["translate", "cnn-rnn", "soft-attention", "hard-attention"])
def test_attention_and_seq2seq_tasks_train_from_the_command_line(tmp_path, capsys, task):
    path = tmp_path / f"{task}.npz"
    assert cli.main(["train", "--task", task, "--steps", "2", "--checkpoint", str(path)]) == 0
    assert io.load(path).extra["task"] == task
    assert f"task {task}" in capsys.readouterr().out


def test_composite_flag_refused_for_a_task_without_recurrent_layers(tmp_path, capsys):
    path = tmp_path / "hard.npz"
    assert cli.main(["train", "--task", "hard-attention", "--composite", "--steps", "1",
                     "--checkpoint", str(path)]) == cli.EXIT_ERROR
    assert "--composite does not apply to task 'hard-attention'" in capsys.readouterr().err
    assert not path.exists()
