"""The training loop every app shares: steps, clipping, progress, checkpoints, Ctrl-C.

A `Task` says what to learn: the model, how to draw a batch, how to turn a
batch into gradients, and how to report progress. The `Trainer` runs

    repeat until the step or time budget is spent:
        batch = task.next_batch(rng)
        optimizer.zero_grad()
        loss  = task.backward(model, batch)        # fills p.grad (full or truncated BPTT)
        clip_grad_norm_(params, clip)              # if clip is set
        optimizer.step()

with a tqdm bar showing the loss and items/s (characters/s for a char-RNN).

Checkpoints (`tr.io`, one `.npz`) hold the parameters and, in the JSON
header, the task options, the model config, the optimizer state, the step
count, the states of the data generator and of the library generator
(dropout, teacher forcing) and the model's non-parameter state (e.g. a
REINFORCE baseline) — so a resumed run draws the same batches and makes the
same updates as one that never stopped.

Ctrl-C (SIGINT) only raises a flag: the step in progress finishes, the
checkpoint is written, and `train` returns with ``interrupted=True``. A
second Ctrl-C stops at once. A KeyboardInterrupt raised by a callback
between steps is handled the same way.

Nothing is lost: a non-finite loss stops training and a model with NaN/Inf
weights is never saved (``diverged=True``; the checkpoint file keeps what it
held), and if the checkpoint cannot be written after training (read-only
folder, full disk) the state goes to a sibling file instead (``saved_to``
says where, ``save_error`` why).
"""
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from .. import io
from ..optim import check_number, clip_grad_norm_
from ..tensor import rng

CHECKPOINT_FORMAT = "tinygrad_rnn.apps checkpoint v1"


@dataclass
class Task:
    """What to learn.

    name        the task's name (saved in checkpoints; `apps.TASKS` maps it to a builder)
    options     JSON-able dict that rebuilds the task with `apps.build_task(name, **options)`
    model       the Module to train
    next_batch  rng -> batch (any tuple of arrays)
    loss        (model, batch) -> scalar loss Tensor
    evaluate    model -> dict of results, e.g. {"test accuracy": 0.97} (shown with `describe`)
    items_per_batch, item_name   for the rate on the progress bar ("chars/s", "seqs/s")
    backward    optional (model, batch, optimizer, clip) -> float loss, for tasks that
                compute gradients themselves (truncated BPTT updates several times per batch)
    """

    name: str
    options: dict
    model: object
    next_batch: Callable
    loss: Callable
    evaluate: Callable = None
    items_per_batch: int = 1
    item_name: str = "seq"
    backward: Callable = None


@dataclass
class TrainResult:
    step: int
    losses: list = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    diverged: bool = False      # a loss or weight became NaN/Inf: nothing was saved
    saved_to: str = None        # where the checkpoint went (None: not saved)
    save_error: str = None      # why it is not the path asked for, if it is not


class Trainer:
    """Runs a Task with an optimizer; saves and resumes checkpoints.

        trainer = Trainer(task, Adam(task.model.parameters(), lr=3e-3), clip=1.0, seed=0)
        result = trainer.train(steps=500, checkpoint="run.npz")
    """

    def __init__(self, task, optimizer, clip=None, seed=0):
        if clip is not None:
            check_number("Trainer", "clip (the max gradient norm)", clip, low=0, low_included=False)
        self.task, self.optimizer, self.clip = task, optimizer, clip
        self.rng = np.random.default_rng(seed)
        self.step = 0

    # ---- one step ----------------------------------------------------------------
    def train_step(self):
        """One batch, one update; returns the loss as a float."""
        batch = self.task.next_batch(self.rng)
        self.task.model.train()
        if self.task.backward is not None:
            loss = self.task.backward(self.task.model, batch, self.optimizer, self.clip)
        else:
            self.optimizer.zero_grad()
            loss_tensor = self.task.loss(self.task.model, batch)
            loss_tensor.backward()
            if self.clip is not None:
                clip_grad_norm_(self.optimizer.params, self.clip)
            self.optimizer.step()
            loss = loss_tensor.item()
        self.step += 1
        return float(loss)

    # ---- the loop ------------------------------------------------------------------
    def train(self, steps=None, seconds=None, checkpoint=None, progress=True, callback=None,
              report_every=None):
        """Train for `steps` more steps or `seconds` seconds (whichever is given; both: the first).

        checkpoint  path written at the end and on Ctrl-C (None: no checkpoint)
        callback    called as callback(trainer, loss) after every step; may raise
                    KeyboardInterrupt to stop (a checkpoint is still written)
        report_every  every this many steps, print the task's evaluation under the bar
        """
        if steps is None and seconds is None:
            raise ValueError("Trainer.train: give steps or seconds (or both)")
        for name, value in (("steps", steps), ("seconds", seconds)):
            if value is not None:
                check_number("Trainer.train", name, value, low=0, low_included=False)
        result = TrainResult(self.step)
        start = time.perf_counter()
        bar = tqdm(total=steps if steps else max(1, round(seconds)), unit="step" if steps else "s",
                   disable=not progress, dynamic_ncols=True, leave=True)
        with bar, _sigint_sets_flag() as stop:     # the bar is closed before any error is shown
            try:
                while not stop.is_set():
                    loss = self.train_step()
                    result.losses.append(loss)
                    if not math.isfinite(loss):
                        break
                    elapsed = time.perf_counter() - start
                    self._update_bar(bar, steps, elapsed, loss, len(result.losses))
                    if report_every and self.step % report_every == 0 and self.task.evaluate:
                        bar.write(f"step {self.step}: loss {loss:.4f}, {describe(self.task.evaluate(self.task.model))}")
                    if callback is not None:
                        callback(self, loss)
                    if (steps and len(result.losses) >= steps) or (seconds and elapsed >= seconds):
                        break
            except KeyboardInterrupt:
                stop.set()
        result.interrupted = stop.is_set()
        result.step, result.seconds = self.step, time.perf_counter() - start
        result.diverged = not (math.isfinite(result.losses[-1]) if result.losses else True) \
            or not self.weights_are_finite()
        if checkpoint is not None and not result.diverged:
            result.saved_to, result.save_error = self.save_or_rescue(checkpoint)
        return result

    def weights_are_finite(self):
        return all(np.all(np.isfinite(p.data)) for p in self.task.model.parameters())

    def _update_bar(self, bar, steps, elapsed, loss, done):
        rate = done * self.task.items_per_batch / max(elapsed, 1e-9)
        bar.set_postfix_str(f"loss {loss:.4f}, {rate:,.0f} {self.task.item_name}s/s", refresh=False)
        bar.update(1 if steps else max(0, min(round(elapsed), bar.total) - bar.n))

    # ---- checkpoints -----------------------------------------------------------------
    def save(self, path):
        """Write model, optimizer, step and generator states to `path` (atomically, via tr.io)."""
        io.save(self.task.model, path, extra={
            "format": CHECKPOINT_FORMAT,
            "task": self.task.name,
            "task_options": self.task.options,
            "model_type": type(self.task.model).__name__,
            "model_config": self.task.model.get_config(),
            "optimizer": self.optimizer.state_dict(),
            "clip": self.clip,
            "step": self.step,
            "data_rng": self.rng.bit_generator.state,
            "library_rng": rng().bit_generator.state,          # dropout, teacher forcing, init
            "model_extra_state": self.task.model.get_extra_state(),
        })

    def save_or_rescue(self, path):
        """Save to `path`; if that fails with an OS error, to a sibling, the working folder or
        the temporary folder. Returns (where it went, the error that moved it or None)."""
        try:
            self.save(path)
            return str(path), None
        except OSError as err:
            error = f"{type(err).__name__}: {err}"
        name = os.path.basename(os.fspath(path)) or "checkpoint.npz"
        stem, suffix = os.path.splitext(name)
        rescue_name = f"{stem}.rescued{suffix or '.npz'}"
        for folder in (os.path.dirname(os.path.abspath(path)), os.getcwd(), tempfile.gettempdir()):
            candidate = os.path.join(folder, rescue_name)
            try:
                self.save(candidate)
                return candidate, error
            except OSError:
                continue
        raise OSError(f"cannot save the trained state anywhere ({error}); it is lost when this program "
                      f"ends")

    def restore(self, extra):
        """Load optimizer, step, generator and model extra state from a checkpoint's extra dict.

        Every field is checked before anything global changes (the library's
        generator is set last); a bad field raises ValueError naming it.
        """
        for key in ("optimizer", "step", "data_rng", "library_rng", "model_extra_state"):
            if key not in extra:
                raise ValueError(f"header field extra.{key} is missing")
        step = extra["step"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"header field extra.step must be an integer >= 0, got {step!r:.60}")
        self.optimizer.load_state_dict(extra["optimizer"])
        data_rng, library_rng = np.random.default_rng(), np.random.default_rng()
        for key, generator in (("data_rng", data_rng), ("library_rng", library_rng)):
            try:
                generator.bit_generator.state = extra[key]
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"header field extra.{key} is not a generator state ({err})") from None
        self.task.model.set_extra_state(extra["model_extra_state"])
        self.step, self.rng = step, data_rng
        rng().bit_generator.state = library_rng.bit_generator.state


def describe(results):
    """{"test accuracy": 0.97, "sample": "abc"} -> 'test accuracy 0.970, sample: 'abc''."""
    return ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name}: {value!r}"
                     for name, value in results.items())


class _sigint_sets_flag:
    """Context manager: while inside, Ctrl-C sets a threading.Event instead of raising.

    The handler puts the default one back after the first Ctrl-C, so a second
    one raises KeyboardInterrupt at once. Outside the main thread (where Python
    allows no signal handlers) nothing is installed.
    """

    def __enter__(self):
        self.stop = threading.Event()
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self.stop

    def _handle(self, signum, frame):
        self.stop.set()
        signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
