"""Soft attention: a learned, differentiable look-up into a sequence.

A decoder state (the *query* q) asks a question; every position s of a
source sequence offers a *key* k_s and a *value* v_s. Attention scores each
key against the query, turns the scores into a probability distribution over
positions and returns the expected value:

    e_s = score(q, k_s)                         one number per position
    a   = softmax(e)      (masked positions get a_s = 0 exactly)
    c   = sum_s a_s v_s                         the context vector

Because every step is differentiable, the network learns *where to look* by
plain backpropagation (Bahdanau et al., 2015; Luong et al., 2015). The two
classic scores:

    additive (Bahdanau):  e_s = v^T tanh(W_q q + W_k k_s)
    dot (Luong):          e_s = q . k_s            (/ sqrt(d) when scaled)
    general (Luong):      e_s = q . (W k_s)

Shapes (B batch, S source positions, Hq/Hk/Hv query/key/value sizes):

    query    (B, Hq)
    keys     (S, B, Hk)   time-major like the recurrent layers' output,
                          or (B, S, Hk) with batch_first=True
    values   same layout as keys with last size Hv (default: the keys)
    mask     (B, S) boolean, True at valid positions   } give at most one;
    lengths  (B,) integers: positions s < lengths[b]   } None = all valid
    returns  context (B, Hv), weights (B, S)

Padding is handled by replacing the scores of padded positions with a large
negative number *before* the softmax (``where``, never ``-inf``, so no
``inf - inf = NaN``): e^(-1e9 - max) underflows to exactly 0, the weights sum
to 1 over the valid positions, and no gradient reaches the padded keys.
"""
import numpy as np

from .. import functions as F
from ..tensor import Tensor, check_sizes
from .module import Module, uniform_parameter

MASKED_SCORE = -1e9   # the score a padded position gets: its softmax weight underflows to 0


def attention_mask(mask, lengths, batch_size, source_length, op="attention"):
    """The (B, S) boolean mask of valid positions from `mask` or `lengths` (or None)."""
    if mask is not None and lengths is not None:
        raise ValueError(f"{op}: give either mask or lengths, not both")
    if lengths is not None:
        lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if lengths.shape != (batch_size,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"{op}: lengths must be {batch_size} integers (one per batch element), "
                             f"got shape {lengths.shape} dtype {lengths.dtype}")
        mask = np.arange(source_length)[None, :] < lengths[:, None]
    if mask is None:
        return None
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.shape != (batch_size, source_length):
        raise ValueError(f"{op}: mask must have shape (B, S) = ({batch_size}, {source_length}), "
                         f"got {mask.shape}")
    mask = mask.astype(bool)
    if not mask.any(axis=1).all():
        empty = np.flatnonzero(~mask.any(axis=1)).tolist()
        raise ValueError(f"{op}: batch elements {empty} have no valid position to attend to; "
                         f"every sequence needs length >= 1")
    return mask


def masked_softmax(scores, mask):
    """a = softmax(e) over the last axis, with a_s = 0 where mask is False.   (B, S) -> (B, S)"""
    if mask is not None:
        scores = F.where(mask, scores, MASKED_SCORE)
    return scores.softmax(axis=-1)


def weighted_sum(weights, values):
    """c_b = sum_s a_bs v_bs.   weights (B, S), values (B, S, Hv) -> (B, Hv)"""
    B, S = weights.shape
    return (weights.reshape(B, 1, S) @ values).reshape(B, values.shape[2])


class _Attention(Module):
    """Input checks, masking and the weighted sum shared by every score."""

    def __init__(self, batch_first=False):
        self.batch_first = batch_first

    def forward(self, query, keys, values=None, mask=None, lengths=None):
        """context (B, Hv), weights (B, S) for one query per batch element (see the module doc)."""
        keys = self._batch_major(keys, "keys")
        values = keys if values is None else self._batch_major(values, "values")
        B, S = keys.shape[0], keys.shape[1]
        name = type(self).__name__
        if not isinstance(query, Tensor) or query.ndim != 2 or query.shape[0] != B:
            got = query.shape if isinstance(query, Tensor) else type(query).__name__
            raise ValueError(f"{name}: query must have shape (B, Hq) with B={B} (from the keys), got {got}")
        if values.shape[:2] != (B, S):
            raise ValueError(f"{name}: values need the keys' (B, S) = ({B}, {S}), got {values.shape[:2]}")
        valid = attention_mask(mask, lengths, B, S, name)
        weights = masked_softmax(self.score(query, keys), valid)
        return weighted_sum(weights, values), weights

    def _batch_major(self, x, what):
        name = type(self).__name__
        layout = "(B, S, H)" if self.batch_first else "(S, B, H)"
        if not isinstance(x, Tensor) or x.ndim != 3:
            got = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name}: {what} must be a Tensor of shape {layout}, got {got}")
        return x if self.batch_first else x.transpose(1, 0, 2)

    def score(self, query, keys):
        """e (B, S) from query (B, Hq) and batch-major keys (B, S, Hk)."""
        raise NotImplementedError


class AdditiveAttention(_Attention):
    """Bahdanau attention:  e_s = v^T tanh(W_q q + W_k k_s).

    AdditiveAttention(query_size, key_size, attention_size, batch_first=False)

    W_q (A, Hq), W_k (A, Hk), v (A,) with A = attention_size, drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like a Linear layer. A small
    feed-forward network compares q with every k_s, so Hq and Hk may differ.
    """

    def __init__(self, query_size, key_size, attention_size, batch_first=False):
        check_sizes("AdditiveAttention", query_size=query_size, key_size=key_size,
                    attention_size=attention_size)
        super().__init__(batch_first)
        self.config = dict(query_size=query_size, key_size=key_size, attention_size=attention_size,
                           batch_first=batch_first)
        self.W_q = uniform_parameter((attention_size, query_size), 1 / np.sqrt(query_size))
        self.W_k = uniform_parameter((attention_size, key_size), 1 / np.sqrt(key_size))
        self.v = uniform_parameter((attention_size,), 1 / np.sqrt(attention_size))

    def score(self, query, keys):
        name = "AdditiveAttention"
        if query.shape[1] != self.W_q.shape[1] or keys.shape[2] != self.W_k.shape[1]:
            raise ValueError(f"{name} expected query (B, {self.W_q.shape[1]}) and keys with "
                             f"{self.W_k.shape[1]} features, got query {query.shape}, keys {keys.shape}")
        B, A = query.shape[0], self.v.shape[0]
        projected_query = (query @ self.W_q.T).reshape(B, 1, A)     # (B, 1, A)
        projected_keys = keys @ self.W_k.T                           # (B, S, A)
        return (projected_query + projected_keys).tanh() @ self.v    # (B, S)


class DotAttention(_Attention):
    """Luong attention:  e_s = q . k_s,  divided by sqrt(Hk) when scaled=True.

    DotAttention(scaled=False, query_size=None, key_size=None, batch_first=False)

    Plain dot needs Hq == Hk and has no parameters. Give query_size and
    key_size for Luong's *general* score e_s = q . (W k_s), W (Hq, Hk), which
    learns how the two spaces match (and allows Hq != Hk).

    Why scale: if q and k have d independent unit-variance entries, q . k has
    variance d; dividing by sqrt(d) keeps the softmax out of its flat,
    saturated regime as d grows (Vaswani et al., 2017).
    """

    def __init__(self, scaled=False, query_size=None, key_size=None, batch_first=False):
        if (query_size is None) != (key_size is None):
            raise ValueError("DotAttention: give both query_size and key_size (the general score "
                             "q . W k) or neither (the plain dot product)")
        super().__init__(batch_first)
        self.config = dict(scaled=scaled, query_size=query_size, key_size=key_size, batch_first=batch_first)
        self.scaled = scaled
        self.W = None
        if query_size is not None:
            check_sizes("DotAttention", query_size=query_size, key_size=key_size)
            self.W = uniform_parameter((query_size, key_size), 1 / np.sqrt(key_size))

    def score(self, query, keys):
        B, Hq = query.shape
        Hk = keys.shape[2]
        expected_query = Hk if self.W is None else self.W.shape[0]
        if Hq != expected_query or (self.W is not None and Hk != self.W.shape[1]):
            hint = ("plain dot attention needs query size == key size; pass query_size and key_size "
                    "for the general score" if self.W is None else "sizes differ from the constructor's")
            raise ValueError(f"DotAttention: query {query.shape} and keys {keys.shape} do not match ({hint})")
        query = query if self.W is None else query @ self.W             # q^T W: (B, Hk)
        scores = (keys @ query.reshape(B, Hk, 1)).reshape(B, keys.shape[1])   # (B, S)
        return scores / np.sqrt(Hk) if self.scaled else scores
