"""Optimizers and clipping: the same steps as torch.optim, state that round-trips, clear errors."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import optim

SHAPES = [(3, 4), (4,), (2, 1, 3)]

SETTINGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
]


def gradients(step, seed=0):
    """Fixed pseudo-random gradients for step `step`, the same for both libraries."""
    rng = np.random.default_rng(1000 * seed + step)
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def initial_values():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def make_ours(name, options, values):
    params = [tr.tensor(v.copy(), requires_grad=True) for v in values]
    return params, getattr(optim, name)(params, **options)


def make_torch(torch, name, options, values):
    params = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    return params, getattr(torch.optim, name)(params, foreach=False, **options)


def run_ours(params, opt, steps, first=0):
    for k in range(first, first + steps):
        opt.zero_grad()
        for p, g in zip(params, gradients(k)):
            p.grad = g.copy()
        opt.step()


def run_torch(params, opt, steps, first=0):
    import torch
    for k in range(first, first + steps):
        opt.zero_grad()
        for p, g in zip(params, gradients(k)):
            p.grad = torch.tensor(g)
        opt.step()


def assert_same_params(ours, theirs):
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, options", SETTINGS)
def test_steps_match_torch(name, options):
    torch = pytest.importorskip("torch")
    values = initial_values()
    ours, our_opt = make_ours(name, options, values)
    theirs, their_opt = make_torch(torch, name, options, values)
    run_ours(ours, our_opt, 6)
    run_torch(theirs, their_opt, 6)
    assert_same_params(ours, theirs)


@pytest.mark.parametrize("name, options", SETTINGS)
def test_state_dict_resumes_identically(name, options):
    """Stop after 3 steps, save the state, restore it in a fresh optimizer: the run continues as torch's."""
    torch = pytest.importorskip("torch")
    values = initial_values()
    ours, first_opt = make_ours(name, options, values)
    run_ours(ours, first_opt, 3)
    saved = first_opt.state_dict()
    resumed = getattr(optim, name)(ours, **{**options, "lr": 123.0})   # lr comes back from the state
    resumed.load_state_dict(saved)
    assert resumed.lr == options["lr"]
    run_ours(ours, resumed, 3, first=3)
    theirs, their_opt = make_torch(torch, name, options, values)
    run_torch(theirs, their_opt, 6)
    assert_same_params(ours, theirs)


def test_state_dict_is_a_copy_and_counts_steps():
    p = tr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3, dtype=np.float32)
    opt.step()
    opt.step()
    state = opt.state_dict()
    assert state["type"] == "Adam" and state["state"]["0"]["step"] == 2
    assert state["hyperparameters"]["betas"] == [0.9, 0.999]
    state["state"]["0"]["exp_avg"][:] = 99.0
    assert not np.any(opt.state[0]["exp_avg"] == 99.0)


def test_state_dict_survives_io_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    name, options = "Adam", dict(lr=0.01, weight_decay=0.01)
    values = initial_values()
    ours, opt = make_ours(name, options, values)
    run_ours(ours, opt, 4)
    tr.io.save({f"p{k}": p.data for k, p in enumerate(ours)}, tmp_path / "run.npz",
               extra={"optimizer": opt.state_dict(), "epoch": 4})
    checkpoint = tr.io.load(tmp_path / "run.npz")
    restored = [tr.tensor(checkpoint.state[f"p{k}"], requires_grad=True) for k in range(len(ours))]
    resumed = optim.Adam(restored, lr=1.0)
    resumed.load_state_dict(checkpoint.extra["optimizer"])
    run_ours(restored, resumed, 2, first=4)
    theirs, their_opt = make_torch(torch, name, options, values)
    run_torch(theirs, their_opt, 6)
    assert_same_params(restored, theirs)


def test_parameters_without_grad_are_skipped():
    a = tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2, dtype=np.float32)
    opt.step()
    assert np.all(b.data == 1.0) and opt.state[1] == {}
    assert opt.state[0]["step"] == 1 and np.all(a.data < 1.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    grads = gradients(0)
    ours = [tr.tensor(g, requires_grad=True) for g in grads]
    theirs = [torch.tensor(g, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    ours.append(tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True))   # grad None: skipped
    total = optim.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(float(expected), rel=1e-6)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-6)
    assert ours[-1].grad is None


def test_clip_grad_norm_caps_the_joint_norm():
    p = tr.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    p.grad = np.array([3.0, 4.0], dtype=np.float32)
    assert optim.clip_grad_norm_([p], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)
    assert optim.clip_grad_norm_([p], 10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)      # under the cap: unchanged
    assert optim.clip_grad_norm_([tr.tensor([1.0], requires_grad=True)], 1.0) == 0.0   # no grads


def test_clipping_reaches_a_scalar_parameter_as_in_torch():
    """A 0-d parameter's gradient, made by backward through 0-d arithmetic (which NumPy does in
    scalars), is clipped in place like any other: clip_grad_norm_ once left it unclipped without a
    word, and clip_grad_value_ failed on it."""
    torch = pytest.importorskip("torch")
    def loss(w, v):
        return (v * 100.0).sum() * w + w * 50.0
    ours = [tr.tensor(np.array(3.0), requires_grad=True), tr.tensor(np.ones(2), requires_grad=True)]
    theirs = [torch.tensor(3.0, dtype=torch.float64, requires_grad=True),
              torch.ones(2, dtype=torch.float64, requires_grad=True)]
    loss(*ours).backward()
    loss(*theirs).backward()
    assert isinstance(ours[0].grad, np.ndarray) and ours[0].grad.shape == ()
    total = optim.clip_grad_norm_(ours, 1.0)
    assert total == pytest.approx(float(torch.nn.utils.clip_grad_norm_(theirs, 1.0)), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)
    ours[0].grad, theirs[0].grad = np.array(7.0), torch.tensor(7.0, dtype=torch.float64)
    optim.clip_grad_value_(ours[:1], 0.5)
    torch.nn.utils.clip_grad_value_(theirs[:1], 0.5)
    assert ours[0].grad == theirs[0].grad.item() == 0.5


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    grads = gradients(1)
    ours = [tr.tensor(g, requires_grad=True) for g in grads]
    theirs = [torch.tensor(g, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    optim.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())


def test_optimizer_trains_a_model():
    """A whole loop with a real backward: SGD with momentum fits a line."""
    tr.manual_seed(0)
    layer = tr.nn.Linear(1, 1)
    opt = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    x = tr.tensor(np.linspace(-1, 1, 16, dtype=np.float32)[:, None])
    for _ in range(200):
        opt.zero_grad()
        loss = tr.nn.mse_loss(layer(x), 3 * x - 1)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-6
    np.testing.assert_allclose([layer.weight.item(), layer.bias.item()], [3, -1], atol=1e-3)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "lr must be >= 0"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.5)), "betas"),
    (lambda p: optim.RMSprop(p, alpha=2.0), "alpha"),
    (lambda p: optim.Adagrad(p, weight_decay=-1), "weight_decay"),
    (lambda p: optim.Adam(p + p), "more than once"),
    (lambda p: optim.Adam([tr.tensor([1.0])]), "does not require grad"),
    (lambda p: optim.clip_grad_norm_(p, -1.0), "max_norm"),
])
def test_bad_arguments_raise_clear_errors(make, message):
    params = [tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)]
    with pytest.raises(ValueError, match=message):
        make(params)


def test_passing_a_model_instead_of_parameters_is_explained():
    with pytest.raises(TypeError, match="model.parameters()"):
        optim.Adam([tr.nn.Linear(2, 2)])


def test_load_state_dict_rejects_other_optimizers_and_shapes():
    p = tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([p])
    p.grad = np.ones(2, dtype=np.float32)
    opt.step()
    with pytest.raises(ValueError, match="'Adam' optimizer, not 'SGD'"):
        optim.SGD([p], lr=0.1).load_state_dict(opt.state_dict())
    other = optim.Adam([tr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(opt.state_dict())
