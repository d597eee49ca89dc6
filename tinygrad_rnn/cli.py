"""The `tinygrad-rnn` command line.

    tinygrad-rnn demo                      train a small char-LSTM for a minute, print samples
    tinygrad-rnn train --task digits       train any worked example (apps.TASKS), resume, TBPTT, clipping
    tinygrad-rnn sample demo_char_lstm.npz --prime "The " --temperature 0.8 --top-k 5
    tinygrad-rnn draw pixels.npz --label 3 digits drawn pixel by pixel (after `train --task pixels`)
    tinygrad-rnn gradcheck --cell lstm     the per-time-step BPTT gradient table
    tinygrad-rnn bench                     run benchmarks/bench_rnn.py (source checkout only)

Errors in what you asked for (a missing or empty corpus, a checkpoint of
another model, a character the model never saw, a size <= 0, NaN or Inf for
a number) print one line starting with "tinygrad-rnn: error:" and exit with
status 1 (2 for a malformed command line); nothing is written. Ctrl-C during
training saves a checkpoint and exits with status 130; Ctrl-C at any other
moment exits with 130 too, leaving every file as it was. `--debug` (or
TINYGRAD_RNN_DEBUG=1) shows the traceback instead, for a bug report.

Flags are named after the library's parameters (``--hidden-size`` is
``hidden_size``; the short spellings ``--hidden``, ``--layers`` stay).
Nothing is lost: an output file must not be one of the run's inputs nor an
existing file that is not a checkpoint; a run whose weights became NaN/Inf
is not saved; a checkpoint that cannot be written goes to a sibling file.
"""
import argparse
import inspect
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, apps, io, nn
from .backend import get_backend, set_backend
from .kernels import BACKENDS
from .bptt import bptt_gradcheck, unrolled_rnn_loss
from .data.text import Vocabulary
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, manual_seed

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130
DEBUG_VARIABLE = "TINYGRAD_RNN_DEBUG"
MAX_LEVELS = 256    # largest --levels: 8-bit grey
MAX_DRAWN = 10_000  # largest draw --count (each digit is drawn one pixel at a time)
DEMO_CHECKPOINT = "demo_char_lstm.npz"


class CommandError(Exception):
    """A problem with the user's input: printed as one line, exit status 1."""


# --------------------------------------------------------------------------
# demo and train
# --------------------------------------------------------------------------

def command_demo(args):
    """Train a char-LSTM on the built-in corpus (or --corpus) for --seconds, printing samples."""
    _check_writable(args.checkpoint, inputs=[args.corpus])
    manual_seed(args.seed)
    task = apps.build_task("chars", corpus=args.corpus, hidden_size=args.hidden_size, seq_len=64, batch_size=32)
    trainer = apps.Trainer(task, apps.make_optimizer("adam", task.model.parameters(), lr=3e-3), clip=5.0,
                           seed=args.seed)
    text = "the built-in text" if not args.corpus else args.corpus
    print(f"demo: a char-LSTM (hidden {args.hidden_size}) learns {text} "
          f"({len(task.options['vocab'])} distinct characters) for {args.seconds:g} s. Ctrl-C stops early.")
    result = trainer.train(seconds=args.seconds, checkpoint=args.checkpoint,
                           callback=_sample_printer(task, args.sample_every))
    print(f"after {result.step} steps ({result.seconds:.0f} s): loss {np.mean(result.losses[-20:]):.3f}")
    print(_sample_text(task, temperature=0.8, length=200))
    return _finish(result, args.checkpoint)


def _sample_printer(task, every_seconds):
    """A Trainer callback that prints a short sample every `every_seconds` seconds."""
    start = last = time.perf_counter()

    def callback(trainer, loss):
        nonlocal last
        now = time.perf_counter()
        if now - last >= every_seconds:
            last = now
            sample = _sample_text(task, temperature=0.8, length=80)
            tqdm.write(f"[{now - start:4.0f} s, step {trainer.step}, loss {loss:.3f}] {sample!r}")
    return callback


def _sample_text(task, temperature, length):
    vocab = Vocabulary(task.options["vocab"])
    prime = _default_prime(vocab)
    return apps.char_rnn.sample(task.model, vocab, prime, length, temperature, rng=np.random.default_rng(0))


def _default_prime(vocab):
    return "\n" if "\n" in vocab else vocab.symbols[0]


TASK_OPTIONS = ("hidden_size", "num_layers", "cell", "batch_size", "seq_len", "corpus", "max_chars", "tbptt",
                "levels", "order", "condition", "fused")   # flags whose dest is an option of apps.build_task
RESUMABLE_OPTIONS = {"batch_size", "seq_len", "corpus", "max_chars", "tbptt"}   # don't change the model


def flag(option):
    """The command-line spelling of a task option: its dest with dashes (fused is --composite)."""
    return "--composite" if option == "fused" else "--" + option.replace("_", "-")


def command_train(args):
    """Train a task from scratch or resume a checkpoint."""
    if args.steps is None and args.seconds is None:
        args.steps = 200
    if args.tbptt is not None and len(args.tbptt) > 2:
        raise CommandError(f"--tbptt takes K1 or K1 K2 (update every K1 steps through the last K2), "
                           f"got {len(args.tbptt)} numbers: {' '.join(map(str, args.tbptt))}")
    if args.backend:
        set_backend(args.backend)
    options = {option: getattr(args, option) for option in TASK_OPTIONS if getattr(args, option) is not None}
    checkpoint = args.checkpoint or args.resume or f"{args.task or 'chars'}.npz"
    _check_writable(checkpoint, inputs=[args.corpus], replaceable=[args.resume])
    manual_seed(args.seed)
    if args.resume:
        trainer = _resumed_trainer(args, options)
    else:
        task = _build_task(args.task or "chars", options)
        optimizer = apps.make_optimizer(args.optimizer or "adam", task.model.parameters(), lr=args.lr or 3e-3)
        trainer = apps.Trainer(task, optimizer, clip=args.clip, seed=args.seed)
    task = trainer.task
    print(f"train: task {task.name}, {type(task.model).__name__} {task.model.get_config()}, "
          f"{sum(p.size for p in task.model.parameters()):,} parameters, from step {trainer.step}")
    result = trainer.train(steps=args.steps, seconds=args.seconds, checkpoint=checkpoint,
                           report_every=args.report_every)
    if task.evaluate is not None and not result.diverged:
        print(f"step {result.step}: loss {np.mean(result.losses[-20:]):.4f}, {apps.describe(task.evaluate(task.model))}")
    return _finish(result, checkpoint)


def _build_task(name, options):
    accepted = inspect.signature(apps.TASKS[name]).parameters
    unknown = [option for option in options if option not in accepted]
    if unknown:
        raise CommandError(f"{flag(unknown[0])} does not apply to task {name!r} "
                           f"(its options: {', '.join(flag(option) for option in accepted if option in TASK_OPTIONS)})")
    return apps.build_task(name, **options)


def _resumed_trainer(args, options):
    fixed = sorted(set(options) - RESUMABLE_OPTIONS)
    if fixed or args.task or args.optimizer:
        dropped = ["--task"] * bool(args.task) + ["--optimizer"] * bool(args.optimizer) + [flag(f) for f in fixed]
        raise CommandError(f"--resume continues the saved model, task and optimizer; drop {' '.join(dropped)} "
                           f"(start a new run to change them)")
    _check_readable(args.resume)
    checkpoint = apps.read_checkpoint(args.resume)
    saved = checkpoint.extra
    unknown = [option for option in options if option not in saved["task_options"]]
    if unknown:
        raise CommandError(f"{flag(unknown[0])} does not apply to the resumed task (a {saved['task']!r} run)")
    trainer = apps.resume(checkpoint, **options)
    if args.lr is not None:
        trainer.optimizer.lr = args.lr
    if args.clip is not None:
        trainer.clip = args.clip
    return trainer


def _finish(result, checkpoint):
    if result.diverged:
        kept = f"{checkpoint} keeps its previous content" if Path(checkpoint).exists() else "nothing was saved"
        raise CommandError(f"training diverged at step {result.step} (loss or weights became NaN/Inf): "
                           f"{kept}. Try a lower --lr or set --clip")
    if result.save_error is not None:
        print(f"tinygrad-rnn: could not write {checkpoint} ({result.save_error}); the trained state is saved "
              f"to {result.saved_to} instead", file=sys.stderr)
    if result.interrupted:
        print(f"interrupted at step {result.step}; checkpoint saved to {result.saved_to}. "
              f"Resume with: tinygrad-rnn train --resume {result.saved_to}")
        return EXIT_INTERRUPTED
    print(f"checkpoint saved to {result.saved_to}")
    return EXIT_ERROR if result.save_error is not None else 0


def _same_file(path, other):
    """Do `path` and `other` (None allowed) name the same existing file, links included?"""
    return other is not None and Path(other).exists() and os.path.samefile(path, other)


def _check_readable(path):
    if Path(path).is_dir():
        raise CommandError(f"checkpoint {path!r} is a folder, not a checkpoint file")
    if not Path(path).is_file():
        raise CommandError(f"checkpoint {path!r} does not exist")


def _check_writable(path, inputs=(), replaceable=()):
    """Refuse, before any work, an output path that would lose something.

    It must be a file name in an existing, writable folder; not one of this
    run's input files (`inputs`, e.g. the corpus); and, if the file exists, a
    tinygrad_rnn checkpoint (or one of `replaceable`, e.g. the resumed file).
    """
    target = Path(path)
    folder = target.resolve().parent
    if target.is_dir():
        raise CommandError(f"cannot write {str(path)!r}: it is a folder; give a file name such as "
                           f"{str(target / 'model.npz')!r}")
    if not folder.is_dir():
        raise CommandError(f"cannot write checkpoint {str(path)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable")
    if not target.exists():
        return
    if not target.is_file():
        raise CommandError(f"cannot write {str(path)!r}: it is not a regular file (a device or a pipe?); "
                           f"give a file name such as 'model.npz'")
    for other in inputs:
        if _same_file(path, other):
            raise CommandError(f"{str(path)!r} is also an input of this run ({str(other)!r}); writing it would "
                               f"replace it: choose another output file")
    if not any(_same_file(path, other) for other in replaceable) and not io.is_checkpoint(path):
        raise CommandError(f"{str(path)!r} exists and is not a tinygrad_rnn checkpoint; refusing to replace "
                           f"it: choose another file name (or delete it first)")


# --------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------

def command_sample(args):
    """Text from a char-model checkpoint."""
    if args.prime == "":
        raise CommandError("--prime must have at least one character (leave --prime out to start from a newline)")
    _check_readable(args.checkpoint)
    saved = io.load(args.checkpoint)
    extra = saved.extra if isinstance(saved.extra, dict) else {}
    options = extra.get("task_options")
    if saved.class_name != "CharRNN" or not isinstance(options, dict) or not isinstance(options.get("vocab"), str):
        raise CommandError(f"{args.checkpoint!r} holds a {saved.class_name}, not a character model; "
                           f"`sample` needs a checkpoint from `tinygrad-rnn demo` or `train --task chars`")
    io.check_config_sizes(saved)
    try:
        model = apps.char_rnn.CharRNN(**saved.config)
    except (TypeError, ValueError) as err:
        raise CommandError(f"{args.checkpoint!r}: header field config does not fit a CharRNN ({err})") from None
    io.load_into(saved, model)
    if len(set(options["vocab"])) != len(options["vocab"]) or len(options["vocab"]) != model.config["vocab_size"]:
        raise CommandError(f"{args.checkpoint!r}: header field task_options.vocab must hold "
                           f"{model.config['vocab_size']} distinct characters (edited or corrupt header)")
    vocab = Vocabulary(options["vocab"])
    prime = _default_prime(vocab) if args.prime is None else args.prime
    print(apps.char_rnn.sample(model, vocab, prime, args.length, args.temperature, args.top_k,
                               rng=np.random.default_rng(args.seed)))
    return 0


def command_draw(args):
    """Digits from a pixel-model checkpoint, as ASCII art (and a PNG grid with --png)."""
    _check_readable(args.checkpoint)
    png = _png_path(args.png, args.checkpoint) if args.png else None
    checkpoint = apps.read_checkpoint(args.checkpoint)
    if checkpoint.extra["task"] != "pixels":
        raise CommandError(f"{args.checkpoint!r} holds a model of task {checkpoint.extra['task']!r}; `draw` needs "
                           f"a checkpoint from `tinygrad-rnn train --task pixels`")
    task, _ = apps.load_checkpoint(checkpoint)
    if args.label is not None and task.model.condition is None:
        raise CommandError(f"--label needs a model trained with --condition input or state; {args.checkpoint!r} "
                           f"was trained without labels (drop --label)")
    drawn, caption = apps.pixel_rnn.draw_digits(task.model, args.count, args.temperature, args.label,
                                                args.complete, rng=np.random.default_rng(args.seed))
    print(caption)
    print(apps.pixel_rnn.ascii_art(drawn, task.model.levels))
    if png:
        apps.pixel_rnn.save_grid(drawn, task.model.levels, png)     # prints where it saved
    return 0


def _png_path(path, checkpoint):
    """The file --png really writes (".png" added when there is no suffix), checked first."""
    target = Path(path)
    if target.is_dir():
        raise CommandError(f"--png {path!r} is a folder; give a file name such as {str(target / 'digits.png')!r}")
    if not target.suffix:
        target = target.with_suffix(".png")
    _check_writable(target, inputs=[checkpoint], replaceable=[target] if target.suffix == ".png" else [])
    return str(target)


# --------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------

CELLS = {"rnn": nn.RNNCell, "leaky": nn.LeakyRNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def command_gradcheck(args):
    """The per-step table of `bptt.bptt_gradcheck` for a cell, or the unrolled-primitives check."""
    if args.cell == "primitives":
        return _primitives_gradcheck(args)
    manual_seed(args.seed)
    cell = CELLS[args.cell](args.input_size, args.hidden_size)
    x = np.random.default_rng(args.seed).standard_normal((args.steps, args.batch, args.input_size))
    try:
        report = bptt_gradcheck(cell, x, seed=args.seed)
    except GradcheckError as err:
        print(err.report)
        return EXIT_ERROR
    print(report)
    return 0


def _primitives_gradcheck(args):
    rng = np.random.default_rng(args.seed)
    B, I, H, O, T = args.batch, args.input_size, args.hidden_size, 2, args.steps
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
        return EXIT_ERROR
    print(report)
    return 0


# --------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------

def benchmark_script():
    """benchmarks/bench_rnn.py next to the package in a source checkout (editable install), or None."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_rnn.py"
    return script if script.is_file() else None


def command_bench(args):
    script = benchmark_script()
    if script is None:
        raise CommandError("the benchmark suite (benchmarks/bench_rnn.py) ships with the source repository, "
                           "not the installed package; clone the repository and `pip install -e .` there")
    return subprocess.run([sys.executable, str(script), *args.bench_args]).returncode


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: 'tinygrad-rnn train: error: argument --lr: ...'."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(text, low, high=None):
    """`text` as an int in [low, high], or a one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text}")
    return value


def _positive_int(text):
    return _whole_number(text, 1)


def _positive_float(text):
    """`text` as a finite float > 0 (NaN and Inf refused: --lr inf would ruin the weights)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _size(text):
    """A hidden size or layer count: a positive int small enough to build (a typo such as
    --hidden 100000000 would otherwise fill the machine's memory before any error)."""
    return _whole_number(text, 1, apps.MAX_OPTION)   # the largest size a checkpoint may declare


def _levels(text):
    return _whole_number(text, 2, MAX_LEVELS)


def _count(text):
    return _whole_number(text, 1, MAX_DRAWN)


def _seed(text):
    return _whole_number(text, 0, 2**63 - 1)


def _digit(text):
    return _whole_number(text, 0, 9)


def build_parser():
    parser = _Parser(prog="tinygrad-rnn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"tinygrad-rnn {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (or set {DEBUG_VARIABLE}=1)")
    commands = parser.add_subparsers(dest="command", required=True)
    debug = _Parser(add_help=False)   # --debug after the subcommand too; SUPPRESS keeps a value given before it
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    demo = commands.add_parser("demo", parents=[debug],
                               help="train a small char-LSTM for about a minute, printing samples")
    demo.add_argument("--seconds", type=_positive_float, default=60.0, help="training time (default 60)")
    demo.add_argument("--checkpoint", default=DEMO_CHECKPOINT, help=f"where to save (default {DEMO_CHECKPOINT})")
    demo.add_argument("--corpus", help="a UTF-8 text file (default: Python's built-in help text)")
    demo.add_argument("--hidden-size", "--hidden", type=_size, default=128,
                      help="LSTM hidden size (default 128)")
    demo.add_argument("--sample-every", type=_positive_float, default=10.0, help="seconds between samples")
    demo.add_argument("--seed", type=_seed, default=0)
    demo.set_defaults(run=command_demo)

    train = commands.add_parser("train", parents=[debug], help="train a worked example; resume from a checkpoint")
    train.add_argument("--task", choices=list(apps.TASKS), help="what to learn (default chars)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint")
    train.add_argument("--checkpoint", help="where to save (default: the resumed file, or TASK.npz)")
    train.add_argument("--steps", type=_positive_int, help="optimizer steps (default 200 unless --seconds)")
    train.add_argument("--seconds", type=_positive_float, help="train for this long")
    train.add_argument("--optimizer", choices=list(apps.OPTIMIZERS), help="default adam")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default 3e-3)")
    train.add_argument("--clip", type=_positive_float, help="clip the gradient norm to this value")
    train.add_argument("--hidden-size", "--hidden", type=_size, help="hidden size")
    train.add_argument("--num-layers", "--layers", type=_size, help="stacked layers (chars)")
    train.add_argument("--cell", choices=list(apps.char_rnn.CELLS), help="recurrent cell")
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--seq-len", type=_positive_int, help="characters per training window (chars)")
    train.add_argument("--corpus", help="UTF-8 text file (chars; default: built-in text)")
    train.add_argument("--max-chars", type=_positive_int, help="use only the start of the corpus (chars)")
    train.add_argument("--tbptt", type=_positive_int, nargs="+", metavar=("K1", "K2"),
                       help="truncated BPTT: update every K1 steps through the last K2 (chars)")
    train.add_argument("--levels", type=_levels, help="grey levels per pixel (pixels; default 4)")
    train.add_argument("--order", choices=list(apps.pixel_rnn.ORDERS),
                       help="read the image pixel by pixel or row by row (pixels)")
    train.add_argument("--condition", choices=["input", "state"], help="feed the digit label (pixels)")
    train.add_argument("--composite", dest="fused", action="store_const", const=False,
                       help="use the unrolled composite layers, not fused")
    train.add_argument("--backend", choices=BACKENDS, help="kernels for the fused layers")
    train.add_argument("--report-every", type=_positive_int, help="print the task's evaluation every N steps")
    train.add_argument("--seed", type=_seed, default=0)
    train.set_defaults(run=command_train)

    sample = commands.add_parser("sample", parents=[debug], help="generate text from a char-model checkpoint")
    sample.add_argument("checkpoint")
    sample.add_argument("--prime", help="text to start from (default: a newline)")
    sample.add_argument("--length", type=_positive_int, default=300, help="characters to generate")
    sample.add_argument("--temperature", type=_positive_float, default=1.0, help="> 0; lower is more conservative")
    sample.add_argument("--top-k", type=_positive_int, help="draw only from the k most likely characters (k >= 1)")
    sample.add_argument("--seed", type=_seed, default=0)
    sample.set_defaults(run=command_sample)

    draw = commands.add_parser("draw", parents=[debug],
                               help="draw digits pixel by pixel from a `train --task pixels` checkpoint")
    draw.add_argument("checkpoint")
    draw.add_argument("-n", "--count", type=_count, default=10, help="how many digits (default 10)")
    draw.add_argument("--label", type=_digit, help="which digit 0-9 (models trained with --condition)")
    draw.add_argument("--temperature", type=_positive_float, default=1.0, help="> 0; lower is more conservative")
    draw.add_argument("--complete", action="store_true", help="complete the bottom halves of real digits")
    draw.add_argument("--png", help="also save the digits as a PNG grid (needs matplotlib)")
    draw.add_argument("--seed", type=_seed, default=0)
    draw.set_defaults(run=command_draw)

    check = commands.add_parser("gradcheck", parents=[debug],
                                help="check BPTT gradients per time step and print the table")
    check.add_argument("--cell", choices=[*CELLS, "primitives"], default="lstm",
                       help="a cell for bptt_gradcheck, or 'primitives': a tanh RNN unrolled by hand")
    check.add_argument("--steps", type=_positive_int, default=5, help="time steps T (default 5)")
    check.add_argument("--hidden-size", "--hidden", type=_size, default=4, help="hidden size H (default 4)")
    check.add_argument("--input-size", "--input", type=_positive_int, default=3, help="input size I (default 3)")
    check.add_argument("--batch", type=_positive_int, default=2, help="batch size B (default 2)")
    check.add_argument("--seed", type=_seed, default=0)
    check.set_defaults(run=command_gradcheck)

    bench = commands.add_parser("bench", help="run the benchmark suite (source checkout only); "
                                "further arguments go to benchmarks/bench_rnn.py")
    bench.set_defaults(run=command_bench)

    from . import assignment, grade    # the course commands: grade, assignment make, notebooks
    grade.add_command(commands)
    assignment.add_commands(commands)
    return parser


def main(argv=None):
    """Run one command; every failure becomes one line on stderr and an exit status.

    1 for an error in what was asked (or an unexpected one), 2 for a usage
    error, 130 for Ctrl-C at any moment. --debug (or TINYGRAD_RNN_DEBUG=1)
    re-raises instead, for a bug report with the full traceback.
    """
    if threading.current_thread() is threading.main_thread():   # from here on Ctrl-C is KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = build_parser()
        args, passed_on = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        print("tinygrad-rnn: interrupted (Ctrl-C); nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if passed_on and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    args.bench_args = passed_on
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        get_backend()          # a bad TINYGRAD_RNN_BACKEND is reported before any work
        return args.run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("tinygrad-rnn: interrupted (Ctrl-C); files being written were left as they were",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if debug:
            raise
        expected = isinstance(err, (CommandError, ValueError, TypeError, OSError, RuntimeError, MemoryError))
        text = " ".join(str(err).split()) or type(err).__name__
        if getattr(err, "errno", None) is not None or not expected:   # "[Errno 28] ..." needs its name
            text = f"{type(err).__name__}: {text}"
        hint = "" if expected else " (an unexpected error: rerun with --debug and report the traceback)"
        print(f"tinygrad-rnn: error: {text}{hint}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
