"""Forward + backward timings of single-layer LSTM, GRU and RNN, ours vs PyTorch.

    python benchmarks/bench_rnn.py                       # everything (several minutes)
    python benchmarks/bench_rnn.py --cells lstm --configs C1,C3 --repeats 5
    python benchmarks/bench_rnn.py --jit-only            # cold / warm start times only

Peers, each in its own process so thread pools never share a process:
    numba   our Numba kernels called directly (lstm_seq_forward + lstm_seq_backward)
    fused   the same kernels through autograd: tinygrad_rnn.fused wrappers, out.sum().backward()
    numpy   our NumPy reference kernels called directly
    torch   torch.nn.LSTM/GRU/RNN on the CPU, torch.set_num_threads(os.cpu_count())
One measurement = forward and backward of sum(out), float32, zero initial state.
The first call (JIT compile, allocator warm-up) is excluded; we report the
median of --repeats calls. Results go to benchmarks/results/ as JSON and markdown.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from peers import clean_env, write_results

CONFIGS = {"C1": (32, 64, 64, 128), "C2": (64, 128, 128, 256),
           "C3": (1, 512, 32, 64), "C4": (128, 32, 256, 512)}          # (B, T, I, H)
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
PEERS = ("numba", "fused", "numpy", "torch")
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------
# One peer, in a worker process
# --------------------------------------------------------------------------

def make_inputs(cell, B, T, I, H, seed=0):
    """float32 x (T, B, I), zero h0 and PyTorch-style U(-1/sqrt(H), 1/sqrt(H)) weights."""
    rng = np.random.default_rng(seed)
    G, s = GATES[cell], 1 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-s, s, shape).astype(np.float32)

    x = rng.standard_normal((T, B, I)).astype(np.float32)
    return x, np.zeros((B, H), np.float32), [u(G * H, I), u(G * H, H), u(G * H), u(G * H)]


def kernel_step(k, cell, x, h0, weights):
    """fwd+bwd through kernel module `k` directly; d_out = 1 is the gradient of sum(out)."""
    d_out, zero = np.ones(x.shape[:2] + h0.shape[1:], np.float32), np.zeros_like(h0)
    if cell == "lstm":
        def step():
            saved = k.lstm_seq_forward(x, h0, h0, *weights)[3]
            k.lstm_seq_backward(d_out, zero, zero, saved)
    elif cell == "gru":
        def step():
            k.gru_seq_backward(d_out, zero, k.gru_seq_forward(x, h0, *weights)[2])
    else:
        def step():
            k.rnn_seq_backward(d_out, zero, k.rnn_seq_forward(x, h0, *weights)[2])
    return step


def fused_step(cell, x, h0, weights):
    import tinygrad_rnn as tr
    from tinygrad_rnn import fused
    x = tr.Tensor(x, requires_grad=True)
    h0 = tr.Tensor(h0)
    weights = [tr.Tensor(w, requires_grad=True) for w in weights]
    op = {"lstm": lambda: fused.lstm_sequence(x, h0, h0, *weights),
          "gru": lambda: fused.gru_sequence(x, h0, *weights),
          "rnn": lambda: fused.rnn_sequence(x, h0, *weights)}[cell]

    def step():
        for t in [x, *weights]:
            t.grad = None
        op()[0].sum().backward()
    return step


def torch_step(cell, x, h0, weights):
    import torch
    torch.set_num_threads(os.cpu_count())
    T, B, I = x.shape
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](I, h0.shape[1])
    xt = torch.from_numpy(x).requires_grad_()

    def step():
        layer.zero_grad()
        xt.grad = None
        layer(xt)[0].sum().backward()
    return step


def make_step(peer, cell, B, T, I, H):
    x, h0, weights = make_inputs(cell, B, T, I, H)
    if peer == "torch":
        return torch_step(cell, x, h0, weights)
    if peer == "fused":
        return fused_step(cell, x, h0, weights)
    from tinygrad_rnn.kernels import get_kernels
    return kernel_step(get_kernels(peer), cell, x, h0, weights)


def median_ms(step, repeats):
    step()                                   # warm-up: JIT compile / allocator, not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), times


def worker(peer, cells, configs, repeats):
    """Print one JSON line per (cell, config) for `peer`."""
    for cell in cells:
        for name in configs:
            B, T, I, H = CONFIGS[name]
            ms, times = median_ms(make_step(peer, cell, B, T, I, H), repeats)
            print(json.dumps(dict(peer=peer, cell=cell, config=name, B=B, T=T, I=I, H=H,
                                  median_ms=ms, times_ms=times)), flush=True)


# --------------------------------------------------------------------------
# The driver: one process per peer, then the table
# --------------------------------------------------------------------------

def run_peer(peer, cells, configs, repeats, env):
    command = [sys.executable, __file__, "--worker", peer, "--cells", ",".join(cells),
               "--configs", ",".join(configs), "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"peer {peer} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return []
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


JIT_PROBE = """
import time
start = time.perf_counter()
import numpy as np
import tinygrad_rnn as tr
from tinygrad_rnn.kernels import cpu
imported = time.perf_counter()
x = np.ones((2, 1, 3), np.float32); h = np.zeros((1, 4), np.float32)
W_ih, W_hh, b = np.ones((16, 3), np.float32), np.ones((16, 4), np.float32), np.ones(16, np.float32)
out, h_n, c_n, saved = cpu.lstm_seq_forward(x, h, h, W_ih, W_hh, b, b)
cpu.lstm_seq_backward(out, h, h, saved)
print(imported - start, time.perf_counter() - imported)
"""


def jit_times(env):
    """Cold start (empty Numba cache: compile) and warm start (cache filled), LSTM fwd+bwd float32."""
    with tempfile.TemporaryDirectory() as cache:
        times = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", JIT_PROBE], env={**env, "NUMBA_CACHE_DIR": cache},
                                  capture_output=True, text=True, check=True)
            total = time.perf_counter() - start
            import_s, first_call_s = map(float, done.stdout.split())
            times[label] = dict(import_s=import_s, first_call_s=first_call_s,
                                import_plus_first_call_s=import_s + first_call_s, process_s=total)
        return times


PEAK_PROBE = """
import time
import numpy as np
a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
a @ a
times = []
for _ in range(3):
    start = time.perf_counter()
    a @ a
    times.append(time.perf_counter() - start)
print(2 * 4096 ** 3 / min(times) / 1e9)
"""


def measured_peak_gflops(env):
    """The roofline: float32 GFLOP/s of one big NumPy product (4096^3) on all cores, best of 3."""
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout)


def flop_count(cell, B, T, I, H):
    """Floating-point operations of the matrix products of one forward + backward: forward
    x W_ih^T and h W_hh^T; backward da W_hh, da W_ih, da^T x, da^T h: six products of
    T B rows by G H columns with depth I or H, 2 flops per multiply-add."""
    return 6 * T * B * GATES[cell] * H * (I + H)


def roofline(results, peak, cells, configs, peers):
    """GFLOP/s of each peer (matrix products only) and its share of the measured peak."""
    by_key = {(r["peer"], r["cell"], r["config"]): r["median_ms"] for r in results}
    head = ["cell", "config", "GFLOP"] + [f"{p} GFLOP/s (% of peak)" for p in peers]
    lines = [f"Measured peak (one 4096^3 float32 product, all cores): {peak:.0f} GFLOP/s", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        for name in configs:
            flops = flop_count(cell, *CONFIGS[name])
            row = [cell.upper(), name, f"{flops / 1e9:.2f}"]
            for p in peers:
                ms = by_key.get((p, cell, name))
                row.append(f"{flops / ms / 1e6:.0f} ({100 * flops / ms / 1e6 / peak:.0f}%)" if ms else "–")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "–"


def markdown(results, cells, configs, peers):
    by_key = {(r["peer"], r["cell"], r["config"]): r["median_ms"] for r in results}
    head = ["cell", "config (B,T,I,H)"] + [f"{p} ms" for p in peers]
    ratios = [(p, "torch") for p in peers if p != "torch" and "torch" in peers]
    ratios += [("numpy", "numba")] if {"numpy", "numba"} <= set(peers) else []
    ratios += [("fused", "numba")] if {"fused", "numba"} <= set(peers) else []
    head += [f"{a}/{b}" for a, b in ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        for name in configs:
            ms = {p: by_key.get((p, cell, name)) for p in peers}
            row = [cell.upper(), f"{name} {CONFIGS[name]}"]
            row += [f"{ms[p]:.2f}" if ms[p] else "–" for p in peers]
            row += [ratio(ms[a], ms[b]) for a, b in ratios]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--configs", default="C1,C2,C3,C4")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--blas-threads", type=int, default=os.cpu_count(),
                        help="OPENBLAS_NUM_THREADS for our peers; default: the number of cores, "
                             "the same number of threads torch gets")
    parser.add_argument("--jit-only", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cells, configs = args.cells.split(","), args.configs.split(",")
    unknown = [c for c in cells if c not in GATES] + [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown cell or config {unknown[0]!r}: cells are {', '.join(GATES)}; "
                     f"configs {', '.join(CONFIGS)}")
    if args.worker:
        return worker(args.worker, cells, configs, args.repeats)

    ours = clean_env(OPENBLAS_NUM_THREADS=str(args.blas_threads))
    report = dict(repeats=args.repeats, blas_threads_ours=args.blas_threads,
                  torch_threads=os.cpu_count(), jit=jit_times(ours), results=[])
    print("JIT (LSTM fwd+bwd, float32):", json.dumps(report["jit"], indent=1))
    peers = [] if args.jit_only else args.peers.split(",")
    for peer in peers:
        env = clean_env() if peer == "torch" else ours
        rows = run_peer(peer, cells, configs, args.repeats, env)
        for row in rows:
            print(f"{peer:6s} {row['cell']:5s} {row['config']}  {row['median_ms']:9.2f} ms", flush=True)
        report["results"] += rows
    table = markdown(report["results"], cells, configs, peers)
    if peers:
        report["peak_gflops"] = measured_peak_gflops(clean_env())
        table += "\n\n" + roofline(report["results"], report["peak_gflops"], cells, configs, peers)
    print("\n" + table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_results(RESULTS / f"bench-{stamp}.json", report)
    (RESULTS / f"bench-{stamp}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
