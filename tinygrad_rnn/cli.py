"""The `tinygrad-rnn` command line."""
import argparse
import sys

import numpy as np

from . import __version__
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor


def unrolled_rnn_loss(W_xh, W_hh, W_hy, h0, xs, targets):
    """A tanh RNN unrolled by hand from primitive ops, with an MSE loss at every step.

        h_t = tanh(x_t W_xh + h_{t-1} W_hh),   y_t = h_t W_hy,   L = sum_t mean((y_t - y*_t)^2)
    """
    h, loss = h0, 0.0
    for x_t, target_t in zip(xs, targets):
        h = (x_t @ W_xh + h @ W_hh).tanh()
        loss = loss + ((h @ W_hy - target_t) ** 2).mean()
    return loss


def command_gradcheck(args):
    rng = np.random.default_rng(args.seed)
    B, I, H, O, T = 2, 3, args.hidden, 2, args.steps
    weights = [rng.standard_normal(shape) * 0.5 for shape in [(I, H), (H, H), (H, O), (B, H)]]
    xs = [Tensor(rng.standard_normal((B, I))) for _ in range(T)]
    targets = [Tensor(rng.standard_normal((B, O))) for _ in range(T)]
    print(f"gradcheck of a {T}-step tanh RNN unrolled from primitive ops "
          f"(B={B}, I={I}, H={H}, O={O}):")
    try:
        report = gradcheck(lambda *w: unrolled_rnn_loss(*w, xs, targets), weights,
                           names=["W_xh", "W_hh", "W_hy", "h0"])
    except GradcheckError as err:
        print(err.report)
        return 1
    print(report)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygrad-rnn", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tinygrad-rnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("gradcheck", help="gradcheck BPTT of a small unrolled RNN and print the table")
    check.add_argument("--steps", type=_positive_int, default=5, help="time steps T (default 5)")
    check.add_argument("--hidden", type=_positive_int, default=4, help="hidden size H (default 4)")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=command_gradcheck)
    return parser


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
