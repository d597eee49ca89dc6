"""The garbage-collector pause: the engine always gives the user's settings back.

While a graph is alive the engine postpones the cyclic collector's middle and
full passes (its gen-1 and gen-2 thresholds), and it switches the collector off
during backward. These tests check the settings a user had are there again
after every way out: a normal backward, an error inside backward, Ctrl-C inside
backward, a graph that is dropped without backward, and a collector the user
had switched off.
"""
import gc
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import autograd


@pytest.fixture
def user_settings():
    """Unusual settings a user might have chosen; no pause left over by earlier tests."""
    autograd._resume_old_collections()
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    gc.set_threshold(500, 7, 9)
    yield (500, 7, 9)
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def leaf(values):
    return tr.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


class Boom(tr.Function):
    """Identity forward; its backward raises the exception class it was given."""

    @staticmethod
    def forward(ctx, a, error):
        ctx.error = error
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        seen_during_backward.append(gc.isenabled())
        raise ctx.error("raised inside backward")


seen_during_backward = []


def test_older_passes_are_postponed_while_a_graph_is_alive(user_settings):
    y = leaf([1.0, 2.0]) * 2.0
    young, middle, full = gc.get_threshold()
    assert young == user_settings[0] and middle > 10**6 and full > 10**6
    y.sum().backward()
    assert gc.get_threshold() == user_settings and gc.isenabled()


def test_dropping_a_graph_without_backward_ends_the_pause(user_settings):
    y = leaf([1.0, 2.0]).tanh() * 3.0
    assert gc.get_threshold() != user_settings
    del y
    assert gc.get_threshold() == user_settings


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_settings_come_back_when_backward_raises(user_settings, error):
    seen_during_backward.clear()
    y = Boom.apply(leaf([1.0, 2.0]) * 2.0, error=error)
    with pytest.raises(error, match="raised inside backward"):
        y.sum().backward()
    assert seen_during_backward == [False]   # the collector was off while backward ran
    assert gc.isenabled() and gc.get_threshold() == user_settings


def test_a_collector_the_user_switched_off_stays_off(user_settings):
    gc.disable()
    y = leaf([1.0, 2.0]) * 2.0
    y.sum().backward()
    assert not gc.isenabled() and gc.get_threshold() == user_settings
    seen_during_backward.clear()
    z = Boom.apply(leaf([1.0]) * 1.0, error=ValueError)
    with pytest.raises(ValueError):
        z.sum().backward()
    assert not gc.isenabled() and gc.get_threshold() == user_settings


def test_a_freed_graph_error_restores_the_settings(user_settings):
    y = (leaf([1.0, 2.0]) * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="a second time"):
        y.backward()
    assert gc.isenabled() and gc.get_threshold() == user_settings


def test_a_threshold_the_user_changes_during_the_pause_is_kept(user_settings):
    y = leaf([1.0]) * 2.0
    gc.set_threshold(800, 11, 12)
    y.sum().backward()
    assert gc.get_threshold() == (800, 11, 12)


def test_no_grad_records_nothing_and_pauses_nothing(user_settings):
    with tr.no_grad():
        y = leaf([1.0, 2.0]) * 2.0
    assert y._ctx is None and gc.get_threshold() == user_settings


class Cycle:
    """An object that refers to itself: only the cyclic collector can free it."""

    def __init__(self):
        self.me = self


def test_young_passes_still_free_cycles_during_the_pause(user_settings):
    y = leaf([1.0]) * 2.0
    assert gc.get_threshold()[1] > 10**6   # the pause is on
    cycle = Cycle()
    alive = weakref.ref(cycle)
    del cycle
    kept = [[] for _ in range(5 * user_settings[0])]   # new objects enough for several young passes
    assert alive() is None
    del kept
    y.sum().backward()


def passes_while_building(steps):
    """How many middle and full collections (generations 1 and 2) run while a `steps`-node chain is built."""
    passes = {1: 0, 2: 0}
    def count(phase, info):
        if phase == "start" and info["generation"] in passes:
            passes[info["generation"]] += 1
    gc.callbacks.append(count)
    try:
        y = leaf([1.0])
        for _ in range(steps):
            y = y * 1.0001
    finally:
        gc.callbacks.remove(count)
    y.sum().backward()
    return passes


def test_no_older_pass_walks_a_growing_graph(user_settings, monkeypatch):
    """Python makes a full pass once the objects that survived young passes exceed a
    quarter of the older heap; each step leaves ~4 (two Tensors, a Context, a tuple),
    so a chain of heap/12 steps is long enough to need one without the pause."""
    gc.set_threshold(50, 2, 2)   # older passes as often as Python allows
    gc.collect()
    steps = max(20_000, len(gc.get_objects()) // 12)
    assert passes_while_building(steps) == {1: 0, 2: 0}
    monkeypatch.setattr(autograd, "_pause_old_collections", lambda ctx: None)
    without_pause = passes_while_building(steps)
    assert without_pause[1] > 0 and without_pause[2] > 0   # what the pause prevents
