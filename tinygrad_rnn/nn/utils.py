"""PyTorch's `torch.nn.utils` names: gradient clipping, reachable as `tr.nn.utils.clip_grad_norm_`.

Both functions live in `tinygrad_rnn.optim` (next to the optimizers that use
them); this module only gives them PyTorch's address.

    total_norm = clip_grad_norm_(params, max_norm, norm_type=2.0)   # every .grad scaled together
    clip_grad_value_(params, clip_value)                            # every .grad element clamped
"""
from ..optim import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
