"""Graph overhead: microseconds per node for forward+backward of a long unrolled RNN.

The model is a composite tanh RNN built from primitive ops, unrolled for
T steps (1,000 by default, or a sweep such as 1,000 4,000 16,000) with batch 1 and tiny matrices, so the arithmetic is
negligible and the time measures what the autograd engine itself costs per
recorded op (building the node, then visiting it in backward):

    h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b),    loss = sum(h_T)

Each peer (tinygrad_rnn, PyTorch eager if installed) runs in its own process:
the script re-invokes itself with `--peer NAME`, which prints one JSON line.
Warm-up runs are excluded; the figure is the median of the timed repeats.
With several T the table also gives each peer's cost per node relative to
its own at the first T: 1.00 everywhere means the cost is linear in T.

    python benchmarks/bench_graph.py [--steps 1000 4000 16000] [--repeats 7]

Prints a markdown table and writes benchmarks/results/bench_graph.json.
"""
import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from peers import sweep, write_results

BATCH, INPUT, HIDDEN = 1, 16, 16
WARMUP = 2
RESULTS = Path(__file__).resolve().parent / "results" / "bench_graph.json"


def initial_arrays(steps, seed=0):
    """Inputs xs (T, B, I) and weights W_xh (I, H), W_hh (H, H), b (H,), as float32."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, BATCH, INPUT)).astype(np.float32)
    W_xh = (rng.standard_normal((INPUT, HIDDEN)) / np.sqrt(INPUT)).astype(np.float32)
    W_hh = (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
    b = np.zeros(HIDDEN, dtype=np.float32)
    return xs, W_xh, W_hh, b


# --------------------------------------------------------------------------
# Each peer: build the forward graph, count its nodes, time forward+backward
# --------------------------------------------------------------------------

def ours_forward(xs, W_xh, W_hh, b):
    import tinygrad_rnn as tr

    h = tr.zeros(BATCH, HIDDEN)
    for t in range(xs.shape[0]):
        h = (xs[t] @ W_xh + h @ W_hh + b).tanh()
    return h.sum()


def ours_count_nodes(loss):
    from tinygrad_rnn.autograd import topological_order

    return sum(1 for tensor in topological_order(loss) if tensor._ctx is not None)


def torch_forward(xs, W_xh, W_hh, b):
    import torch

    h = torch.zeros(BATCH, HIDDEN)
    for t in range(xs.shape[0]):
        h = torch.tanh(xs[t] @ W_xh + h @ W_hh + b)
    return h.sum()


def torch_count_nodes(loss):
    """Backward nodes reachable from the loss, not counting AccumulateGrad (the leaves)."""
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(parent for parent, _ in node.next_functions)
    return sum(1 for node in seen if type(node).__name__ != "AccumulateGrad")


def setup_ours(arrays):
    import tinygrad_rnn as tr

    xs, W_xh, W_hh, b = arrays
    inputs = [tr.Tensor(xs)] + [tr.Tensor(w, requires_grad=True) for w in (W_xh, W_hh, b)]
    return ours_forward, ours_count_nodes, inputs


def setup_torch(arrays):
    import torch

    torch.set_num_threads(os.cpu_count())
    xs, W_xh, W_hh, b = arrays
    inputs = [torch.from_numpy(xs)] + [torch.tensor(w, requires_grad=True) for w in (W_xh, W_hh, b)]
    return torch_forward, torch_count_nodes, inputs


PEERS = {"tinygrad_rnn": setup_ours, "torch": setup_torch}


def count_in_big_stack(count):
    """Run `count()` in a thread with a 1 GiB stack. Once Python has looked at
    torch's graph nodes, torch frees that graph recursively, which overflows
    the main thread's stack at T = 16,000."""
    result = []
    threading.stack_size(1 << 30)
    thread = threading.Thread(target=lambda: result.append(count()))
    thread.start()
    thread.join()
    threading.stack_size(0)
    return result[0]


def time_peer(name, steps, repeats):
    """Runs in the child process: warm up, then time `repeats` forward+backward runs."""
    forward, count_nodes, inputs = PEERS[name](initial_arrays(steps))
    nodes = count_in_big_stack(lambda: count_nodes(forward(*inputs)))
    for _ in range(WARMUP):
        forward(*inputs).backward()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(*inputs).backward()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"peer": name, "steps": steps, "nodes": nodes, "median_ms": median * 1e3, "min_ms": min(times) * 1e3,
            "us_per_node": median * 1e6 / nodes, "times_ms": [t * 1e3 for t in times]}


# --------------------------------------------------------------------------
# The parent process: one child per peer, then the table
# --------------------------------------------------------------------------

def markdown_table(rows):
    """One row per (T, peer): time, cost per node, ratio to torch at that T, and the
    cost per node relative to the same peer's at the smallest T (1.00: linear)."""
    lines = [f"Composite tanh RNN, B={BATCH}, I={INPUT}, H={HIDDEN}, forward+backward "
             f"(median of timed runs, warm-up excluded)", "",
             "| T | peer | nodes | ms per run | µs per node | ratio to PyTorch | per node vs first T |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    first = {}
    for row in rows:
        first.setdefault(row["peer"], row["us_per_node"])
        torch_ms = next((r["median_ms"] for r in rows if r["peer"] == "torch" and r["steps"] == row["steps"]), None)
        ratio = f"{row['median_ms'] / torch_ms:.2f}×" if torch_ms else "n/a"
        lines.append(f"| {row['steps']} | {row['peer']} | {row['nodes']} | {row['median_ms']:.2f} | "
                     f"{row['us_per_node']:.2f} | {ratio} | {row['us_per_node'] / first[row['peer']]:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000],
                        help="sequence lengths T to time (several give a sweep)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--peer", choices=sorted(PEERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (the median of fewer runs is noisy)")
    if args.peer:
        print(json.dumps(time_peer(args.peer, args.steps[0], args.repeats)))
        return

    rows = sweep(__file__, "--steps", args.steps, args.repeats)
    print(markdown_table(rows))
    write_results(RESULTS, dict(benchmark="bench_graph", steps=args.steps, batch=BATCH, input=INPUT,
                                hidden=HIDDEN, repeats=args.repeats, warmup=WARMUP, results=rows))


if __name__ == "__main__":
    main()
