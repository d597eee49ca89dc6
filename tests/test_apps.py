"""Worked examples: each one learns; sampling rules; checkpoints, resume and Ctrl-C in the Trainer."""
import os

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import apps, io, nn, optim
from tinygrad_rnn.apps.char_rnn import CharRNN, sample, sampling_distribution
from tinygrad_rnn.data import Vocabulary


def trained(name, steps, lr=1e-2, seed=0, **options):
    tr.manual_seed(seed)
    task = apps.build_task(name, **options)
    trainer = apps.Trainer(task, optim.Adam(task.model.parameters(), lr=lr), clip=5.0, seed=seed)
    result = trainer.train(steps=steps, progress=False)
    return task, trainer, result


# ---- each architecture learns --------------------------------------------------------

def test_tagger_learns_the_weekly_routine():
    task, _, _ = trained("routine", steps=150, hidden_size=16)
    assert task.evaluate(task.model)["test accuracy"] > 0.95


def test_classifier_learns_sequential_digits():
    task, _, result = trained("digits", steps=120, hidden_size=32)
    assert task.evaluate(task.model)["test accuracy"] > 0.6            # chance is 0.1
    assert np.mean(result.losses[-10:]) < 0.5 * np.mean(result.losses[:10])


def test_forecaster_beats_persistence_on_mackey_glass():
    task, _, _ = trained("mackey-glass", steps=100, hidden_size=16)
    scores = task.evaluate(task.model)
    assert scores["test MSE"] < 0.5 * scores["persistence MSE"]


def test_speller_loss_falls():
    task, _, result = trained("spell", steps=60, hidden_size=24)
    assert np.mean(result.losses[-5:]) < 0.5 * np.mean(result.losses[:5])


def test_char_rnn_loss_falls():
    task, _, result = trained("chars", steps=40, hidden_size=32, max_chars=5000, seq_len=16, batch_size=8)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 0.8
    assert set(task.evaluate(task.model)["sample"]) <= set(task.options["vocab"])


def test_char_rnn_truncated_bptt_learns():
    task, _, result = trained("chars", steps=15, hidden_size=16, max_chars=3000, seq_len=12, batch_size=4,
                              tbptt=[4, 6])
    assert np.mean(result.losses[-3:]) < np.mean(result.losses[:3])


@pytest.mark.slow
def test_speller_spells_digit_names():
    task, _, _ = trained("spell", steps=400, hidden_size=32)
    assert task.evaluate(task.model)["spelled right"] > 0.9


@pytest.mark.slow
def test_classifier_learns_embedded_reber_validity():
    task, _, _ = trained("reber", steps=600, hidden_size=16)
    assert task.evaluate(task.model)["test accuracy"] > 0.9


@pytest.mark.slow
def test_digits_classifier_reaches_high_accuracy():
    task, _, _ = trained("digits", steps=600, hidden_size=48)
    assert task.evaluate(task.model)["test accuracy"] > 0.9


def test_classifier_reads_each_padded_string_to_its_own_end():
    """With lengths, the logits of a padded batch equal those of each string run alone."""
    tr.manual_seed(0)
    task = apps.build_task("reber", hidden_size=6)
    inputs, lengths, _, _ = task.next_batch(np.random.default_rng(0))
    batched = task.model(tr.Tensor(inputs), lengths).data
    for b in [0, len(lengths) // 2, len(lengths) - 1]:
        alone = task.model(tr.Tensor(inputs[:lengths[b], b:b + 1])).data
        np.testing.assert_allclose(batched[b], alone[0], rtol=1e-5, atol=1e-6)


# ---- sampling ------------------------------------------------------------------------------

def test_sampling_distribution_temperature_and_top_k():
    logits = np.array([1.0, 3.0, 2.0, 0.0])
    p = sampling_distribution(logits, temperature=1.0, top_k=2)
    assert p[0] == 0 and p[3] == 0 and np.isclose(p.sum(), 1)
    np.testing.assert_allclose(p[1] / p[2], np.e)
    cold = sampling_distribution(logits, temperature=0.05)
    assert cold[1] > 0.999
    np.testing.assert_allclose(sampling_distribution(logits, 2.0), np.exp(logits / 2) / np.exp(logits / 2).sum())


@pytest.mark.parametrize("temperature, top_k, message", [
    (0.0, None, "temperature must be > 0"), (-1.0, None, "temperature must be > 0"),
    (float("nan"), None, "a finite number is needed"), (float("inf"), None, "a finite number is needed"),
    (1.0, 0, "top_k must be an integer >= 1"), (1.0, 2.5, "top_k must be an integer >= 1")])
def test_sampling_rejects_bad_options(temperature, top_k, message):
    with pytest.raises(ValueError, match=message):
        sampling_distribution(np.zeros(3), temperature, top_k)


def test_sample_top_k_one_is_greedy_and_prime_is_checked():
    tr.manual_seed(1)
    vocab = Vocabulary.from_text("abcde")
    model = CharRNN(len(vocab), hidden_size=8, embedding_size=4)
    first = sample(model, vocab, "ab", 10, top_k=1, rng=np.random.default_rng(0))
    second = sample(model, vocab, "ab", 10, top_k=1, rng=np.random.default_rng(99))
    assert first == second and first.startswith("ab") and len(first) == 12
    with pytest.raises(ValueError, match=r"not in the vocabulary.*'z'"):
        sample(model, vocab, "az", 5)
    with pytest.raises(ValueError, match="at least one character"):
        sample(model, vocab, "", 5)


# ---- checkpoints, resume, Ctrl-C ------------------------------------------------------------

def test_checkpoint_round_trip_is_bit_for_bit(tmp_path):
    task, trainer, _ = trained("routine", steps=5, hidden_size=8)
    path = tmp_path / "run.npz"
    trainer.save(path)
    resumed = apps.resume(path)
    for (name, a), (_, b) in zip(task.model.named_parameters(), resumed.task.model.named_parameters()):
        assert a.data.tobytes() == b.data.tobytes(), name
    _assert_same_optimizer_state(trainer.optimizer, resumed.optimizer)
    assert resumed.step == 5 and resumed.clip == 5.0


@pytest.mark.parametrize("name, options", [
    ("routine", dict(hidden_size=8)),
    ("hard-attention", dict(size=8, test_size=50)),     # REINFORCE: library rng and a running baseline
    ("cnn-rnn", dict(hidden_size=8, conv_channels=4, test_size=50)),
])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, name, options):
    _, straight, _ = trained(name, steps=8, **options)
    _, first_half, _ = trained(name, steps=4, **options)
    first_half.save(tmp_path / "half.npz")
    tr.manual_seed(123)                     # a resumed process starts with another library generator state
    second_half = apps.resume(tmp_path / "half.npz")
    second_half.train(steps=4, progress=False)
    for (name, a), (_, b) in zip(straight.task.model.named_parameters(),
                                 second_half.task.model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    _assert_same_optimizer_state(straight.optimizer, second_half.optimizer)


def test_keyboard_interrupt_from_a_callback_saves_and_stops(tmp_path):
    tr.manual_seed(0)
    task = apps.build_task("routine", hidden_size=8)
    trainer = apps.Trainer(task, optim.Adam(task.model.parameters(), lr=1e-2))

    def interrupt_at_step_3(trainer, loss):
        if trainer.step == 3:
            raise KeyboardInterrupt

    result = trainer.train(steps=100, checkpoint=tmp_path / "ckpt.npz", progress=False,
                           callback=interrupt_at_step_3)
    assert result.interrupted and result.step == 3
    resumed = apps.resume(tmp_path / "ckpt.npz")
    assert resumed.step == 3
    _assert_same_optimizer_state(trainer.optimizer, resumed.optimizer)


def test_sigint_finishes_the_step_then_saves(tmp_path):
    import signal
    task = apps.build_task("routine", hidden_size=8)
    trainer = apps.Trainer(task, optim.SGD(task.model.parameters(), lr=0.1))
    result = trainer.train(steps=100, checkpoint=tmp_path / "ckpt.npz", progress=False,
                           callback=lambda trainer, loss: trainer.step == 2 and os.kill(os.getpid(), signal.SIGINT))
    assert result.interrupted and result.step == 2
    assert apps.resume(tmp_path / "ckpt.npz").step == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_crash_while_saving_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    task, trainer, _ = trained("routine", steps=2, hidden_size=8)
    path = tmp_path / "run.npz"
    trainer.save(path)
    good = path.read_bytes()

    def dies_halfway(file, arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt          # as if the process were stopped mid-write

    monkeypatch.setattr(io, "_write_arrays", dies_halfway)
    trainer.train(steps=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["run.npz"]


def test_load_checkpoint_refuses_other_files(tmp_path):
    io.save(nn.Linear(2, 3), tmp_path / "linear.npz")
    with pytest.raises(ValueError, match="not one written by `tinygrad-rnn train`"):
        apps.load_checkpoint(tmp_path / "linear.npz")


def test_build_task_rejects_unknown_names_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        apps.build_task("nope")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        apps.build_task("routine", hidden_size=0)
    with pytest.raises(ValueError, match="clip .* must be > 0"):
        apps.Trainer(apps.build_task("routine", hidden_size=4), None, clip=-1)


def _assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["type"] == sb["type"] and sa["hyperparameters"] == sb["hyperparameters"]
    assert sa["state"].keys() == sb["state"].keys()
    for key in sa["state"]:
        for name, value in sa["state"][key].items():
            np.testing.assert_array_equal(value, sb["state"][key][name])
