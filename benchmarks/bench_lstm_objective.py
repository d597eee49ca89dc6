"""Long composite graphs: the gradient of an unbatched 2-layer LSTM objective.

The workload follows the LSTM objective of the ADBench automatic-differentiation
benchmark: one sequence of C characters, each a vector of size B = 14, goes
through a 2-layer LSTM whose weights act *elementwise* (a weight vector per
gate, not a matrix), written with primitive ops only. Every op works on a
vector of 14 numbers, so the time measures the autograd engine, and the graph
grows to ~49 nodes per character (~200,000 at C = 4,096): the test of whether
the cost per character stays flat as the graph gets long.

Per layer l and character t, with input x (the previous layer's hidden state):

    f = sigmoid(x * w_f + b_f)        i = sigmoid(h * w_i + b_i)
    o = sigmoid(x * w_o + b_o)        g = tanh(h * w_g + b_g)
    c = c * f + i * g                 h = o * tanh(c)

then y = h_top * w_out + b_out and the objective is the mean log-likelihood of
the next character under softmax(y): -sum_t sum(x_{t+1} * log_softmax(y_t)) / (B (C-1)).

``--form adbench`` runs ADBench's own code for the same objective instead (its
PyTorch version, with Python lists where it assigns into a tensor): a layer's
gates are cat([x, h, x, h]) * w + b cut into four slices at every step, the
weight rows are indexed at every step, the sums are Python's sum() over a
vector's elements (one node per element), and its log-sum-exp adds 2:
~77 nodes per character, what a user who ports that code gets.

Each peer (tinygrad_rnn, PyTorch eager if installed) runs in its own process;
the figure is the median over the timed repeats of forward + backward.

    python benchmarks/bench_lstm_objective.py [--chars 1024 4096] [--repeats 5] [--form adbench]

Prints a markdown table and writes benchmarks/results/bench_lstm_objective.json.
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from peers import sweep, write_results

LAYERS, SIZE = 2, 14
WARMUP = 1
RESULTS = Path(__file__).resolve().parent / "results" / "bench_lstm_objective.json"


def initial_arrays(chars, seed=0):
    """main (2L, 4B): per layer a row of gate weights and a row of gate biases;
    extra (3, B): input weight, output weight, output bias; state (2L, B): h and c
    per layer; sequence (C, B). All float64, as in ADBench."""
    rng = np.random.default_rng(seed)
    main = rng.uniform(-0.5, 0.5, (2 * LAYERS, 4 * SIZE))
    extra = rng.uniform(-0.5, 0.5, (3, SIZE))
    state = rng.uniform(-0.5, 0.5, (2 * LAYERS, SIZE))
    sequence = rng.uniform(0.0, 1.0, (chars, SIZE))
    return main, extra, state, sequence


def objective(main, extra, state, sequence, ops):
    """The objective for any peer whose tensors support + * - and indexing; `ops` holds the peer's
    sigmoid, tanh, exp, log and cat. Weights are sliced once, before the loop."""
    gates = [[(main[2 * l, k * SIZE:(k + 1) * SIZE], main[2 * l + 1, k * SIZE:(k + 1) * SIZE])
              for k in range(4)] for l in range(LAYERS)]
    hidden = [state[2 * l] for l in range(LAYERS)]
    cell = [state[2 * l + 1] for l in range(LAYERS)]
    total = 0.0
    for t in range(sequence.shape[0] - 1):
        x = sequence[t] * extra[0]
        for l, ((w_f, b_f), (w_i, b_i), (w_o, b_o), (w_g, b_g)) in enumerate(gates):
            f = ops.sigmoid(x * w_f + b_f)
            i = ops.sigmoid(hidden[l] * w_i + b_i)
            o = ops.sigmoid(x * w_o + b_o)
            g = ops.tanh(hidden[l] * w_g + b_g)
            cell[l] = cell[l] * f + i * g
            hidden[l] = o * ops.tanh(cell[l])
            x = hidden[l]
        y = x * extra[1] + extra[2]
        total = total + (sequence[t + 1] * (y - ops.log(ops.exp(y).sum()))).sum()
    return total * (-1.0 / (SIZE * (sequence.shape[0] - 1)))


def adbench_objective(main, extra, state, sequence, ops):
    """The same objective as ADBench's own code writes it (``--form adbench``, see the module
    docstring): gates from a concatenation cut into slices, Python's sum(), log(sum(exp(y)) + 2)."""
    hidden = [state[2 * l] for l in range(LAYERS)]
    cell = [state[2 * l + 1] for l in range(LAYERS)]
    total, count, x_in = 0.0, 0, sequence[0]
    for t in range(sequence.shape[0] - 1):
        x = x_in * extra[0]
        for l in range(LAYERS):
            gates = ops.cat([x, hidden[l], x, hidden[l]]) * main[2 * l] + main[2 * l + 1]
            f, i = ops.sigmoid(gates[:SIZE]), ops.sigmoid(gates[SIZE:2 * SIZE])
            o, g = ops.sigmoid(gates[2 * SIZE:3 * SIZE]), ops.tanh(gates[3 * SIZE:])
            cell[l] = cell[l] * f + i * g
            hidden[l] = o * ops.tanh(cell[l])
            x = hidden[l]
        y = x * extra[1] + extra[2]
        y_norm = y - ops.log(sum(ops.exp(y), 2))
        x_in = sequence[t + 1]
        total = total + sum(x_in * y_norm)
        count += x_in.shape[0]
    return -total / count


FORMS = {"sliced": objective, "adbench": adbench_objective}


def setup_ours(arrays):
    """-> (params, data, ops) of tinygrad_rnn: the three parameter tensors, the sequence, the ops."""
    import tinygrad_rnn as tr

    main, extra, state, sequence = arrays
    params = [tr.Tensor(a, requires_grad=True) for a in (main, extra, state)]
    ops = SimpleNamespace(sigmoid=tr.sigmoid, tanh=tr.tanh, exp=tr.exp, log=tr.log, cat=tr.cat)
    return params, tr.Tensor(sequence), ops


def setup_torch(arrays):
    """-> (params, data, ops) of PyTorch, on as many threads as cores."""
    import torch

    torch.set_num_threads(os.cpu_count())
    main, extra, state, sequence = arrays
    params = [torch.tensor(a, requires_grad=True) for a in (main, extra, state)]
    ops = SimpleNamespace(sigmoid=torch.sigmoid, tanh=torch.tanh, exp=torch.exp, log=torch.log, cat=torch.cat)
    return params, torch.from_numpy(sequence), ops


PEERS = {"tinygrad_rnn": setup_ours, "torch": setup_torch}


def time_peer(name, chars, repeats, form):
    """Runs in the child process: warm up, then time `repeats` gradient evaluations."""
    params, data, ops = PEERS[name](initial_arrays(chars))

    def gradient():
        loss = FORMS[form](*params, data, ops)
        loss.backward()
        return loss.item()
    for _ in range(WARMUP):
        loss = gradient()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"peer": name, "chars": chars, "form": form, "loss": loss, "median_ms": median * 1e3,
            "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
            "us_per_char": median * 1e6 / chars, "times_ms": [t * 1e3 for t in times]}


def markdown_table(rows, form):
    """One row per (C, peer); the last column is the cost per character relative to the
    same peer's at the smallest C (1.00: linear in C)."""
    lines = [f"ADBench-style LSTM objective gradient ({form} form), {LAYERS} layers, B={SIZE}, float64 "
             f"(median of timed runs; min–max in brackets)", "",
             "| C | peer | ms per gradient | µs per char | ratio to PyTorch | per char vs first C |",
             "|---:|---|---:|---:|---:|---:|"]
    first = {}
    for row in rows:
        first.setdefault(row["peer"], row["us_per_char"])
        torch_ms = next((r["median_ms"] for r in rows if r["peer"] == "torch" and r["chars"] == row["chars"]), None)
        ratio = f"{row['median_ms'] / torch_ms:.2f}×" if torch_ms else "n/a"
        lines.append(f"| {row['chars']} | {row['peer']} | {row['median_ms']:.0f} "
                     f"({row['min_ms']:.0f}–{row['max_ms']:.0f}) | {row['us_per_char']:.0f} | {ratio} | "
                     f"{row['us_per_char'] / first[row['peer']]:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, nargs="+", default=[1024, 4096],
                        help="sequence lengths C to time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--form", choices=sorted(FORMS), default="sliced",
                        help="the objective as written here (sliced) or as ADBench's code writes it")
    parser.add_argument("--peer", choices=sorted(PEERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (the median of fewer runs is noisy)")
    if min(args.chars) < 2:
        parser.error("--chars must be at least 2 (the objective predicts the next character)")
    if args.peer:
        print(json.dumps(time_peer(args.peer, args.chars[0], args.repeats, args.form)))
        return

    rows = sweep(__file__, "--chars", args.chars, args.repeats, "--form", args.form)
    print(markdown_table(rows, args.form))
    path = RESULTS if args.form == "sliced" else RESULTS.with_name(f"bench_lstm_objective_{args.form}.json")
    write_results(path, dict(benchmark="bench_lstm_objective", form=args.form, chars=args.chars, layers=LAYERS,
                                size=SIZE, repeats=args.repeats, warmup=WARMUP, results=rows))


if __name__ == "__main__":
    main()
