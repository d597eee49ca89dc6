"""The next-pixel RNN: it learns, it draws, it completes half-images, it refuses bad input."""
import time

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import apps, cli, io, nn, optim
from tinygrad_rnn.apps.pixel_rnn import (PixelRNN, ascii_art, baseline_nll, complete_halves, dequantize,
                                         histogram_baseline, nll_per_pixel, quantize, save_grid)
from tinygrad_rnn.data import digit_images


def fitted(model, codes, labels=None, steps=100, lr=3e-2):
    optimizer = optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(codes, labels).backward()
        optimizer.step()
    return model


# ---- quantising and the baseline --------------------------------------------------------------

def test_quantize_and_dequantize():
    images = np.zeros((1, 8, 8), np.float32)
    images[0, 0, :4] = [0.0, 0.3, 0.5, 1.0]
    codes = quantize(images, 4)
    assert codes.shape == (1, 64) and codes.dtype == np.int64
    assert codes[0, :4].tolist() == [0, 1, 2, 3]                   # round(x * 3)
    np.testing.assert_allclose(dequantize(codes, 4)[0, 0, :4], [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    with pytest.raises(ValueError, match=r"quantize expected images of shape \(n, 8, 8\), got \(64,\)"):
        quantize(np.zeros(64), 4)


def test_histogram_baseline_counts_each_position():
    codes = np.zeros((3, 64), np.int64)
    codes[:, 5] = [1, 1, 2]
    p = histogram_baseline(codes, 3, alpha=1.0)
    np.testing.assert_allclose(p[5], [1 / 6, 3 / 6, 2 / 6])          # (count + 1) / (3 + 3)
    np.testing.assert_allclose(p[0], [4 / 6, 1 / 6, 1 / 6])
    expected = -(63 * np.log(4 / 6) + np.log(3 / 6)) / 64
    assert np.isclose(baseline_nll(p, codes[:1]), expected)


# ---- learning ---------------------------------------------------------------------------------

def test_overfits_a_handful_of_digits_far_below_the_baseline():
    tr.manual_seed(0)
    codes = quantize(digit_images(8, np.random.default_rng(0))[0], 4)
    baseline = baseline_nll(histogram_baseline(codes, 4), codes)
    model = PixelRNN(levels=4, hidden_size=32)
    before = nll_per_pixel(model, codes)
    start = time.perf_counter()
    fitted(model, codes, steps=100)
    after = nll_per_pixel(model, codes)
    print(f"\noverfit 8 digits: NLL/pixel {before:.3f} -> {after:.3f} in {time.perf_counter() - start:.1f} s; "
          f"per-position histogram {baseline:.3f}")
    assert after < 0.5 * baseline


@pytest.mark.parametrize("condition", ["input", "state"])
def test_conditioning_uses_the_label(condition):
    tr.manual_seed(0)
    images, labels = digit_images(10, np.random.default_rng(1), digits=[0, 1])
    codes = quantize(images, 4)
    model = fitted(PixelRNN(levels=4, hidden_size=16, order="rows", condition=condition), codes, labels, steps=60)
    assert nll_per_pixel(model, codes, labels) < nll_per_pixel(model, codes, 1 - labels)


def test_the_task_trains_evaluates_and_resumes(tmp_path):
    tr.manual_seed(0)
    task = apps.build_task("pixels", hidden_size=16, order="rows", batch_size=16)
    trainer = apps.Trainer(task, optim.Adam(task.model.parameters(), lr=1e-2))
    result = trainer.train(steps=60, checkpoint=tmp_path / "pixels.npz", progress=False)
    scores = task.evaluate(task.model)
    print(f"\n60 steps, rows: test NLL/pixel {scores['test NLL/pixel']:.3f}, "
          f"baseline {scores['baseline NLL/pixel']:.3f}")
    assert np.mean(result.losses[-5:]) < 0.7 * np.mean(result.losses[:5])
    resumed = apps.resume(tmp_path / "pixels.npz")
    assert resumed.step == 60 and isinstance(resumed.task.model, PixelRNN)
    assert resumed.task.model.get_config() == task.model.get_config()


@pytest.mark.slow
def test_beats_the_histogram_baseline_by_20_percent_on_all_digits():
    tr.manual_seed(0)
    task = apps.build_task("pixels", hidden_size=64, batch_size=32)
    trainer = apps.Trainer(task, optim.Adam(task.model.parameters(), lr=1e-2), clip=5.0)
    result = trainer.train(steps=400, progress=False)
    scores = task.evaluate(task.model)
    rnn, baseline = scores["test NLL/pixel"], scores["baseline NLL/pixel"]
    print(f"\nall digits, {result.step} steps in {result.seconds:.0f} s: test NLL/pixel {rnn:.3f}, "
          f"per-position histogram {baseline:.3f} ({1 - rnn / baseline:.0%} lower)")
    assert rnn < 0.8 * baseline


# ---- drawing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("order, levels", [("pixels", 4), ("rows", 8)])
def test_generate_returns_level_codes_of_the_right_shape(order, levels):
    model = PixelRNN(levels=levels, hidden_size=8, order=order)
    drawn = model.generate(5, temperature=1.0, rng=0)
    assert drawn.shape == (5, 8, 8) and drawn.dtype == np.int64
    assert drawn.min() >= 0 and drawn.max() <= levels - 1
    assert len(np.unique(drawn)) > 1                                   # an untrained model draws noise
    assert model.training                                               # generate restores the mode


@pytest.mark.parametrize("condition", ["input", "state"])
def test_conditional_sampling_with_a_seed_is_deterministic(condition):
    model = PixelRNN(levels=4, hidden_size=8, cell="gru", condition=condition)
    first = model.generate(4, 0.9, label=3, rng=42)
    again = model.generate(4, 0.9, label=3, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, model.generate(4, 0.9, label=3, rng=43))
    assert model.generate(3, 1.0, label=[0, 5, 9], rng=0).shape == (3, 8, 8)


@pytest.mark.parametrize("order", ["pixels", "rows"])
def test_reading_a_prefix_then_stepping_equals_one_pass(order):
    """The state after the prefix carries everything: chunked logits = whole-sequence logits."""
    tr.manual_seed(0)
    model = PixelRNN(levels=4, hidden_size=8, order=order, condition="state")
    codes = quantize(digit_images(3, np.random.default_rng(0))[0], 4)
    units, labels = codes.reshape(3, model.steps, model.width), np.array([1, 2, 3])
    whole, _ = model(model.step_inputs(units, 0, model.steps, labels), labels)
    k = model.steps // 2
    head, state = model(model.step_inputs(units, 0, k, labels), labels)
    tail, _ = model(model.step_inputs(units, k, model.steps, labels), labels, state)
    np.testing.assert_allclose(np.concatenate([head.data, tail.data]), whole.data, atol=1e-5)


def test_completing_the_bottom_half_keeps_the_top_half():
    model = PixelRNN(levels=4, hidden_size=8)
    images = digit_images(4, np.random.default_rng(0))[0]
    completed = complete_halves(model, images, temperature=0.5, rng=0)
    np.testing.assert_array_equal(completed[:, :4], quantize(images, 4).reshape(4, 8, 8)[:, :4])
    full = quantize(images, 4)
    np.testing.assert_array_equal(model.generate(4, prefix=full, rng=0).reshape(4, 64), full)
    shared_top = model.generate(2, prefix=full[0, :8], rng=0)           # one prefix for all images
    assert (shared_top[:, 0] == full[0, :8]).all()


def test_ascii_art_and_png_grid(tmp_path):
    codes = np.zeros((12, 8, 8), np.int64)
    codes[:, 2, 3] = 3
    text = ascii_art(codes, 4, per_line=10)
    lines = text.splitlines()
    assert len(lines) == 8 + 1 + 8 and lines[0].count("|") == 11 and "@" in text
    pytest.importorskip("matplotlib")
    path = save_grid(codes, 4, tmp_path / "grid.png", titles=range(12))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda m: m.generate(2, label=10), r"labels must be digits 0-9, got values in \[10, 10\]"),
    (lambda m: m.generate(2, label=-1), r"labels must be digits 0-9"),
    (lambda m: m.generate(2, label=2.5), r"label must be an integer 0-9"),
    (lambda m: m.generate(2, label=[1, 2, 3]), r"expected 2 labels, got 3"),
    (lambda m: m.generate(2), r"conditioned on the digit .* pass a label 0-9"),
    (lambda m: m.generate(2, 0.0, label=1), r"temperature must be > 0, got 0.0"),
    (lambda m: m.generate(2, -1.0, label=1), r"temperature must be > 0"),
    (lambda m: m.generate(2, label=1, prefix=np.zeros(65, int)), r"k <= 64 .* got \(2, 65\)"),
    (lambda m: m.generate(2, label=1, prefix=np.zeros((3, 8), int)), r"prefix: expected .* got \(3, 8\)"),
    (lambda m: m.generate(2, label=1, prefix=[0, 1, 4]), r"integers in 0..3 .* values in \[0, 4\]"),
    (lambda m: m.generate(2, label=1, prefix=[0.0, 0.5]), r"integers in 0..3 .* float64"),
    (lambda m: m.generate(0, label=1), r"n must be a positive integer"),
    (lambda m: m.loss(np.zeros((2, 63), int), [1, 2]), r"loss: expected level codes of shape \(B, 64\)"),
])
def test_bad_input_is_refused_clearly(call, message):
    model = PixelRNN(levels=4, hidden_size=4, condition="input")
    with pytest.raises(ValueError, match=message):
        call(model)


def test_bad_input_depending_on_the_model():
    with pytest.raises(ValueError, match=r"trained without labels .* pass label=None"):
        PixelRNN(hidden_size=4).generate(1, label=3)
    with pytest.raises(ValueError, match=r"multiple of 8 \(reading rows\), got \(1, 12\)"):
        PixelRNN(hidden_size=4, order="rows").generate(1, prefix=np.zeros(12, int))
    with pytest.raises(ValueError, match="levels must be an integer >= 2"):
        PixelRNN(levels=1)
    with pytest.raises(ValueError, match="order must be one of"):
        PixelRNN(order="columns")
    with pytest.raises(ValueError, match="condition must be one of"):
        PixelRNN(condition="label")


# ---- command line -----------------------------------------------------------------------------

@pytest.fixture
def pixel_checkpoint(tmp_path):
    path = tmp_path / "pixels.npz"
    assert cli.main(["train", "--task", "pixels", "--hidden", "8", "--order", "rows", "--condition", "input",
                     "--levels", "4", "--steps", "3", "--checkpoint", str(path)]) == 0
    return path


def test_cli_train_resume_and_draw(pixel_checkpoint, tmp_path, capsys):
    assert cli.main(["train", "--resume", str(pixel_checkpoint), "--steps", "2"]) == 0
    assert apps.resume(pixel_checkpoint).step == 5
    assert "baseline NLL/pixel" in capsys.readouterr().out
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "3", "--label", "7", "--seed", "1"]) == 0
    drawn = capsys.readouterr().out
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "3", "--label", "7", "--seed", "1"]) == 0
    assert capsys.readouterr().out == drawn and drawn.count("|") == 8 * 4
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "2", "--complete"]) == 0
    assert "top half given" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    png = tmp_path / "grid.png"
    assert cli.main(["draw", str(pixel_checkpoint), "-n", "2", "--label", "1", "--png", str(png)]) == 0
    assert png.is_file()


@pytest.mark.parametrize("options, message", [
    (["--label", "12"], "argument --label: must be a whole number from 0 to 9"),
    (["--temperature", "0"], "argument --temperature: must be a finite number > 0"),
])
def test_cli_draw_bad_input(pixel_checkpoint, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:     # a usage error, refused before loading anything
        cli.main(["draw", str(pixel_checkpoint), *options])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_draw_refuses_other_checkpoints(tmp_path, capsys):
    io.save(nn.Linear(2, 2), tmp_path / "linear.npz")
    assert cli.main(["draw", str(tmp_path / "linear.npz")]) == cli.EXIT_ERROR
    assert "not one written by `tinygrad-rnn train`" in capsys.readouterr().err
    assert cli.main(["draw", str(tmp_path / "missing.npz")]) == cli.EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


def test_the_completion_figure_shows_original_given_half_and_completions():
    pytest.importorskip("matplotlib")
    from tinygrad_rnn.apps.pixel_rnn import draw_completions
    originals = np.random.default_rng(0).integers(0, 4, size=(2, 8, 8))
    completed = np.repeat(originals, 3, axis=0)
    figure = draw_completions(originals, completed, 4, title="completions")
    titles = [axis.get_title() for axis in figure.axes[:5]]
    assert titles == ["original", "given (top half)", "completion 1", "completion 2", "completion 3"]
    assert figure.get_suptitle() == "completions" and len(figure.axes) == 2 * 5
    given = figure.axes[1].images[0].get_array()
    assert np.ma.getmaskarray(given)[4:].all() or np.isnan(np.asarray(given, dtype=float)[4:]).all()
    with pytest.raises(ValueError, match="draw_completions"):
        draw_completions(originals, completed[:5], 4)
