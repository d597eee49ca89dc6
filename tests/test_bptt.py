"""Full and truncated BPTT against graphs built by hand; the per-step gradient table."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import bptt, nn, optim
from tinygrad_rnn.nn.cells import lstm_step, rnn_step

T, B, I, H = 7, 3, 2, 4


def sequence(seed=0, steps=T, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (tr.tensor(rng.standard_normal((steps, B, I)).astype(dtype)),
            tr.tensor(rng.standard_normal((steps, B, H)).astype(dtype)))


def rnn_cell(dtype=np.float64):
    tr.manual_seed(3)
    return nn.RNNCell(I, H).to(dtype)


def rnn_step_fn(cell):
    def step(x_t, h):
        h = rnn_step(x_t, h, *cell.weights())
        return h, h
    return step


def mse_per_step(targets):
    return lambda y, t: nn.mse_loss(y, targets[t])


def grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


# --------------------------------------------------------------------------
# bptt.run against the truncated graph built by hand
# --------------------------------------------------------------------------

def hand_truncated_gradients(cell, xs, targets, windows):
    """Sum of the gradients of each window, each built by hand from its own detached start state.

    windows: (window_start, chunk_start, chunk_end): the losses of steps
    chunk_start..chunk_end-1 are backpropagated through steps window_start..chunk_end-1.
    Without updates the forward values do not depend on the truncation, so the
    state entering window_start is simply that of a plain forward pass, detached.
    """
    with tr.no_grad():
        states = [tr.zeros(B, H, dtype=np.float64)]
        for t in range(len(xs)):
            states.append(rnn_step(xs[t], states[t], *cell.weights()))
    cell.zero_grad()
    for window_start, chunk_start, chunk_end in windows:
        h = states[window_start].detach()
        total = 0.0
        for t in range(window_start, chunk_end):
            h = rnn_step(xs[t], h, *cell.weights())
            if t >= chunk_start:
                total = total + nn.mse_loss(h, targets[t])
        total.backward()
    return grads(cell)


@pytest.mark.parametrize("k1, k2, windows", [
    (2, 2, [(0, 0, 2), (2, 2, 4), (4, 4, 6), (6, 6, 7)]),       # detach every 2 steps
    (2, 3, [(0, 0, 2), (1, 2, 4), (3, 4, 6), (5, 6, 7)]),       # Williams & Peng BPTT(3; 2)
    (3, 5, [(0, 0, 3), (1, 3, 6), (4, 6, 7)]),
    (1, 4, [(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 3, 4), (1, 4, 5), (2, 5, 6), (3, 6, 7)]),
    (None, None, [(0, 0, 7)]),                                  # full BPTT
])
def test_truncated_gradient_equals_hand_built_graph(k1, k2, windows):
    cell = rnn_cell()
    xs, targets = sequence()
    expected = hand_truncated_gradients(cell, xs, targets, windows)
    cell.zero_grad()
    result = bptt.run(rnn_step_fn(cell), xs, tr.zeros(B, H, dtype=np.float64), mse_per_step(targets), k1, k2)
    for name, g in grads(cell).items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(result.losses)) and result.losses.shape == (T,)


def test_full_bptt_equals_plain_backward_and_reports_each_step_loss():
    cell = rnn_cell()
    xs, targets = sequence()
    h, total, per_step = tr.zeros(B, H, dtype=np.float64), 0.0, []
    for t in range(T):
        h = rnn_step(xs[t], h, *cell.weights())
        loss = nn.mse_loss(h, targets[t])
        per_step.append(loss.item())
        total = total + loss
    total.backward()
    expected = grads(cell)
    cell.zero_grad()
    result = bptt.run(rnn_step_fn(cell), xs, tr.zeros(B, H, dtype=np.float64), mse_per_step(targets))
    for name, g in grads(cell).items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-12)
    np.testing.assert_allclose(result.losses, per_step, rtol=1e-12)
    np.testing.assert_allclose(result.state.data, h.data, rtol=1e-12)
    assert not result.state.requires_grad


def test_updates_after_every_chunk_like_a_hand_written_loop():
    """k1 = k2 = 3 with SGD: the classic "detach every k steps" training loop."""
    xs, targets = sequence(steps=8)
    cell = rnn_cell()
    opt = optim.SGD(cell.parameters(), lr=0.1, momentum=0.5)
    h = tr.zeros(B, H, dtype=np.float64)
    for start in range(0, 8, 3):
        h = h.detach()
        total = 0.0
        for t in range(start, min(start + 3, 8)):
            h = rnn_step(xs[t], h, *cell.weights())
            total = total + nn.mse_loss(h, targets[t])
        opt.zero_grad()
        total.backward()
        optim.clip_grad_norm_(cell.parameters(), 0.5)
        opt.step()
    expected = cell.state_dict()

    cell = rnn_cell()
    opt = optim.SGD(cell.parameters(), lr=0.1, momentum=0.5)
    bptt.run(rnn_step_fn(cell), xs, tr.zeros(B, H, dtype=np.float64), mse_per_step(targets), 3, 3,
             optimizer=opt, clip_norm=0.5)
    assert opt.state[0]["step"] == 3                   # chunks [0, 3), [3, 6), [6, 8)
    for name, value in cell.state_dict().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-12)


def test_lstm_tuple_state_and_a_loss_only_at_the_end():
    """Many-to-one: loss_fn returns None except at the last step; the state is (h, c)."""
    tr.manual_seed(0)
    cell = nn.LSTMCell(I, H).double()
    head = nn.Linear(H, 1).double()
    xs, _ = sequence()
    y = tr.tensor(np.ones((B, 1)))

    def step(x_t, state):
        h, c = lstm_step(x_t, state[0], state[1], *cell.weights())
        return h, (h, c)

    initial = (tr.zeros(B, H, dtype=np.float64), tr.zeros(B, H, dtype=np.float64))
    result = bptt.run(step, xs, initial, lambda h, t: nn.mse_loss(head(h), y) if t == T - 1 else None, 2, 4)
    assert np.all(np.isnan(result.losses[:-1])) and np.isfinite(result.losses[-1])
    assert isinstance(result.state, tuple) and len(result.state) == 2
    got = {"weight_ih": cell.weight_ih.grad.copy(), "weight_hh": cell.weight_hh.grad.copy(),
           "head": head.weight.grad.copy()}

    # By hand: the loss is in the last chunk [6, 7) (k1 = 2), whose window starts k2 - k1 = 2 steps
    # earlier, at step 4: the state entering step 4 is cut from the graph.
    cell.zero_grad()
    head.zero_grad()
    h, c = initial
    for t in range(T):
        if t == 4:
            h, c = h.detach(), c.detach()
        h, c = lstm_step(xs[t], h, c, *cell.weights())
    nn.mse_loss(head(h), y).backward()
    np.testing.assert_allclose(got["weight_ih"], cell.weight_ih.grad, rtol=1e-12)
    np.testing.assert_allclose(got["weight_hh"], cell.weight_hh.grad, rtol=1e-12)
    np.testing.assert_allclose(got["head"], head.weight.grad, rtol=1e-12)


def test_randomized_truncation_covers_every_step_and_is_seeded():
    """Chunk lengths are drawn from [k1 // 2, k1 + k1 // 2]; an lr=0 SGD counts the updates."""
    xs, targets = sequence(steps=40)
    results, updates = [], []
    for seed in (1, 1, 2):
        cell = rnn_cell()
        opt = optim.SGD(cell.parameters(), lr=0.0)
        results.append(bptt.run(rnn_step_fn(cell), xs, tr.zeros(B, H, dtype=np.float64),
                                mse_per_step(targets), 6, 8, optimizer=opt, randomize=True, seed=seed))
        updates.append(opt.state[0]["step"])
    assert np.all(np.isfinite(results[0].losses))
    np.testing.assert_array_equal(results[0].losses, results[1].losses)
    np.testing.assert_allclose(results[0].losses, results[2].losses, rtol=1e-12)   # lr = 0: same values
    assert updates[0] == updates[1]
    assert all(40 / 9 <= n <= 40 / 3 + 1 for n in updates)      # chunks of 3..9 steps
    assert updates[0] != updates[2]                            # seeds 1 and 2 draw different chunks


@pytest.mark.parametrize("kwargs, message", [
    (dict(k1=3, k2=2), "k2=2 < k1=3"),
    (dict(k1=0), "k1 must be a positive integer"),
    (dict(k2=3), "k2 given without k1"),
    (dict(k1=2, clip_norm=1.0), "clip_norm needs an optimizer"),
])
def test_bad_truncation_arguments(kwargs, message):
    cell = rnn_cell()
    xs, targets = sequence()
    with pytest.raises(ValueError, match=message):
        bptt.run(rnn_step_fn(cell), xs, tr.zeros(B, H, dtype=np.float64), mse_per_step(targets), **kwargs)


# --------------------------------------------------------------------------
# bptt_gradcheck: the per-step table
# --------------------------------------------------------------------------

def models():
    tr.manual_seed(1)
    return {
        "RNNCell": nn.RNNCell(3, 2),
        "RNNCell-relu": nn.RNNCell(3, 2, nonlinearity="relu"),
        "LeakyRNNCell": nn.LeakyRNNCell(3, 2, alpha=0.3),
        "LeakyRNNCell-learned": nn.LeakyRNNCell(3, 2, learn_alpha=True),
        "LSTMCell": nn.LSTMCell(3, 2),
        "GRUCell": nn.GRUCell(3, 2),
        "RNN": nn.RNN(3, 2, fused=False),
        "LSTM": nn.LSTM(3, 2, fused=False),
        "GRU": nn.GRU(3, 2, fused=False),
        "GRU-nobias-batch-first": nn.GRU(3, 2, bias=False, batch_first=True, fused=False),
    }


MODEL_NAMES = list(models())


def full_gradient(model, x, directions):
    """dL/dW for L = sum_t sum(h_t * v_t), by the model's own forward in float64 (shared weights)."""
    model.double().zero_grad()
    x = tr.tensor(np.asarray(x, dtype=np.float64))
    if hasattr(model, "layer_weights"):
        out, _ = model(x)
        out = out.transpose(1, 0, 2) if model.batch_first else out
        total = (out * directions).sum()
    else:
        state, total = None, 0.0
        for t in range(x.shape[0]):
            state = model(x[t], state)
            h = state[0] if isinstance(state, tuple) else state
            total = total + (h * directions[t]).sum()
    total.backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_step_passes_and_the_table_sums_to_the_full_gradient(name):
    model = models()[name]
    x = np.random.default_rng(5).standard_normal((4, 2, 3)) + 0.1
    report = bptt.bptt_gradcheck(model, x)
    steps = x.shape[1] if getattr(model, "batch_first", False) else x.shape[0]
    assert report.passed and report.ok.shape == (steps, len(report.names))
    full = full_gradient(model, x, report.directions)
    assert set(full) == set(report.names)
    for param, g in full.items():
        np.testing.assert_allclose(report.gradient(param), g, rtol=1e-10, atol=1e-12)


def test_report_table_shows_steps_parameters_and_no_W_hh_at_step_0():
    model = models()["LSTM"]
    report = bptt.bptt_gradcheck(model, np.ones((3, 1, 3)))
    text = str(report)
    assert text.startswith("bptt_gradcheck passed: LSTM, T=3")
    for column in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        assert column in text
    assert len(text.splitlines()) == 3 + 3
    # h_{-1} = 0, so W_hh contributes nothing at step 0
    assert report.norms[0, report.names.index("weight_hh_l0")] == 0.0
    assert report.errors.shape == (3, 4) and report.errors.max() < 1e-6


def test_a_wrong_backward_is_caught_at_its_step(monkeypatch):
    original = tr.functions.Tanh.backward
    monkeypatch.setattr(tr.functions.Tanh, "backward", staticmethod(lambda ctx, g: 1.1 * original(ctx, g)))
    with pytest.raises(tr.GradcheckError, match="FAILED") as caught:
        bptt.bptt_gradcheck(models()["RNNCell"], np.ones((3, 2, 3)))
    assert not caught.value.report.ok.all()


def test_bptt_gradcheck_rejects_what_it_cannot_check():
    with pytest.raises(ValueError, match="one-layer, one-direction"):
        bptt.bptt_gradcheck(nn.LSTM(3, 2, num_layers=2, fused=False), np.ones((2, 1, 3)))
    with pytest.raises(TypeError, match="expected a cell"):
        bptt.bptt_gradcheck(nn.Linear(3, 2), np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match=r"expected x of shape \(T, B, 3\)"):
        bptt.bptt_gradcheck(nn.GRUCell(3, 2), np.ones((2, 3)))
