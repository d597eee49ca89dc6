"""Many-to-many, aligned, on images: a next-pixel RNN that draws 8×8 digits.

An image becomes a sequence exactly as a text does. Quantise every
intensity x in [0, 1] to one of L levels, v = round(x (L - 1)), and read the
8×8 image in raster order, T units of `width` pixels each:

    order="pixels"   T = 64 steps of 1 pixel       (left to right, top to bottom)
    order="rows"     T = 8 steps of a whole row     (8 pixels)

At step t the model reads the unit before and where it is, and predicts unit t:

    x_t      = [one_hot(v_{t-1}) ; where_t ; one_hot(y)]    (B, width*L + P [+ 10])   v_{-1}: all zeros
    h_t      = LSTM(x_t, h_{t-1})                          (B, H)     (or GRU, RNN)
    logits_t = h_t W^T + b                                 (B, width, L)
    loss     = mean over the 64 pixels and B images of -log softmax(logits_t)[v_t]

where_t is one_hot(row) ; one_hot(column) of the pixel to predict (P = 16;
P = 8, the row alone, when reading rows) so the network need not count
steps. The probability of a whole image is the chain rule of probability,
p(v) = prod_t p(v_t | v_<t), so the loss is the negative log-likelihood per
pixel (in nats). This is the char-RNN's next-character setup unchanged —
one-hot in, softmax out, loss at every step, BPTT through all T steps; only
the symbols are grey levels instead of letters. Reading rows, the 8 pixels
of a row are drawn independently of each other given the rows above: 8x
fewer steps, a cruder model of one row.

Class conditioning on the digit label y (optional), two ways:

    condition="input"   one_hot(y) is appended to every x_t
    condition="state"   h_0 = tanh(W_c one_hot(y) + b_c), c_0 = 0: a one-to-many
                        generator that unfolds an image from a single vector

Drawing (`PixelRNN.generate`) feeds each sampled unit back in as the next
input, like sampling text, with p = softmax(logits / temperature). Given a
`prefix` (e.g. the top half of a real digit), it reads the prefix first and
completes the rest: inpainting by sampling.

The baseline (`histogram_baseline`) predicts each pixel alone from its
position: p_i(v) = (count_i(v) + 1) / (N + L) over N training images.
Whatever the RNN gains over it comes from reading the pixels before.

    model = PixelRNN(levels=4, hidden_size=64)
    codes = quantize(images, 4)                 # (n, 64) ints in 0..3
    model.loss(codes).backward()
    drawn = model.generate(10, temperature=0.8)  # (10, 8, 8) ints in 0..3
    print(ascii_art(drawn, 4))
"""
import numpy as np

from .. import nn
from ..autograd import no_grad
from ..data.digits import digit_images, render
from ..tensor import Tensor, check_sizes
from ..viz import show_figure
from .char_rnn import CELLS, softmax_with_temperature
from .training import Task

SIDE, PIXELS, CLASSES = 8, 64, 10
ORDERS = {"pixels": 1, "rows": SIDE}          # reading order -> pixels per step
CONDITIONS = (None, "input", "state")


# ---- images <-> level codes ------------------------------------------------------------

def quantize(images, levels):
    """images (n, 8, 8) in [0, 1] -> codes (n, 64) int64 in 0..levels-1, raster order."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"quantize expected images of shape (n, 8, 8), got {images.shape}")
    codes = np.rint(np.clip(images, 0, 1) * (levels - 1)).astype(np.int64)
    return codes.reshape(len(images), PIXELS)


def dequantize(codes, levels):
    """codes (n, 64) or (n, 8, 8) -> intensities (n, 8, 8) float32 in [0, 1]."""
    codes = np.asarray(codes)
    return (codes.reshape(len(codes), SIDE, SIDE) / (levels - 1)).astype(np.float32)


def one_hot(indices, size):
    """indices (...) ints -> (..., size) float32 with a single 1."""
    return np.eye(size, dtype=np.float32)[indices]


def where_features(order):
    """where_t for every step: (T, P) = one_hot(row) ; one_hot(column) of unit t's first pixel."""
    width = ORDERS[order]
    first_pixel = np.arange(0, PIXELS, width)
    rows = one_hot(first_pixel // SIDE, SIDE)
    if width == SIDE:
        return rows
    return np.concatenate([rows, one_hot(first_pixel % SIDE, SIDE)], axis=1)


# ---- the model ---------------------------------------------------------------------------

class PixelRNN(nn.Module):
    """{LSTM, GRU, RNN}(width*L + P [+ 10], H) -> Linear(H, width*L), optionally label-conditioned.

    loss(codes (B, 64), labels (B,) or None) -> mean NLL per pixel (scalar Tensor)
    forward(x (S, B, I) array or Tensor, labels, state) -> logits (S, B, width, L), state
    generate(n, temperature, label, prefix, rng) -> codes (n, 8, 8)
    """

    def __init__(self, levels=4, hidden_size=64, cell="lstm", order="pixels", condition=None, fused=True):
        check_sizes("PixelRNN", hidden_size=hidden_size)
        if not isinstance(levels, (int, np.integer)) or levels < 2:
            raise ValueError(f"PixelRNN: levels must be an integer >= 2, got {levels!r}")
        if cell not in CELLS:
            raise ValueError(f"PixelRNN: cell must be one of {sorted(CELLS)}, got {cell!r}")
        if order not in ORDERS:
            raise ValueError(f"PixelRNN: order must be one of {list(ORDERS)}, got {order!r}")
        if condition not in CONDITIONS:
            raise ValueError(f"PixelRNN: condition must be one of {CONDITIONS}, got {condition!r}")
        self.config = dict(levels=levels, hidden_size=hidden_size, cell=cell, order=order, condition=condition,
                           fused=fused)
        self.levels, self.order, self.condition = levels, order, condition
        self.width = ORDERS[order]
        self.steps = PIXELS // self.width
        input_size = self.width * levels + where_features(order).shape[1] + (CLASSES if condition == "input" else 0)
        self.rnn = CELLS[cell](input_size, hidden_size, fused=fused)
        self.head = nn.Linear(hidden_size, self.width * levels)
        if condition == "state":
            self.label_to_state = nn.Linear(CLASSES, hidden_size)

    # ---- inputs and state -------------------------------------------------------------
    def step_inputs(self, units, first, last, labels=None):
        """x_t for steps t = first .. last-1: (last - first, B, I) float array.

        units (B, T, width): the level codes, known at least up to unit last - 2.
        """
        B, S = len(units), last - first
        previous = np.zeros((S, B, self.width * self.levels), dtype=np.float32)
        seen = units[:, max(first - 1, 0):last - 1].transpose(1, 0, 2)          # (S or S-1, B, width)
        previous[S - len(seen):] = one_hot(seen, self.levels).reshape(len(seen), B, self.width * self.levels)
        where = where_features(self.order)[first:last, None]                       # (S, 1, P)
        parts = [previous, np.broadcast_to(where, (S, B, where.shape[2]))]
        if self.condition == "input":
            parts.append(np.broadcast_to(one_hot(labels, CLASSES), (S, B, CLASSES)))
        return np.concatenate(parts, axis=2).astype(self.dtype)

    def initial_state(self, labels):
        """None (zeros), or for condition="state": h_0 = tanh(W_c one_hot(y) + b_c), (1, B, H)."""
        if self.condition != "state":
            return None
        h0 = self.label_to_state(Tensor(one_hot(labels, CLASSES).astype(self.dtype))).tanh()
        h0 = h0.reshape(1, len(labels), -1)
        if isinstance(self.rnn, nn.LSTM):
            return h0, Tensor(np.zeros(h0.shape, dtype=self.dtype))
        return h0

    def forward(self, x, labels=None, state=None):
        S, B = x.shape[:2]
        if state is None:
            state = self.initial_state(labels)
        out, state = self.rnn(x if isinstance(x, Tensor) else Tensor(x), state)
        return self.head(out).reshape(S, B, self.width, self.levels), state

    # ---- training ------------------------------------------------------------------------
    def loss(self, codes, labels=None):
        """Mean negative log-likelihood per pixel (nats) of codes (B, 64), teacher-forced."""
        codes = self.check_codes(codes, "loss", full=True)
        labels = self.check_labels(labels, len(codes))
        units = codes.reshape(len(codes), self.steps, self.width)
        logits, _ = self(self.step_inputs(units, 0, self.steps, labels), labels)
        return nn.cross_entropy(logits, units.transpose(1, 0, 2))

    # ---- drawing -------------------------------------------------------------------------
    def generate(self, n, temperature=1.0, label=None, prefix=None, rng=None):
        """n images drawn unit by unit: codes (n, 8, 8) int64 in 0..levels-1.

        label   a digit 0–9 or n of them (required by, and only for, a conditioned model)
        prefix  codes of the first k pixels, (k,) or (n, k): kept as given, the rest is drawn
                (k a multiple of the step width; 32 = the top half)
        rng     a seed or np.random.Generator: the same seed draws the same images
        """
        check_sizes("PixelRNN.generate", n=n)
        if not 0 < temperature < np.inf:
            raise ValueError(f"PixelRNN.generate: temperature must be > 0, got {temperature} (a finite number "
                             f"is needed); use a small value such as 0.1 for nearly greedy drawing")
        labels = self.check_labels(label, n)
        prefix = self.check_codes(np.zeros((n, 0), np.int64) if prefix is None else prefix, "prefix", n=n)
        rng = np.random.default_rng(rng)
        codes = np.zeros((n, PIXELS), dtype=np.int64)
        codes[:, :prefix.shape[1]] = prefix
        units = codes.reshape(n, self.steps, self.width)                      # a view of codes
        given = prefix.shape[1] // self.width
        was_training = self.training
        self.eval()
        with no_grad():
            state = self.initial_state(labels)
            if given > 0:
                _, state = self(self.step_inputs(units, 0, given, labels), labels, state)
            for t in range(given, self.steps):
                logits, state = self(self.step_inputs(units, t, t + 1, labels), labels, state)
                units[:, t] = draw_levels(logits.data[0], temperature, rng)
        self.train(was_training)
        return codes.reshape(n, SIDE, SIDE)

    # ---- input checks --------------------------------------------------------------------
    def check_labels(self, labels, n):
        """labels as an (n,) int array (None for an unconditioned model), or a clear ValueError."""
        if self.condition is None:
            if labels is not None:
                raise ValueError("PixelRNN: this model was trained without labels (condition=None); "
                                 "pass label=None, or train with condition='input' or 'state'")
            return None
        if labels is None:
            raise ValueError(f"PixelRNN: this model is conditioned on the digit (condition={self.condition!r}); "
                             f"pass a label 0-9 or one per image")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.ndim > 1:
            raise ValueError(f"PixelRNN: label must be an integer 0-9 or a 1-D array of them, got {labels!r}")
        labels = np.broadcast_to(labels, (n,)) if labels.ndim == 0 else labels
        if labels.shape != (n,):
            raise ValueError(f"PixelRNN: expected {n} labels, got {labels.shape[0]}")
        if labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"PixelRNN: labels must be digits 0-9, got values in [{labels.min()}, {labels.max()}]")
        return labels.astype(np.int64)

    def check_codes(self, codes, what, n=None, full=False):
        """codes (n, k) ints in 0..levels-1 with k a multiple of the step width (k = 64 if full)."""
        codes = np.asarray(codes)
        if n is not None and codes.ndim == 1:
            codes = np.broadcast_to(codes, (n, codes.size))
        k = codes.shape[-1] if codes.ndim == 2 else None
        if (codes.ndim != 2 or (n is not None and len(codes) != n) or k > PIXELS or k % self.width
                or (full and k != PIXELS)):
            expected = "(B, 64)" if full else f"(k,) or ({n}, k) with k <= 64 a multiple of {self.width}"
            raise ValueError(f"PixelRNN {what}: expected level codes of shape {expected} "
                             f"(reading {self.order}), got {codes.shape}")
        if codes.size and (codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() >= self.levels):
            raise ValueError(f"PixelRNN {what}: codes must be integers in 0..{self.levels - 1} "
                             f"(quantize(images, {self.levels})), got {codes.dtype} values in "
                             f"[{codes.min()}, {codes.max()}]")
        return codes.astype(np.int64)


def draw_levels(logits, temperature, rng):
    """One level per pixel from logits (B, width, L): v ~ softmax(logits / temperature)."""
    p = softmax_with_temperature(logits.astype(np.float64), temperature)
    cumulative = np.cumsum(p, axis=-1)
    u = rng.random(cumulative.shape[:-1] + (1,))
    return np.minimum((cumulative < u).sum(axis=-1), logits.shape[-1] - 1)


# ---- evaluation --------------------------------------------------------------------------

def nll_per_pixel(model, codes, labels=None):
    """The model's mean negative log-likelihood per pixel (nats) on codes (n, 64)."""
    with no_grad():
        return model.loss(codes, labels).item()


def histogram_baseline(train_codes, levels, alpha=1.0):
    """p (64, L): each pixel's level histogram over the training images, add-alpha smoothed."""
    counts = np.stack([np.bincount(column, minlength=levels) for column in np.asarray(train_codes).T])
    return (counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * levels)


def baseline_nll(probabilities, codes):
    """Mean -log p_i(v_i) per pixel of codes (n, 64) under the per-position histogram (64, L)."""
    codes = np.asarray(codes)
    return float(-np.log(probabilities[np.arange(PIXELS), codes]).mean())


# ---- showing digits ----------------------------------------------------------------------

def draw_digits(model, n, temperature=1.0, label=None, complete=False, rng=None):
    """n digits to show, and a caption: (codes (n, 8, 8), str).

    complete=False: drawn from scratch (of `label`, for a conditioned model);
    complete=True: real digits (of `label`, if given) whose bottom halves the model redraws.
    """
    if label is not None and label not in range(CLASSES):
        raise ValueError(f"draw_digits: labels must be digits 0-9, got {label!r}")
    rng = np.random.default_rng(rng)
    what = "digits" if label is None else f"{label}s"
    if not complete:
        drawn = model.generate(n, temperature, label, rng=rng)
        unit = model.order[:-1]
        return drawn, f"{n} {what} drawn {unit} by {unit} at temperature {temperature:g}:"
    images, labels = digit_images(n, rng, digits=None if label is None else [label])
    drawn = complete_halves(model, images, labels if model.condition else None, temperature, rng)
    return drawn, f"{n} real {what}: top half given, bottom half drawn at temperature {temperature:g}:"


def complete_halves(model, images, labels=None, temperature=1.0, rng=None):
    """Keep the top half (rows 0–3) of each image, draw the bottom half: codes (n, 8, 8)."""
    codes = quantize(images, model.levels)
    return model.generate(len(codes), temperature, labels, prefix=codes[:, :PIXELS // 2], rng=rng)


def ascii_art(codes, levels, per_line=10):
    """Images (n, 8, 8) of level codes, side by side, `per_line` to a line of text."""
    pictures = [render(image).splitlines() for image in dequantize(codes, levels)]
    blocks = []
    for start in range(0, len(pictures), per_line):
        group = pictures[start:start + per_line]
        blocks.append("\n".join("|" + "|".join(rows) + "|" for rows in zip(*group)))
    return "\n\n".join(blocks)


def _new_figure(width, height, what):
    try:
        from matplotlib.figure import Figure             # no pyplot: no GUI backend needed
    except ImportError as err:
        raise RuntimeError(f"{what} needs matplotlib (pip install matplotlib); "
                           "print ascii_art(codes, levels) instead") from err
    return Figure(figsize=(width, height), layout="constrained")


def _show_digit(axis, image, title=None):
    axis.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])
    if title is not None:
        axis.set_title(str(title), fontsize=8)


def draw_grid(codes, levels, titles=None, per_line=10, title="digits"):
    """A Figure with images (n, 8, 8) of level codes in a grid, `per_line` to a row."""
    images = dequantize(codes, levels)
    rows = -(-len(images) // per_line)
    columns = min(per_line, len(images))
    figure = _new_figure(1.1 * columns + 0.4, 1.2 * rows + 0.5, "save_grid")
    axes = figure.subplots(rows, columns, squeeze=False)
    for k, axis in enumerate(axes.flat):
        if k < len(images):
            _show_digit(axis, images[k], None if titles is None else titles[k])
        else:
            axis.axis("off")
    figure.suptitle(title)
    return figure


def save_grid(codes, levels, path, titles=None, per_line=10, title="digits"):
    """Save images (n, 8, 8) of level codes as a PNG grid with matplotlib; prints and returns path."""
    figure = draw_grid(codes, levels, titles, per_line, title)
    figure.savefig(path, dpi=100)
    return show_figure(path)


def draw_completions(originals, completed, levels, title="half-image completion"):
    """A Figure with one row per digit: the original, the half given to the model, its completions.

    originals (n, 8, 8) codes; completed (n * k, 8, 8): k completions of each
    original in a row (as `complete_halves` returns for originals repeated k
    times). The given half shows the bottom rows blanked in light grey.
    """
    n = len(originals)
    if n == 0 or len(completed) % n:
        raise ValueError(f"draw_completions: {len(completed)} completions for {n} originals; "
                         f"expected the same number of completions of each")
    tries = len(completed) // n
    originals, completed = dequantize(originals, levels), dequantize(completed, levels)
    figure = _new_figure(1.1 * (tries + 2) + 0.4, 1.2 * n + 0.6, "save_completions")
    axes = figure.subplots(n, tries + 2, squeeze=False)
    for row in range(n):
        given = originals[row].copy()
        given[SIDE // 2:] = np.nan                   # rows the model did not see
        _show_digit(axes[row, 0], originals[row], "original" if row == 0 else None)
        _show_digit(axes[row, 1], given, "given (top half)" if row == 0 else None)
        axes[row, 1].set_facecolor("#dddddd")
        for k in range(tries):
            _show_digit(axes[row, 2 + k], completed[row * tries + k], f"completion {k + 1}" if row == 0 else None)
    figure.suptitle(title)
    return figure


def save_completions(originals, completed, levels, path, title="half-image completion"):
    """Save `draw_completions` as a PNG; prints and returns path."""
    figure = draw_completions(originals, completed, levels, title)
    figure.savefig(path, dpi=100)
    return show_figure(path)


# ---- the training task -------------------------------------------------------------------

def build_task(levels=4, order="pixels", cell="lstm", hidden_size=64, condition=None, batch_size=32,
               noise=0.05, fused=True):
    """A `training.Task`: maximise the likelihood of fresh random digits, pixel by pixel.

    Evaluation: NLL per pixel on 500 held-out digits, next to the per-position
    histogram baseline fitted on 2000 other digits.
    """
    check_sizes("pixel RNN", batch_size=batch_size)
    model = PixelRNN(levels, hidden_size, cell, order, condition, fused)
    test_images, test_labels = digit_images(500, np.random.default_rng(12345), noise)
    test_codes = quantize(test_images, levels)
    baseline = histogram_baseline(quantize(digit_images(2000, np.random.default_rng(54321), noise)[0], levels),
                                  levels)
    baseline_test_nll = baseline_nll(baseline, test_codes)

    def labels_for(model, labels):
        return labels if model.condition else None

    def next_batch(rng):
        images, labels = digit_images(batch_size, rng, noise)
        return quantize(images, levels), labels

    def evaluate(model):
        return {"test NLL/pixel": nll_per_pixel(model, test_codes, labels_for(model, test_labels)),
                "baseline NLL/pixel": baseline_test_nll}

    options = dict(levels=levels, order=order, cell=cell, hidden_size=hidden_size, condition=condition,
                   batch_size=batch_size, noise=noise, fused=fused)
    return Task("pixels", options, model, next_batch,
                loss=lambda model, batch: model.loss(batch[0], labels_for(model, batch[1])),
                evaluate=evaluate, items_per_batch=batch_size * PIXELS, item_name="pixel")
