"""Datasets: determinism, shapes, encodings, the rules of each toy world, and bad input."""
import numpy as np
import pytest

from tinygrad_rnn import data
from tinygrad_rnn.data import digits as digits_module
from tinygrad_rnn.data.sequences import corrupt_embedded_reber


# ---- text ---------------------------------------------------------------------------

def test_vocabulary_round_trip_and_one_hot():
    vocab = data.Vocabulary.from_text("hello world")
    ids = vocab.encode("hold")
    assert vocab.decode(ids) == "hold"
    assert vocab.symbols == sorted(set("hello world"))
    one_hot = vocab.one_hot(ids)
    assert one_hot.shape == (4, len(vocab)) and one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.argmax(axis=1), ids)
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1)


def test_vocabulary_names_unknown_characters():
    vocab = data.Vocabulary.from_text("abc")
    with pytest.raises(ValueError, match=r"not in the vocabulary.*'xz'"):
        vocab.encode("axbz")


def test_builtin_corpus_is_large_and_fixed():
    corpus = data.CharCorpus.builtin()
    assert len(corpus) > 100_000
    assert data.builtin_text() == corpus.text
    assert 50 < len(corpus.vocab) < 200


def test_batches_are_shifted_windows_and_seeded():
    corpus = data.CharCorpus("abcdefghijklmnopqrstuvwxyz" * 4)
    inputs, targets = corpus.batch(seq_len=10, batch_size=3, rng=np.random.default_rng(1))
    assert inputs.shape == targets.shape == (10, 3)
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    again, _ = corpus.batch(10, 3, np.random.default_rng(1))
    np.testing.assert_array_equal(inputs, again)
    for b in range(3):   # each column is a contiguous run of the alphabet
        assert corpus.vocab.decode(np.append(inputs[:, b], targets[-1, b])) in corpus.text


def test_batch_rejects_bad_sizes():
    corpus = data.CharCorpus("short text")
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        corpus.batch(0, 2, np.random.default_rng())
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        corpus.batch(3, -1, np.random.default_rng())
    with pytest.raises(ValueError, match="needs at least 101 characters"):
        corpus.batch(100, 2, np.random.default_rng())


def test_read_text_refuses_empty_non_utf8_and_missing(tmp_path):
    empty, latin1 = tmp_path / "empty.txt", tmp_path / "latin1.txt"
    empty.write_bytes(b"")
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="is empty"):
        data.read_text(empty)
    with pytest.raises(ValueError, match="not UTF-8 text.*0xe9"):
        data.read_text(latin1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.read_text(tmp_path / "missing.txt")


# ---- the weekly routine ------------------------------------------------------------

def test_weekly_routine_resumes_where_it_left_off():
    weather, activity = data.weekly_routine(200, rain_prob=0.4, rng=3)
    sleep = data.ACTIVITIES.index("sleep")
    assert np.all((weather == 1) == (activity == sleep))
    exercises = activity[activity != sleep]
    np.testing.assert_array_equal(exercises, np.arange(len(exercises)) % 3)   # run, bike, swim, run ...


def test_routine_batch_encodes_weather_and_yesterday():
    inputs, targets = data.routine_batch(4, 15, rng=0)
    assert inputs.shape == (15, 4, 7) and targets.shape == (15, 4)
    np.testing.assert_array_equal(inputs[:, :, :2].sum(axis=-1), 1)     # one weather
    np.testing.assert_array_equal(inputs[:, :, 2:].sum(axis=-1), 1)     # one "yesterday"
    assert np.all(inputs[0, :, 2 + 4] == 1)                               # day 0: yesterday = start
    np.testing.assert_array_equal(inputs[1:, :, 2:6].argmax(axis=-1), targets[:-1])


# ---- Reber ------------------------------------------------------------------------------

def test_reber_strings_are_accepted_and_corruptions_rejected():
    rng = np.random.default_rng(0)
    for _ in range(50):
        inner = data.reber_string(rng)
        assert data.is_reber(inner)
        s = data.embedded_reber_string(rng)
        assert data.is_embedded_reber(s) and not data.is_reber(s)
        assert not data.is_embedded_reber(corrupt_embedded_reber(s))
    assert not data.is_reber("BTXE") and not data.is_reber("TSXSE")


def test_reber_classification_batch_labels_match_the_grammar():
    inputs, lengths, labels, strings = data.reber_classification_batch(40, rng=1)
    assert inputs.shape == (lengths.max(), 40, 7)
    assert np.all(np.diff(lengths) <= 0)                                  # sorted for nn layers
    assert [int(data.is_embedded_reber(s)) for s in strings] == labels.tolist()
    assert 0 < labels.mean() < 1
    for b, s in enumerate(strings):
        assert "".join(data.REBER_SYMBOLS[i] for i in inputs[:len(s), b].argmax(-1)) == s
        assert not inputs[len(s):, b].any()


# ---- digits --------------------------------------------------------------------------------

def test_digit_images_shapes_range_and_seed():
    images, labels = data.digit_images(50, rng=7)
    assert images.shape == (50, 8, 8) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    again, labels_again = data.digit_images(50, rng=7)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert data.as_rows(images).shape == (8, 50, 8)
    np.testing.assert_array_equal(data.as_rows(images)[3, 5], images[5, 3])
    assert data.as_pixels(images).shape == (64, 50, 1)
    assert data.as_pixels(images)[9, 2, 0] == images[2, 1, 1]


def test_digits_vary_but_stay_recognisable():
    """Samples differ from each other, yet the nearest (correlated) template is usually the right one."""
    images, labels = data.digit_images(300, rng=0, noise=0.05)
    sevens = images[labels == 7]
    assert len({im.tobytes() for im in sevens}) == len(sevens)
    templates = digits_module.TEMPLATES.reshape(10, -1)
    flat = images.reshape(len(images), -1)
    best_shift_score = np.zeros((len(images), 10))
    for dy in range(-2, 3):       # compare with every shifted template, keep the best match
        for dx in range(-2, 3):
            shifted = np.array([digits_module._shifted(t.reshape(8, 8), dy, dx).ravel() for t in templates])
            norms = np.linalg.norm(shifted, axis=1) * np.linalg.norm(flat, axis=1)[:, None] + 1e-9
            best_shift_score = np.maximum(best_shift_score, flat @ shifted.T / norms)
    accuracy = np.mean(best_shift_score.argmax(axis=1) == labels)
    assert accuracy > 0.8


def test_digit_rejects_bad_input():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        data.digit_images(0)
    with pytest.raises(ValueError, match="digit must be 0..9"):
        data.draw_digit(10)
    assert len(data.render(np.eye(8)).splitlines()) == 8


# ---- series --------------------------------------------------------------------------------

def test_mackey_glass_is_bounded_deterministic_and_not_periodic():
    series = data.mackey_glass(600)
    assert series.shape == (600,) and series.dtype == np.float32
    assert 0.2 < series.min() and series.max() < 1.5          # the known attractor range
    np.testing.assert_array_equal(series, data.mackey_glass(600))
    autocorrelation = [np.corrcoef(series[:-lag], series[lag:])[0, 1] for lag in range(20, 200)]
    assert max(autocorrelation) < 0.99


def test_sine_and_forecast_windows():
    series = data.sine_series(100, period=10)
    np.testing.assert_allclose(series[:10], series[10:20], atol=1e-5)
    inputs, targets = data.forecast_windows(series, window=12, horizon=3)
    assert inputs.shape == targets.shape == (12, 100 - 12 - 3 + 1, 1)
    np.testing.assert_array_equal(inputs[3:, 0, 0], targets[:-3, 0, 0])
    np.testing.assert_array_equal(inputs[:, 5, 0], series[5:17])
    with pytest.raises(ValueError, match="too short"):
        data.forecast_windows(series[:10], window=12)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        data.forecast_windows(series, window=0)
