"""Synthetic memory tasks: long-range dependencies with a known answer.

Both tasks are generated on the fly from a seed (same seed, same batch) and
come time-major, (T, B, ...), the layout `nn.LSTM` expects.

Adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).
Each step carries two numbers, [value, marker]: values are uniform in
[0, 1), and exactly two markers are 1, one in each half of the sequence.
The target is the sum of the two marked values. The two numbers must be
remembered across up to T steps while ignoring everything else. Always
answering 1.0 (the mean of the target) scores an MSE of
Var(u1 + u2) = 2/12 ~ 0.167: a model must beat that to have learned anything.

Copy task (Hochreiter & Schmidhuber 1997; Arjovsky, Shah & Bengio 2016).
A model reads T random symbols, waits `delay` steps, sees a "go" marker and
must then write the T symbols back in order. The answer to step t needs the
input from T + delay steps earlier. Guessing at random scores a
cross-entropy of log(n_symbols) on the recalled steps.
"""
import numpy as np
from ..tensor import check_sizes


def adding_problem(n, T, seed=None):
    """n sequences of the adding problem.

    Returns
        x  (T, n, 2) float32: x[t, b] = [value, marker]; values ~ U(0, 1),
           markers 1 at one step in [0, T/2) and one in [T/2, T), else 0
        y  (n, 1) float32: the sum of the two marked values
    """
    check_sizes("adding_problem", n=n, T=T)
    if T < 2:
        raise ValueError(f"adding_problem: T must be at least 2 (one marker in each half), got {T}")
    rng = np.random.default_rng(seed)
    values = rng.random((T, n))
    half = T // 2
    first = rng.integers(0, half, size=n)           # one marker in each half
    second = rng.integers(half, T, size=n)
    markers = np.zeros((T, n))
    batch = np.arange(n)
    markers[first, batch] = 1.0
    markers[second, batch] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[first, batch] + values[second, batch])[:, None].astype(np.float32)
    return x, y


def copy_task(n, T, n_symbols=8, delay=10, seed=None):
    """n sequences of the copy task, as integer symbols.

    Symbols 0..n_symbols-1 are data, BLANK = n_symbols fills the waiting
    steps, GO = n_symbols + 1 asks for the recall (vocabulary size
    n_symbols + 2). Each sequence has length L = T + delay + T:

        x  (L, n) int64:  [T data symbols] [delay - 1 BLANKs] [GO] [T BLANKs]
        y  (L, n) int64:  [T + delay BLANKs]                       [the T data symbols]

    A model is scored on the last T steps (or on all, counting BLANK as a
    class). One-hot encode with ``np.eye(n_symbols + 2)[x]``.
    """
    check_sizes("copy_task", n=n, T=T, n_symbols=n_symbols, delay=delay)
    rng = np.random.default_rng(seed)
    blank, go = n_symbols, n_symbols + 1
    data = rng.integers(0, n_symbols, size=(T, n))
    x = np.full((T + delay + T, n), blank, dtype=np.int64)
    y = np.full((T + delay + T, n), blank, dtype=np.int64)
    x[:T] = data
    x[T + delay - 1] = go
    y[T + delay:] = data
    return x, y
