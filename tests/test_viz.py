"""viz: the DOT graph, gradients per step, the sequential Jacobian, plots."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, viz


def small_rnn(cls=nn.RNN, **options):
    tr.manual_seed(0)
    return cls(3, 5, fused=False, **options).double()


def test_to_dot_clusters_every_time_step_and_shares_the_weights():
    rnn = small_rnn()
    x = tr.randn(4, 2, 3, dtype=np.float64)
    out, _ = rnn(x)
    loss = out.sum()
    dot = viz.to_dot(loss, names=dict(rnn.named_parameters()) | {"x": x})
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for t in range(4):
        assert f"subgraph cluster_t{t} " in dot and f'label="t = {t}"' in dot
    assert 'label="weight_hh_l0\\n5x5"' in dot and 'label="Tanh\\n2x5"' in dot
    W_hh = f"n{id(rnn.weight_hh_l0)}"
    assert sum(line.startswith(f"  {W_hh} ->") for line in dot.splitlines()) == 4   # one edge per step
    steps = viz.ops_by_step(loss)
    assert len({tuple(sorted(steps[t])) for t in range(4)}) == 1                     # same ops every step
    assert "Tanh" in steps[0] and "Sum" in steps[None]


def test_to_dot_rejects_non_tensors_and_writes_files(tmp_path):
    with pytest.raises(TypeError, match="to_dot"):
        viz.to_dot(np.zeros(3))
    path = tmp_path / "graphs" / "g.dot"
    svg = viz.render_dot(viz.to_dot(tr.ones(2, requires_grad=True).tanh().sum()), str(path))
    assert path.read_text().startswith("digraph")
    assert svg is None or svg.endswith(".svg")


def test_grad_norms_per_step_match_a_hand_computation():
    """For L = sum_t v . h_t with h_t = tanh(W h_{t-1} + x_t): dL/dh_t = v + W^T (dL/dh_{t+1} * (1 - h_{t+1}^2))."""
    rng = np.random.default_rng(1)
    H, T = 4, 6
    W = rng.standard_normal((H, H)) * 0.8
    xs = rng.standard_normal((T, H))
    v = rng.standard_normal(H)
    Wt = tr.tensor(W, requires_grad=True)
    h, hs = tr.zeros(H, dtype=np.float64), []
    for t in range(T):
        h = (Wt @ h + tr.tensor(xs[t])).tanh()
        hs.append(h)
    loss = sum(((h * tr.tensor(v)).sum() for h in hs[1:]), (hs[0] * tr.tensor(v)).sum())
    norms = viz.grad_norms_per_step(loss, hs)
    expected, dh = [], v.copy()
    h_values = [h.data for h in hs]
    for t in reversed(range(T)):
        if t < T - 1:
            dh = v + W.T @ (dh * (1 - h_values[t + 1] ** 2))
        expected.append(np.linalg.norm(dh))
    np.testing.assert_allclose(norms, expected[::-1], rtol=1e-12)


@pytest.mark.parametrize("model", [nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4),
                                   nn.LeakyRNNCell(3, 4), nn.LSTM(3, 4, fused=False)])
def test_unroll_matches_the_model(model):
    x = tr.randn(5, 2, 3)
    hs, final = viz.unroll(model, x)
    assert len(hs) == 5 and hs[0].shape == (2, 4)
    if isinstance(model, nn.LSTM):
        out, (h_n, c_n) = model(x)
        np.testing.assert_allclose(hs[-1].data, out.data[-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(final[1].data, c_n.data[0], rtol=1e-5, atol=1e-6)
    norms = viz.grad_norms_per_step(tr.stack(hs).sum(), hs)
    assert norms.shape == (5,) and np.all(norms > 0)


def test_unroll_rejects_stacked_layers_and_bad_input():
    with pytest.raises(ValueError, match="one-layer"):
        viz.unroll(nn.RNN(3, 4, num_layers=2, fused=False), tr.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"\(T, B, I\)"):
        viz.unroll(nn.RNNCell(3, 4), tr.randn(5, 3))
    with pytest.raises(TypeError, match="unroll"):
        viz.unroll(nn.Linear(3, 4), tr.randn(5, 2, 3))


def test_sequential_jacobian_matches_finite_differences():
    rnn = small_rnn(nn.GRU)
    x = np.random.default_rng(2).standard_normal((6, 3))
    norms = viz.sequential_jacobian(rnn, x)
    full = viz.sequential_jacobian(rnn, x[:, None], full=True)
    eps, T = 1e-6, 6
    numeric = np.zeros((T, T))
    for t in range(T):
        columns = []
        for i in range(3):
            up, down = x.copy(), x.copy()
            up[t, i] += eps
            down[t, i] -= eps
            with tr.no_grad():
                diff = rnn(tr.tensor(up[:, None]))[0].data - rnn(tr.tensor(down[:, None]))[0].data
            columns.append(diff[:, 0] / (2 * eps))              # (T, H): d h_s / d x_t[i] for every s
        numeric[:, t] = np.linalg.norm(np.stack(columns, axis=-1), axis=(1, 2))
    np.testing.assert_allclose(full, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(norms, numeric[-1], rtol=1e-6, atol=1e-9)
    assert np.all(np.triu(full, k=1) == 0)                       # causal: h_s ignores x_t for t > s
    assert all(p.grad is None for p in rnn.parameters())          # parameters untouched


def test_sequential_jacobian_of_a_bidirectional_layer_looks_both_ways():
    rnn = small_rnn(nn.RNN, bidirectional=True)
    full = viz.sequential_jacobian(rnn, np.random.default_rng(3).standard_normal((5, 3)), full=True)
    assert np.all(full[np.triu_indices(5, k=1)] > 0)                  # h_s depends on later inputs too
    with pytest.raises(ValueError, match="one sequence"):
        viz.sequential_jacobian(rnn, np.zeros((5, 2, 3)))


def test_attention_heatmap_returns_the_matrix(tmp_path):
    weights = tr.tensor(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]))
    path = tmp_path / "figs" / "attention.png"
    matrix = viz.attention_heatmap(weights, source=["a", "b", "c"], target=["x", "y"], path=str(path))
    np.testing.assert_array_equal(matrix, weights.data)
    assert path.exists() == viz.has_matplotlib()
    with pytest.raises(ValueError, match="T_out, T_in"):
        viz.attention_heatmap(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="labels"):
        viz.attention_heatmap(weights, source=["a"])


def test_plots_save_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    line = viz.plot_per_step({"RNN": [1.0, 0.1, 0.01], "LSTM": [1.0, 0.5, 0.25]}, str(tmp_path / "a.png"))
    image = viz.plot_matrix(np.tril(np.ones((4, 4))), str(tmp_path / "b" / "m.png"), log=True)
    for path in (line, image):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_axis_and_colorbar_is_labelled():
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    ax = viz.draw_per_step(Figure(), {"RNN": [1.0, 0.1]}, "decay", "||dL/dh_t||", "time step t", True)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("decay", "time step t", "||dL/dh_t||")
    fig = Figure()
    ax, colorbar = viz.draw_matrix(fig, np.ones((3, 40)), "hidden states", "day", "hidden unit",
                                   colorbar_label="activation")
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("hidden states", "day", "hidden unit")
    assert colorbar.ax.get_ylabel() == "activation"
    assert ax.get_aspect() == "auto"                      # a (3, 40) matrix fills the axes, not a strip
    assert matplotlib.__version__


def test_plots_get_a_title_and_print_where_they_saved(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = viz.plot_matrix(np.eye(3), str(tmp_path / "jacobian_one_way.png"))
    assert f"saved {path}" in capsys.readouterr().out
    heatmap_path = str(tmp_path / "att.png")
    viz.attention_heatmap(np.eye(2), path=heatmap_path)
    assert capsys.readouterr().out.strip() == f"saved {heatmap_path}"
    assert viz._default_title(path) == "jacobian one way"
    assert not viz.in_notebook()                          # pytest is not a Jupyter kernel
