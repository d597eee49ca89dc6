"""Running a kernel on every core: ``in_parallel``, ``together``, and the team of threads they use.

The CPU kernels (``cpu.py``) are compiled with ``nogil=True``, so Python
threads can run them on all cores at once:

- ``in_parallel(kernel, n, work, *args)`` cuts range(n) into one slice per
  thread (rows of the batch, or of all steps' rows), runs the slices at
  once, and returns their results in order. The slices never wait for each
  other;
- ``together(kernel, threads, *args)`` runs kernel(*args, k, k + 1) on
  `threads` threads at once, for a time loop cut over the hidden units,
  whose threads wait for each other at every step (``barrier``).

Handing a slice to another thread and learning that it is done are the cost
of running in parallel. A thread that sleeps until it is told to start (a
lock, a queue) is woken by the operating system, and on a virtual machine
waking an idle core takes tens of microseconds; a forward and backward pass
hands work over four times, and a barrier comes every time step. So the
threads *spin* while they wait: each watches a flag in memory, and sees it
change within a fraction of a microsecond. Each flag holds a count:

    go[w] = k        worker w may start its job number k (set by the caller)
    done[w] = k      worker w has finished its job number k (set by worker w)
    arrived[k] = n   thread k of a ``together`` call has reached its barrier n

The caller writes the jobs down, sets ``go``, runs the first slice itself,
then spins until every worker's ``done`` shows the job's number (``_wait``).
A worker sets ``done`` from compiled code, after it has released the GIL,
so the caller never waits for the GIL when it sees it. A worker that finds
no new job after SPIN_LOADS looks at its flag goes to sleep on a condition
variable, so an idle program does not keep a core busy.

The flags are read and written with atomic loads and stores
(``_load_acquire``, ``_store_release``): a plain load in a loop may be
hoisted out of the loop by the compiler, which would then spin forever, and
the acquire/release pair makes everything written before a flag was set
visible to the thread that sees it set.

BLAS is held to one thread while kernels run, split or not: its own threads
would compete for the same cores, and after a product they keep spinning on
a core for a while, which halves the speed of the next split loop.
"""
import functools
import importlib
import os
import threading
from contextlib import ContextDecorator

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from threadpoolctl import ThreadpoolController

PARALLEL_MIN_WORK = 1 << 25      # multiply-adds that pay for handing work to one more thread
OPEN = np.iinfo(np.int64).max    # a barrier count every thread has passed: opens a failed call's barriers
SPIN_LOADS = 1 << 22             # looks at its flag a worker makes before it sleeps: a few milliseconds


def in_parallel(kernel, n, work, *args):
    """[kernel(*args, lo, hi) for consecutive slices [lo, hi) of range(n)], one slice per thread, run at once.

    `kernel` is a compiled (@njit, nogil=True) function. If another caller is
    using the team, the slices run one after another on this thread.
    """
    threads = thread_count(n, work)
    bounds = split(n, threads)
    with one_blas_thread():
        team = _team() if threads > 1 else None
        if team is None or not team.lock.acquire(blocking=False):  # one slice, or the team is busy with another
            return [kernel(*args, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]   # caller's call: one by one
        try:
            return team.run(kernel, args, bounds)
        finally:
            team.lock.release()


def together(kernel, threads, *args):
    """[kernel(*args, arrived, k, k + 1) for k in range(threads)], all running at the same time.

    For kernels whose threads wait for each other (``barrier(arrived, k, count)``)
    at every time step: they must all run at once, so this call waits for the
    team if another caller is using it. If one of them fails (or the caller is
    interrupted), every barrier is opened (``OPEN``), so that the others run to
    the end instead of waiting forever for it.
    """
    arrived = np.zeros(threads, np.int64)
    with one_blas_thread():
        if threads == 1:
            return [kernel(*args, arrived, 0, 1)]
        team = _team()
        with team.lock:
            return team.run(kernel, args, list(range(threads + 1)), arrived)


def thread_count(n, work):
    """Threads for `work` multiply-adds over n rows (or units): one more per PARALLEL_MIN_WORK
    multiply-adds, which pays for handing work to it, at most one per core and one per row.
    The callers count a time loop's work as T B G H (H + 8): its recurrent product, plus
    about 8 for the pointwise math of each gate."""
    return max(1, min(_cores(), n, 1 + work // PARALLEL_MIN_WORK))


def split(n, parts):
    """Bounds (parts + 1,) of `parts` consecutive slices of range(n), as equal as can be."""
    return np.array([n * k // parts for k in range(parts + 1)], np.int64)


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --------------------------------------------------------------------------
# Flags: atomic loads and stores of one int64
# --------------------------------------------------------------------------

@intrinsic
def _load_acquire(typingctx, flags, i):
    """flags[i], read atomically: never hoisted out of a loop, and it sees what was written before the store."""
    def codegen(context, builder, signature, arguments):
        pointer = _element_pointer(context, builder, signature.args[0], *arguments)
        return builder.load_atomic(pointer, "acquire", 8)
    return flags.dtype(flags, i), codegen


@intrinsic
def _store_release(typingctx, flags, i, value):
    """flags[i] = value, written atomically after everything this thread wrote before it."""
    def codegen(context, builder, signature, arguments):
        pointer = _element_pointer(context, builder, signature.args[0], *arguments[:2])
        builder.store_atomic(arguments[2], pointer, "release", 8)
        return context.get_dummy_value()
    return types.void(flags, i, value), codegen


def _element_pointer(context, builder, array_type, array, i):
    array = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, array, [i])


jit = njit(cache=True, nogil=True)


@jit
def _signal(go, jobs):
    """Tell workers 0..len(jobs)-1 to start their jobs jobs[w]."""
    for w in range(jobs.size):
        _store_release(go, w, jobs[w])


@jit
def _wait(done, jobs):
    """Spin until every worker w has finished its job jobs[w]."""
    for w in range(jobs.size):
        while _load_acquire(done, w) != jobs[w]:
            pass


@jit
def barrier(arrived, k, count):
    """Thread k of the `arrived.size` threads of a ``together`` call has reached its barrier number
    `count` (1, 2, ...; arrived starts at zeros); wait until every thread has."""
    _store_release(arrived, k, count)
    for other in range(arrived.size):
        while _load_acquire(arrived, other) < count:
            pass


@jit
def _finish_and_look(done, go, w, job, looks):
    """Worker w's report that job `job` is done; then look for job `job + 1`: True once it is there,
    False after `looks` looks (the worker then sleeps)."""
    _store_release(done, w, job)
    for _ in range(looks):
        if _load_acquire(go, w) == job + 1:
            return True
    return False


# --------------------------------------------------------------------------
# The team
# --------------------------------------------------------------------------

class _Team:
    """Worker threads that run the slices of a job beyond the caller's first one.

    A job is posted in three places: ``tasks[w]`` (kernel, args, lo, hi, arrived),
    read by worker w under the GIL; ``posted[w]``, the job number a sleeping
    worker is woken for; and ``go[w]``, the flag a spinning worker watches. A
    posted job is always run, and waited for, even if the caller is interrupted
    before it sets ``go`` (the worker then finds it when it stops spinning).
    ``lock`` lets one caller at a time use the team.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.wake = threading.Condition()
        self.go, self.done = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.tasks, self.results, self.posted = [], [], []

    def run(self, kernel, args, bounds, arrived=None):
        """[kernel(*args, lo, hi) for each slice], the first run by the caller, the others by workers
        0, 1, ...; for a ``together`` call (with its `arrived` flags) kernel(*args, arrived, lo, hi)."""
        workers = len(bounds) - 2
        self._grow(workers)
        if arrived is not None:
            args = args + (arrived,)
        for w in range(workers):
            self.tasks[w] = (kernel, args, bounds[w + 1], bounds[w + 2], arrived)
        jobs = np.array(self.posted[:workers], np.int64) + 1
        try:
            with self.wake:
                self.posted[:workers] = jobs.tolist()       # one store: the job is posted, or not at all
                self.wake.notify_all()
            _signal(self.go, jobs)
            first = kernel(*args, bounds[0], bounds[1])
        except BaseException:
            _open(arrived)                      # a worker never waits for the caller's slice
            raise
        finally:                                # no slice still running once the call is over, even on error
            _wait(self.done, np.array(self.posted[:workers], np.int64))
            outcomes = self.results[:workers]
            self.tasks[:workers] = self.results[:workers] = [None] * workers
        for _, error in outcomes:
            if error is not None:
                raise error
        return [first] + [result for result, _ in outcomes]

    def _grow(self, workers):
        """Start workers until there are `workers` of them. The flags move to longer arrays; a worker
        still watching the old `go` misses its next job's flag, sleeps, and is woken by `posted`."""
        have = len(self.tasks)
        if have >= workers:
            return
        self.go, self.done = (np.concatenate([a, np.zeros(workers - have, np.int64)]) for a in (self.go, self.done))
        self.tasks += [None] * (workers - have)
        self.results += [None] * (workers - have)
        self.posted += [0] * (workers - have)
        for w in range(have, workers):
            threading.Thread(target=self._work, args=(w,), daemon=True,
                             name=f"tinygrad_rnn-{w}").start()

    def _work(self, w):
        """Worker w's life: wait for a job (spinning, then sleeping), run its slice, report, repeat."""
        job, started = 0, False
        while True:
            if not started:
                with self.wake:
                    self.wake.wait_for(lambda: self.posted[w] > job)
            job += 1
            self.results[w] = self._run_task(w)
            started = _finish_and_look(self.done, self.go, w, job, SPIN_LOADS)

    def _run_task(self, w):
        """(result, None) or (None, the error) of worker w's slice; nothing of it is kept here once done,
        so that a kept block of arrays (see cpu._block) is free again when the caller drops it."""
        kernel, args, lo, hi, arrived = self.tasks[w]
        try:
            return kernel(*args, lo, hi), None
        except BaseException as error:
            _open(arrived)                      # the other threads never wait for this slice
            return None, error


def _open(arrived):
    """Let every barrier of a ``together`` call pass from now on (nothing to do for other calls)."""
    if arrived is not None:
        arrived[:] = OPEN


_teams = {}                                      # process id -> its team
_teams_lock = threading.Lock()


def _team():
    """This process's team (a forked child makes its own: the parent's threads are not in it)."""
    pid = os.getpid()
    with _teams_lock:
        if pid not in _teams:
            _teams.clear()
            _teams[pid] = _Team()
        return _teams[pid]


# --------------------------------------------------------------------------
# BLAS at one thread
# --------------------------------------------------------------------------

@functools.cache
def _blas_libraries():
    """threadpoolctl's handles on the BLAS libraries loaded: NumPy's and SciPy's, which Numba calls."""
    importlib.import_module("scipy.linalg.cython_blas")            # loaded now, so that threadpoolctl finds it
    return ThreadpoolController().select(user_api="blas").lib_controllers


class _BlasHold:
    """Who is running kernels now: BLAS is set to one thread by the first to start and
    set back by the last to finish, so that kernels called from several threads at once
    still give the user's setting back (a save and restore per call would not)."""
    lock = threading.Lock()
    holders = 0
    before = []


class one_blas_thread(ContextDecorator):
    """``with one_blas_thread():`` BLAS set to one thread, and back to the user's setting on
    every exit path.

    Also a decorator, ``@one_blas_thread()``: a kernel's forward or backward
    holds BLAS once for all its parallel calls (each of which holds it too, at
    the cost of a counter when it is held already), instead of setting every
    BLAS library's threads and back around each of them."""

    def __enter__(self):
        with _BlasHold.lock:
            if _BlasHold.holders == 0:
                _BlasHold.before = [library.num_threads for library in _blas_libraries()]
                for library in _blas_libraries():
                    library.set_num_threads(1)
            _BlasHold.holders += 1

    def __exit__(self, *error):
        with _BlasHold.lock:
            _BlasHold.holders -= 1
            if _BlasHold.holders == 0:
                for library, threads in zip(_blas_libraries(), _BlasHold.before):
                    library.set_num_threads(threads)


def _after_fork_in_child():
    """A child forked while another thread ran a kernel inherits held locks and a count of
    holders that are not in it; it starts afresh (its BLAS keeps the setting it was forked with)."""
    global _teams_lock
    _BlasHold.lock = threading.Lock()
    _BlasHold.holders = 0
    _teams_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
