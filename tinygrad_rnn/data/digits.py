"""Sequential 8×8 digits, drawn here: no download, no scikit-learn.

Each digit 0–9 starts as a hand-drawn 8×8 template with one-pixel strokes.
Every sample is a fresh variation of it, from a seeded generator:

1. slant: with probability 1/3 the top half moves one pixel right or left;
2. stroke: with probability 1/2 the strokes are thickened by one pixel
   (right or down), and each ink pixel is dropped with probability 0.05;
3. shift: a random translation that keeps all the ink inside the frame;
4. ink and blur: ink intensity U(0.7, 1), then a 3×3 blur
   image' = 0.6 image + 0.1 (sum of the 4 neighbours), so strokes are grey-edged;
5. noise: N(0, noise²) added to every pixel, clipped to [0, 1].

As a sequence the image is read row by row, (T=8, B, 8), or pixel by pixel,
(T=64, B, 1): a many-to-one classifier must carry what it has seen so far in
its hidden state until the last row.
"""
import numpy as np

from ..tensor import check_sizes

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_DRAWINGS = """
..###... ...#.... ..###... .####... ....#... .#####.. ..###... .#####.. ..###... ..###...
.#...#.. ..##.... .#...#.. .....#.. ...##... .#...... .#...... .....#.. .#...#.. .#...#..
.#...#.. ...#.... .....#.. .....#.. ..#.#... .####... .#...... ....#... .#...#.. .#...#..
.#...#.. ...#.... ....#... ..###... .#..#... .....#.. .####... ...#.... ..###... ..####..
.#...#.. ...#.... ...#.... .....#.. .#####.. .....#.. .#...#.. ...#.... .#...#.. .....#..
.#...#.. ...#.... ..#..... .....#.. ....#... .#...#.. .#...#.. ..#..... .#...#.. .....#..
..###... ..###... .#####.. .####... ....#... ..###... ..###... ..#..... ..###... ..###...
........ ........ ........ ........ ........ ........ ........ ........ ........ ........
"""


def _parse_templates(drawings):
    rows = [line.split() for line in drawings.strip().splitlines()]        # 8 rows × 10 digits
    return np.array([[[c == "#" for c in row[d]] for row in rows] for d in range(10)], dtype=np.float32)


TEMPLATES = _parse_templates(_DRAWINGS)      # (10, 8, 8), 1 = ink


def _shifted(image, dy, dx):
    """image moved dy rows down and dx columns right, zero-filled (ink pushed out is lost)."""
    out = np.zeros_like(image)
    H, W = image.shape
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        image[max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def _vary_strokes(ink, rng):
    if rng.random() < 1 / 3:                                   # slant the top half
        top = _shifted(ink[:4], 0, rng.choice([-1, 1]))
        ink = np.concatenate([top, ink[4:]])
    if rng.random() < 1 / 2:                                   # thicker strokes
        dy, dx = ((0, 1), (1, 0))[rng.integers(2)]
        ink = np.maximum(ink, _shifted(ink, dy, dx))
    return ink * (rng.random(ink.shape) >= 0.05)               # a few broken strokes


def _random_shift(ink, rng):
    """Translate by a random (dy, dx) drawn among those that keep every ink pixel in the frame."""
    rows, cols = np.nonzero(ink)
    if rows.size == 0:
        return ink
    dy = rng.integers(-rows.min(), 8 - rows.max())
    dx = rng.integers(-cols.min(), 8 - cols.max())
    return _shifted(ink, dy, dx)


def _blur(image):
    neighbours = (_shifted(image, 1, 0) + _shifted(image, -1, 0) +
                  _shifted(image, 0, 1) + _shifted(image, 0, -1))
    return 0.6 * image + 0.1 * neighbours


def draw_digit(digit, rng=None, noise=0.05):
    """One random 8×8 rendering of `digit`: float32 in [0, 1]."""
    if not 0 <= digit <= 9:
        raise ValueError(f"draw_digit: digit must be 0..9, got {digit}")
    rng = np.random.default_rng(rng)
    ink = _random_shift(_vary_strokes(TEMPLATES[digit], rng), rng)
    image = _blur(ink * rng.uniform(0.7, 1.0))
    image = image + noise * rng.standard_normal(image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def digit_images(n, rng=None, noise=0.05, digits=None):
    """images (n, 8, 8) float32 in [0, 1] and labels (n,) int64, labels uniform over `digits` (0–9)."""
    check_sizes("digit_images", n=n)
    if noise < 0:
        raise ValueError(f"digit_images: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(rng)
    labels = rng.choice(np.arange(10) if digits is None else np.asarray(digits), size=n).astype(np.int64)
    images = np.stack([draw_digit(int(label), rng, noise) for label in labels])
    return images, labels


def as_rows(images):
    """(n, 8, 8) -> (T=8, n, 8): time step t is image row t."""
    return np.ascontiguousarray(np.asarray(images).transpose(1, 0, 2))


def as_pixels(images):
    """(n, 8, 8) -> (T=64, n, 1): time step t is pixel t in reading order."""
    images = np.asarray(images)
    return np.ascontiguousarray(images.reshape(len(images), -1).T[..., None])


def render(image, shades=" .:-=+*#%@"):
    """An 8×8 image as 8 lines of text, darker characters for more ink."""
    levels = np.clip((np.asarray(image) * (len(shades) - 1)).round().astype(int), 0, len(shades) - 1)
    return "\n".join("".join(shades[v] * 2 for v in row) for row in levels)
