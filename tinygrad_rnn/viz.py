"""Seeing what BPTT does: the unrolled graph, gradients per step, Jacobians, attention.

Four questions an instructor wants to answer on screen, one function each,
every one returning plain data (a string or a NumPy array):

    to_dot(loss)                          the graph as Graphviz DOT text, one box per time step
    grad_norms_per_step(loss, hs)         ||dL/dh_t|| for every t
    sequential_jacobian(model, x)         ||dh_T/dx_t|| for every t (or every (s, t) pair)
    attention_heatmap(weights, ...)       a (T_out, T_in) attention matrix as a picture

and two plot functions that save PNG files when matplotlib is installed
(``pip install tinygrad-rnn[viz]``) and otherwise print one line and return
None, so code that calls them runs either way:

    plot_per_step({"RNN": norms, "LSTM": norms2}, "figures/jacobian.png")
    plot_matrix(matrix, "figures/attention.png")

Every figure is saved and the path printed; inside Jupyter it is also shown
in the notebook, below the cell that drew it (`show_figure`).

Time steps come from the graph itself: layers built with ``fused=False`` (and
any code inside ``with tr.time_step(t):``) tag every node they create with
its step ``t`` in ``ctx.step``.
"""
import os
import shutil
import subprocess
import sys
from collections import defaultdict

import numpy as np

from .autograd import time_step, topological_order
from .nn import RecurrentCell, RecurrentLayer
from .tensor import Tensor, zeros

# --------------------------------------------------------------------------
# The graph as DOT text
# --------------------------------------------------------------------------


def ops_by_step(root):
    """{time step: [op names]} for the nodes of the graph (step None: not inside a step).

    For an RNN unrolled over T steps every step holds the same ops: the
    same computation, with the same weights, repeated T times.
    """
    steps = defaultdict(list)
    for tensor in topological_order(root, include_constants=True):
        if tensor._ctx is not None:
            steps[tensor._ctx.step].append(tensor._ctx.fn.__name__)
    return dict(steps)


def to_dot(root, names=None):
    """Graphviz DOT text of the graph that computed `root`.

    root:   a Tensor (usually the loss)
    names:  optional {name: Tensor} used to label leaves, e.g.
            dict(model.named_parameters()) | {"x": x}

    Op nodes are ellipses labelled "op\\nshape" and grouped in one cluster per
    time step; leaves (weights, inputs, constants) are boxes outside the
    clusters, so a shared weight shows edges into every step. No graphviz
    installation is needed to make the text; `render_dot` draws it when the
    `dot` program exists.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(root).__name__}")
    labels = {id(t): name for name, t in (names or {}).items()}
    nodes = topological_order(root, include_constants=True)
    clusters, outside, edges = defaultdict(list), [], []
    for tensor in nodes:
        node = f"n{id(tensor)}"
        shape = "x".join(str(n) for n in tensor.shape) or "scalar"
        if tensor._ctx is None:
            name = labels.get(id(tensor), "param" if tensor.requires_grad else "data")
            style = ', style=filled, fillcolor="#ffe9a8"' if tensor.requires_grad else ""
            outside.append(f'  {node} [shape=box, label="{name}\\n{shape}"{style}];')
            continue
        line = f'  {node} [label="{tensor._ctx.fn.__name__}\\n{shape}"];'
        if tensor is root:
            line = line[:-2] + ', style=filled, fillcolor="#c6e5ff"];'
        step = tensor._ctx.step
        (outside if step is None else clusters[step]).append(line)
        edges.extend(f"  n{id(parent)} -> {node};" for parent in tensor._ctx.parents)
    lines = ["digraph unrolled {", "  rankdir=LR;", "  node [fontsize=10];"]
    for step in sorted(clusters, key=str):
        lines += [f"  subgraph cluster_t{step} {{", f'    label="t = {step}"; style=rounded; color=gray;']
        lines += ["  " + line for line in clusters[step]] + ["  }"]
    return "\n".join(lines + outside + edges + ["}"])


def render_dot(dot_text, path):
    """Write `dot_text` to `path` (.dot); also draw `path` with suffix .svg when the
    Graphviz `dot` program is installed. Returns the SVG path, or None without Graphviz."""
    _make_parent(path)
    with open(path, "w") as f:
        f.write(dot_text)
    if shutil.which("dot") is None:
        return None
    svg = os.path.splitext(path)[0] + ".svg"
    subprocess.run(["dot", "-Tsvg", path, "-o", svg], check=True)
    return svg


# --------------------------------------------------------------------------
# Gradients per time step
# --------------------------------------------------------------------------


def unroll(model, x, state=None):
    """Run a cell, or a one-layer one-direction layer, step by step in Python.

    x (T, B, I) -> (hidden_states, final_state): hidden_states is a list of T
    Tensors h_t (B, H), each its own node in the graph, so `grad_norms_per_step`
    can ask for dL/dh_t. `state` (and final_state) is h (B, H), or (h, c) for an LSTM.
    """
    if not isinstance(x, Tensor) or x.ndim != 3:
        raise ValueError(f"unroll: expects x as a Tensor of shape (T, B, I), got "
                         f"{x.shape if isinstance(x, Tensor) else type(x).__name__}")
    step = _step_function(model)
    if isinstance(state, Tensor):
        state = (state,)
    if state is None and isinstance(model, RecurrentLayer):
        count = 2 if model.has_cell_state else 1
        state = tuple(zeros(x.shape[1], model.hidden_size, dtype=x.dtype) for _ in range(count))
    hidden_states = []
    for t in range(x.shape[0]):
        with time_step(t):
            state = step(x[t], state)
        hidden_states.append(state[0])
    return hidden_states, state if len(state) > 1 else state[0]


def _step_function(model):
    """step(x_t, state tuple or None) -> new state tuple, for a cell or a one-layer layer."""
    if isinstance(model, RecurrentLayer):
        if model.num_layers != 1 or model.bidirectional:
            raise ValueError(f"unroll: expects a one-layer, one-direction {type(model).__name__}, got "
                             f"num_layers={model.num_layers}, bidirectional={model.bidirectional}; "
                             f"unroll the layers one at a time instead")
        weights = model.layer_weights(0)
        return lambda x_t, state: model.step(x_t, state, weights)
    if isinstance(model, RecurrentCell):
        def step(x_t, state):
            out = model(x_t, None if state is None else state if len(state) == 2 else state[0])
            return out if isinstance(out, tuple) else (out,)
        return step
    raise TypeError(f"unroll: expects an nn cell (RNNCell, LSTMCell, ...) or a one-layer nn.RNN/LSTM/GRU, "
                    f"got {type(model).__name__}")


def grad_norms_per_step(loss, hidden_states):
    """||dL/dh_t|| (Frobenius norm over batch and units) for every hidden state h_t.

    hidden_states: the list of h_t Tensors the loss was computed from (for
    example from `unroll`, or your own loop). This calls ``loss.backward()``,
    so parameter gradients accumulate as in a training step. dL/dh_t is the
    *total* gradient: from the loss at step t and from every later step
    through h_{t+1}, h_{t+2}, ... — the quantity that vanishes or explodes.
    """
    for h in hidden_states:
        h.retain_grad()
    loss.backward()
    return np.array([0.0 if h.grad is None else float(np.linalg.norm(h.grad)) for h in hidden_states])


def sequential_jacobian(model, x, full=False):
    """How much each input step x_t moves the hidden state: ||dh_T/dx_t|| for t = 0..T-1.

    model: callable x (T, B, I) -> output (T, B, H), or a tuple whose first item
           is that output (every nn.RNN/LSTM/GRU layer qualifies)
    x:     one sequence, (T, I) or (T, 1, I)
    full:  False -> array (T,) with entry t = ||dh_{T-1}/dx_t||_F
           True  -> array (T, T) with entry [s, t] = ||dh_s/dx_t||_F
                    (zero above the diagonal for a causal, one-direction model)

    dh_s/dx_t is an (H, I) matrix. Instead of H backward passes, the sequence
    is copied into a batch of H identical rows and row b is seeded with unit
    vector e_b: one backward pass then gives row b of the Jacobian in
    x.grad[:, b]. (This relies on the batch rows being independent, which holds
    for recurrent layers in eval mode.) The model's parameters get no gradient.
    """
    data = np.asarray(x.data if isinstance(x, Tensor) else x)
    if data.ndim == 3 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 2:
        raise ValueError(f"sequential_jacobian: expects one sequence of shape (T, I) or (T, 1, I), got "
                         f"{data.shape}; pick one sequence of the batch, e.g. x[:, :1]")
    params = model.parameters() if hasattr(model, "parameters") else []
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        return _jacobian_norms(model, data, full)
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _jacobian_norms(model, data, full):
    T = data.shape[0]
    H = _first(model(Tensor(data[:, None]))).shape[-1]
    xs = Tensor(np.repeat(data[:, None], H, axis=1), requires_grad=True)   # (T, H, I): H copies
    out = _first(model(xs))                                                  # (T, H, H)
    if out.shape[:2] != (T, H):
        raise ValueError(f"sequential_jacobian: model output has shape {out.shape}, expected (T, B, H) "
                         f"with T={T} time-major steps (use batch_first=False)")
    targets = range(T) if full else [T - 1]
    rows = []
    for s in targets:
        seed = np.zeros(out.shape, dtype=out.dtype)
        seed[s, np.arange(H), np.arange(H)] = 1.0                            # row b asks for d h_s[b]
        xs.grad = None
        out.backward(seed, retain_graph=s != targets[-1])
        rows.append(np.linalg.norm(xs.grad, axis=(1, 2)))                    # ||dh_s/dx_t||_F per t
    return np.array(rows) if full else rows[0]


# --------------------------------------------------------------------------
# Attention and plots
# --------------------------------------------------------------------------


def attention_heatmap(weights, source=None, target=None, path=None, title="attention weights"):
    """An attention matrix (T_out, T_in) as an array, saved as a heatmap PNG at `path`.

    weights: Tensor or array (T_out, T_in): row s holds the weights the decoder
             put on each input position at output step s (rows sum to 1)
    source, target: optional labels for the input (columns) and output (rows) tokens
    Returns the matrix (a NumPy array) whether or not matplotlib is installed.
    """
    matrix = np.asarray(weights.data if isinstance(weights, Tensor) else weights, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"attention_heatmap: expects weights of shape (T_out, T_in), got {matrix.shape}; "
                         f"pick one sequence of the batch first")
    for labels, size, what in ((source, matrix.shape[1], "source"), (target, matrix.shape[0], "target")):
        if labels is not None and len(labels) != size:
            raise ValueError(f"attention_heatmap: {len(labels)} {what} labels for {size} positions")
    if path is not None:
        plot_matrix(matrix, path, title=title, xlabel="input position", ylabel="output step",
                    xticklabels=source, yticklabels=target, colorbar_label="attention weight")
    return matrix


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(path):
    """A new matplotlib Figure (no pyplot, so no GUI backend), or None without matplotlib."""
    if not has_matplotlib():
        print(f"(matplotlib is not installed: skipping {path}; pip install tinygrad-rnn[viz])")
        return None
    from matplotlib.figure import Figure
    return Figure(figsize=(6, 4), layout="constrained")


def _save(fig, path):
    _make_parent(path)
    fig.savefig(path, dpi=110)
    return show_figure(path)


def in_notebook():
    """True inside a Jupyter kernel (where a figure can be shown below its cell)."""
    IPython = sys.modules.get("IPython")
    shell = IPython.get_ipython() if IPython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def show_figure(path):
    """Print where the PNG at `path` was saved; inside Jupyter also display it. Returns `path`."""
    print(f"saved {path}")
    if in_notebook():
        from IPython.display import Image, display
        display(Image(filename=str(path)))
    return path


def _make_parent(path):
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)


def plot_per_step(curves, path, title="", ylabel="value", xlabel="time step t", log=True):
    """Line plot of per-step values, one line per entry of {label: values (T,)}.

    Saves a PNG at `path` (folders are created) and returns `path`, or None
    when matplotlib is not installed. log=True uses a log y-axis, on which
    exponential decay is a straight line. The title defaults to the file's name.
    """
    fig = _figure(path)
    if fig is None:
        return None
    draw_per_step(fig, curves, title or _default_title(path), ylabel, xlabel, log)
    return _save(fig, path)


def draw_per_step(fig, curves, title, ylabel, xlabel, log):
    """Draw `plot_per_step`'s lines on the matplotlib Figure `fig`; returns its axes."""
    ax = fig.subplots()
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(len(values)), values, marker=".", label=label)
    if log:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return ax


def _default_title(path):
    return os.path.splitext(os.path.basename(str(path)))[0].replace("_", " ")


def plot_matrix(matrix, path, title="", xlabel="column", ylabel="row", xticklabels=None, yticklabels=None,
                log=False, colorbar_label="value"):
    """Heatmap of a 2-D array (attention weights, a Jacobian over (s, t)) saved as PNG.

    The image fills the axes whatever the matrix's shape (a (H, T) matrix of
    hidden states over many steps is not squeezed into a strip). Returns
    `path`, or None when matplotlib is not installed.
    """
    fig = _figure(path)
    if fig is None:
        return None
    draw_matrix(fig, matrix, title or _default_title(path), xlabel, ylabel, xticklabels, yticklabels, log,
                colorbar_label)
    return _save(fig, path)


def draw_matrix(fig, matrix, title, xlabel, ylabel, xticklabels=None, yticklabels=None, log=False,
                colorbar_label="value"):
    """Draw `plot_matrix`'s heatmap and labelled colorbar on `fig`; returns (axes, colorbar)."""
    ax = fig.subplots()
    matrix = np.asarray(matrix, dtype=float)
    if log:
        from matplotlib.colors import LogNorm
        positive = matrix[matrix > 0]
        norm = LogNorm(vmin=positive.min() if positive.size else 1e-12, vmax=max(matrix.max(), 1e-12))
        image = ax.imshow(np.where(matrix > 0, matrix, np.nan), cmap="viridis", norm=norm, aspect="auto")
    else:
        image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    colorbar = fig.colorbar(image, ax=ax, label=colorbar_label + (" (log scale)" if log else ""))
    if xticklabels is not None:
        ax.set_xticks(range(len(xticklabels)), labels=list(xticklabels), rotation=90)
    if yticklabels is not None:
        ax.set_yticks(range(len(yticklabels)), labels=list(yticklabels))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax, colorbar


__all__ = ["attention_heatmap", "draw_matrix", "draw_per_step", "grad_norms_per_step", "has_matplotlib",
           "in_notebook", "ops_by_step",
           "plot_matrix", "plot_per_step", "render_dot", "sequential_jacobian", "show_figure", "to_dot", "unroll"]
