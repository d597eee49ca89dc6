"""Date-format translation: "23 November 2026" -> "2026-11-23".

A small, offline translation task for an encoder–decoder: the source is a
date written the way people write it (many formats), the target is the same
date in ISO 8601. Sources and targets differ in length and order (the year
moves to the front, a month *name* becomes two digits), so the decoder has to
look at the right source characters at each step — which attention learns.

Dates are drawn with `datetime` between 1950-01-01 and 2049-12-31, so every
day and weekday is valid; the same seed always gives the same pairs.

Both sides are character sequences with three special tokens at the start of
each vocabulary:

    index 0  <pad>   fills short sequences up to the batch's longest
    index 1  <sos>   starts every target (the decoder's first input)
    index 2  <eos>   ends every target (the decoder says "done")

A batch, time-major like the recurrent layers (batch-first on request):

    source          (S, B) int64   character indices, padded with 0
    source_lengths  (B,)   int64   true lengths (for the encoder's `lengths=`)
    target          (T, B) int64   <sos> y_1 .. y_n <eos>, padded with 0
"""
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np

from ..tensor import check_sizes
from .text import Vocabulary

PAD, SOS, EOS = "<pad>", "<sos>", "<eos>"
PAD_INDEX, SOS_INDEX, EOS_INDEX = 0, 1, 2
FIRST_DAY, LAST_DAY = date(1950, 1, 1), date(2049, 12, 31)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def ordinal(n):
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Each format turns a datetime.date into a human-written string.
FORMATS = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",                          # 23 November 2026
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",                         # November 23, 2026
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",                      # Nov 23 2026
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3].lower()} {d.year}",              # 23 nov 2026
    lambda d: f"{WEEKDAYS[d.weekday()].lower()}, {MONTHS[d.month - 1].lower()} {d.day}, {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                              # 23.11.2026
    lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1][:3]} {d.year}",  # Mon 23 Nov 2026
    lambda d: f"{d.day} {MONTHS[d.month - 1].upper()} {d.year}",                  # 23 NOVEMBER 2026
    lambda d: f"the {ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",          # the 23rd of November 2026
    lambda d: f"{d.year}/{d.month}/{d.day}",                                      # 2026/11/23
)


def _source_symbols():
    """Every character any format can write (collected from a sample of every month and weekday)."""
    days = [date(2000, month, day) for month in range(1, 13) for day in (1, 2, 3, 13, 24, 28)]
    days += [date(2001, 1, 1) + timedelta(k) for k in range(7)]
    return sorted({c for d in days for style in FORMATS for c in style(d)} | set("0123456789"))


SOURCE_VOCAB = Vocabulary([PAD, SOS, EOS] + _source_symbols())
TARGET_VOCAB = Vocabulary([PAD, SOS, EOS] + list("-0123456789"))


class DateBatch(NamedTuple):
    """One batch of the translation task (layouts in the module doc)."""

    source: np.ndarray
    source_lengths: np.ndarray
    target: np.ndarray


def random_dates(n, rng=None):
    """n dates drawn uniformly between FIRST_DAY and LAST_DAY."""
    rng = np.random.default_rng(rng)
    offsets = rng.integers(0, (LAST_DAY - FIRST_DAY).days + 1, size=n)
    return [FIRST_DAY + timedelta(days=int(k)) for k in offsets]


def date_pairs(n, seed=0):
    """n (human-written date, ISO date) pairs, each in a randomly chosen format; seeded."""
    check_sizes("date_pairs", n=n)
    rng = np.random.default_rng(seed)
    days = random_dates(n, rng)
    styles = rng.integers(0, len(FORMATS), size=n)
    return [(FORMATS[s](d), d.isoformat()) for d, s in zip(days, styles)]


def pad_sequences(sequences, batch_first=False):
    """Stack integer sequences of different lengths into (T, B) (or (B, T)), padded with PAD_INDEX."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    padded = np.full((len(sequences), lengths.max()), PAD_INDEX, dtype=np.int64)
    for row, sequence in zip(padded, sequences):
        row[:len(sequence)] = sequence
    return (padded if batch_first else padded.T), lengths


def encode_sources(strings, batch_first=False):
    """Human-written dates -> (source (S, B), source_lengths (B,)) for the encoder."""
    return pad_sequences([SOURCE_VOCAB.encode(s) for s in strings], batch_first)


def encode_targets(strings, batch_first=False):
    """ISO dates -> target (T, B): <sos> characters <eos>, padded."""
    wrapped = [np.concatenate([[SOS_INDEX], TARGET_VOCAB.encode(s), [EOS_INDEX]]) for s in strings]
    return pad_sequences(wrapped, batch_first)[0]


def decode_target(indices):
    """Target indices -> text, stopping at the first <eos> and skipping <sos>/<pad>."""
    text = []
    for i in np.asarray(indices).reshape(-1):
        if i == EOS_INDEX:
            break
        if i not in (PAD_INDEX, SOS_INDEX):
            text.append(TARGET_VOCAB.symbols[int(i)])
    return "".join(text)


def make_batch(pairs, batch_first=False):
    """A DateBatch from a list of (source, target) string pairs."""
    sources, targets = zip(*pairs)
    source, lengths = encode_sources(sources, batch_first)
    return DateBatch(source, lengths, encode_targets(targets, batch_first))


def date_batches(pairs, batch_size, rng=None, shuffle=True, batch_first=False):
    """Iterate over `pairs` in DateBatches of `batch_size` (the last one may be smaller)."""
    check_sizes("date_batches", batch_size=batch_size)
    order = np.random.default_rng(rng).permutation(len(pairs)) if shuffle else np.arange(len(pairs))
    for start in range(0, len(pairs), batch_size):
        yield make_batch([pairs[k] for k in order[start:start + batch_size]], batch_first)
