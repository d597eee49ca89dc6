"""Training rate: optimizer steps per second on the adding problem, ours against PyTorch.

The workload is a whole training step as a user writes it, so everything outside
the kernels counts too (loss, Linear head, zero_grad, clipping, Adam, Python):

    model  = LSTM(2 -> H) + Linear(H -> 1) on the last output
    step   = zero_grad; mse_loss(model(x), y).backward(); clip_grad_norm_(1.0); Adam.step()

Both peers see the same pre-generated batches (`adding_problem`, B sequences of T
steps), so data generation is not timed. Each peer runs in its own process (the
script re-invokes itself with `--peer NAME`); each repeat times `--steps` steps
after a warm-up, and the figure is the median rate over `--repeats`.

    python benchmarks/bench_train.py [--T 50] [--batch 64] [--hidden 64] [--steps 300] [--repeats 5]

Prints a markdown table and writes benchmarks/results/bench_train.json.
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path

from peers import clean_env, run_in_child, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "bench_train.json"
POOL = 32        # distinct batches, used in turn
WARMUP = 20      # steps before timing (JIT, allocator)


def batches(T, B):
    from tinygrad_rnn.data import adding_problem
    return [adding_problem(B, T, seed=k) for k in range(POOL)]


def ours_step_fn(T, B, H, lr):
    import tinygrad_rnn as tr
    from tinygrad_rnn import nn, optim

    tr.manual_seed(0)
    lstm, head = nn.LSTM(2, H), nn.Linear(H, 1)
    params = lstm.parameters() + head.parameters()
    opt = optim.Adam(params, lr=lr)
    data = [(tr.tensor(x), tr.tensor(y)) for x, y in batches(T, B)]

    def step(k):
        x, y = data[k % POOL]
        out, _ = lstm(x)
        loss = nn.mse_loss(head(out[-1]), y)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
    return step


def torch_step_fn(T, B, H, lr):
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(2, H), torch.nn.Linear(H, 1)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(T, B)]

    def step(k):
        x, y = data[k % POOL]
        out, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(head(out[-1]), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return step


PEERS = {"ours": ours_step_fn, "torch": torch_step_fn}


def worker(peer, args):
    step = PEERS[peer](args.T, args.batch, args.hidden, args.lr)
    for k in range(WARMUP):
        step(k)
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for k in range(args.steps):
            step(k)
        rates.append(args.steps / (time.perf_counter() - start))
    print(json.dumps(dict(peer=peer, steps_per_s=statistics.median(rates), rates=rates)), flush=True)


def run_peer(peer, args):
    env = clean_env(OPENBLAS_NUM_THREADS=str(os.cpu_count())) if peer == "ours" else clean_env()
    return run_in_child(__file__, "--peer", peer, "--T", args.T, "--batch", args.batch, "--hidden", args.hidden,
                        "--steps", args.steps, "--repeats", args.repeats, "--lr", args.lr, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peers", default="ours,torch")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        return worker(args.peer, args)
    results = {p: run_peer(p, args) for p in args.peers.split(",")}
    print(f"adding problem T={args.T} B={args.batch} H={args.hidden}, Adam + clip_grad_norm_, "
          f"{args.steps} steps x {args.repeats} repeats\n")
    print("| peer | steps/s (median) | all repeats | ratio to torch |\n|---|---|---|---|")
    torch_rate = (results.get("torch") or {}).get("steps_per_s")
    for peer, r in results.items():
        ratio = f"{r['steps_per_s'] / torch_rate:.2f}" if torch_rate else "-"
        spread = ", ".join(f"{x:.0f}" for x in r["rates"])
        print(f"| {peer} | {r['steps_per_s']:.0f} | {spread} | {ratio} |")
    write_results(RESULTS, dict(benchmark="bench_train", args=vars(args), results=results))


if __name__ == "__main__":
    main()
