"""Loss functions, built from primitive ops so their gradients come for free.

For a sequence model the loss is summed (or averaged) over time steps:
L = sum_t L_t. Passing logits of shape (T, B, V) with targets (T, B) does
exactly that in one call.
"""
import numpy as np

from .. import functions as F
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    """L = -log softmax(logits)[target], averaged over the targets that are not ignored.

    logits (..., V) float; target (...) integer class indices in [0, V)
    (e.g. logits (T, B, V) and target (T, B) for a sequence). Positions whose
    target equals `ignore_index` (padding) add nothing and are not counted.
    """
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if not isinstance(logits, Tensor):
        raise TypeError(f"cross_entropy expected logits as a Tensor of shape (..., V), got {type(logits).__name__}")
    if logits.ndim < 1:
        raise ValueError(f"cross_entropy expected logits of shape (..., V), got shape {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy expected integer class targets, got dtype {target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: logits {logits.shape} need targets of shape {logits.shape[:-1]}, "
                         f"got {target.shape}")
    V = logits.shape[-1]
    keep = target != ignore_index
    kept = target[keep]
    if np.any((kept < 0) | (kept >= V)):
        raise IndexError(f"cross_entropy: targets must be in [0, {V}) or ignore_index={ignore_index}, "
                         f"got values in [{kept.min()}, {kept.max()}]")
    log_probs = logits.reshape(-1, V).log_softmax(axis=-1)               # (N, V)
    flat_target, flat_keep = target.reshape(-1), keep.reshape(-1)
    picked = log_probs[np.arange(flat_target.size), np.where(flat_keep, flat_target, 0)]   # (N,)
    losses = F.where(flat_keep, -picked, 0.0)
    if reduction == "mean":
        return losses.sum() / max(int(flat_keep.sum()), 1)
    return _reduce(losses.reshape(target.shape), reduction, "cross_entropy")


def mse_loss(prediction, target, reduction="mean"):
    """L = mean((prediction - target)^2)."""
    target = target if isinstance(target, Tensor) else prediction._operand(target, "mse_loss")
    if prediction.shape != target.shape:
        raise ValueError(f"mse_loss: prediction {prediction.shape} and target {target.shape} "
                         f"must have the same shape")
    return _reduce((prediction - target) ** 2, reduction, "mse_loss")


def bce_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy on logits x with targets y in [0, 1]:

        L = softplus(x) - x y,   softplus(x) = log(1 + e^x) = logsumexp([0, x])

    written with logsumexp so it never overflows, whatever the size of x.
    """
    target = target if isinstance(target, Tensor) else logits._operand(target, "bce_with_logits")
    if logits.shape != target.shape:
        raise ValueError(f"bce_with_logits: logits {logits.shape} and target {target.shape} "
                         f"must have the same shape")
    softplus = F.stack([Tensor(np.zeros_like(logits.data)), logits], axis=0).logsumexp(axis=0)
    return _reduce(softplus - logits * target, reduction, "bce_with_logits")
