"""Character corpora: text in, integer and one-hot sequences out.

A char-RNN reads text one character at a time. Each distinct character gets
an index in a `Vocabulary` (sorted, so the same text always gives the same
indices); a character c becomes either its index i(c) (for `nn.Embedding`)
or the one-hot vector e_{i(c)} of length V (for a plain recurrent layer).

The training pairs of a next-character model are shifted windows:

    inputs  x_t = text[s + t]          t = 0 .. T-1
    targets y_t = text[s + t + 1]      (the character that comes next)

`CharCorpus.batch(T, B, rng)` draws B such windows at random start points s
and returns them time-major, (T, B), the layout `nn.LSTM` expects.

Where text comes from, with no download:
- `builtin_text()` joins the help topics that ship with Python
  (`pydoc_data.topics`, about 460,000 characters of English and code);
- `read_text(path)` reads any UTF-8 file, refusing empty or non-UTF-8 ones
  with a message that says which and why.
"""
from pathlib import Path

import numpy as np
from ..tensor import check_sizes


def builtin_text():
    """About 460 k characters of Python's own help text (`pydoc_data.topics`), in a fixed order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some Linux distributions split pydoc_data into its own package
        raise RuntimeError("the built-in corpus needs the standard-library module pydoc_data "
                           "(install your distribution's python3 'pydoc' or full stdlib package), "
                           "or pass your own text file instead") from err
    return "\n\n".join(topics[name] for name in sorted(topics))


def read_text(path):
    """The contents of a UTF-8 text file; ValueError for an empty or non-UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {str(path)!r} does not exist or is not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus file {str(path)!r} is not UTF-8 text (byte {raw[err.start]:#04x} "
                         f"at offset {err.start}); convert it, e.g. `iconv -t UTF-8`") from None
    if not text:
        raise ValueError(f"corpus file {str(path)!r} is empty; a char-RNN needs some text to learn from")
    return text


class Vocabulary:
    """The characters a model knows, each with an index 0 .. V-1.

        vocab = Vocabulary.from_text("hello")      # symbols 'e', 'h', 'l', 'o'
        vocab.encode("hole")   -> array([1, 3, 2, 0])
        vocab.decode([1, 0])   -> "he"
        vocab.one_hot([1, 0])  -> (2, 4) float32, a single 1 per row
    """

    def __init__(self, symbols):
        symbols = list(symbols)
        if not symbols:
            raise ValueError("Vocabulary needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError("Vocabulary symbols must be distinct")
        self.symbols = symbols
        self.index = {symbol: i for i, symbol in enumerate(symbols)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.symbols)

    def __contains__(self, symbol):
        return symbol in self.index

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.symbols == other.symbols

    def __repr__(self):
        return f"Vocabulary({len(self)} symbols: {''.join(self.symbols)[:40]!r})"

    def encode(self, text):
        """Indices (len(text),) int64; ValueError naming any characters the vocabulary lacks."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            shown = "".join(unknown[:20])
            raise ValueError(f"{len(unknown)} character(s) not in the vocabulary of {len(self)}: {shown!r}; "
                             f"use only characters the model was trained on")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, indices):
        return "".join(self.symbols[int(i)] for i in np.asarray(indices).reshape(-1))

    def one_hot(self, indices, dtype=np.float32):
        """indices (...) -> (..., V) with out[..., i] = 1 where i is the index, else 0."""
        indices = np.asarray(indices)
        return np.eye(len(self), dtype=dtype)[indices]


class CharCorpus:
    """A text, its vocabulary and its characters as indices, ready for batching.

        corpus = CharCorpus.builtin()            # or CharCorpus.from_file("book.txt")
        inputs, targets = corpus.batch(seq_len=64, batch_size=32, rng=np.random.default_rng(0))
        inputs.shape == targets.shape == (64, 32)   # targets are inputs shifted by one character
    """

    def __init__(self, text, vocabulary=None):
        if not text:
            raise ValueError("CharCorpus needs a non-empty text")
        self.text = text
        self.vocab = vocabulary if vocabulary is not None else Vocabulary.from_text(text)
        self.ids = self.vocab.encode(text)

    @classmethod
    def builtin(cls, max_chars=None):
        text = builtin_text()
        return cls(text[:max_chars] if max_chars else text)

    @classmethod
    def from_file(cls, path, max_chars=None):
        text = read_text(path)
        return cls(text[:max_chars] if max_chars else text)

    def __len__(self):
        return len(self.text)

    def __repr__(self):
        return f"CharCorpus({len(self)} characters, {len(self.vocab)} distinct)"

    def batch(self, seq_len, batch_size, rng):
        """B random windows: inputs, targets, both (T, B) int64, targets[t] = text[s + t + 1]."""
        check_sizes("CharCorpus.batch", seq_len=seq_len, batch_size=batch_size)
        if len(self.ids) < seq_len + 1:
            raise ValueError(f"CharCorpus.batch: seq_len={seq_len} needs at least {seq_len + 1} characters, "
                             f"the corpus has {len(self.ids)}; use a shorter seq_len or more text")
        starts = rng.integers(0, len(self.ids) - seq_len, size=batch_size)   # (B,)
        window = starts[None, :] + np.arange(seq_len + 1)[:, None]           # (T+1, B)
        chars = self.ids[window]
        return chars[:-1], chars[1:]
