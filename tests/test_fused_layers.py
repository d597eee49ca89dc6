"""nn.LSTM / GRU / RNN: fused=True (whole-sequence kernels) vs fused=False (unrolled graph)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

LAYERS = [(nn.LSTM, {}), (nn.GRU, {}), (nn.RNN, {"nonlinearity": "tanh"}), (nn.RNN, {"nonlinearity": "relu"})]
OPTIONS = [dict(num_layers=2), dict(bidirectional=True), dict(batch_first=True),
           dict(num_layers=2, bidirectional=True, bias=False), dict(bidirectional=True, merge="sum")]


def forward_backward(layer, x, lengths, with_state):
    """Outputs and every gradient of a fixed random projection of the outputs."""
    for p in [x, *layer.parameters()]:
        p.zero_grad()
    output, state = layer(x, lengths=lengths)
    finals = list(state) if isinstance(state, tuple) else [state]
    outputs = [output] + (finals if with_state else [])
    rng = np.random.default_rng(5)
    loss = sum((o * tr.Tensor(rng.standard_normal(o.shape))).sum() for o in outputs)
    loss.backward()
    return [o.data for o in outputs] + [x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("Layer,extra", LAYERS)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("use_lengths", [False, True])
def test_fused_layer_matches_unrolled(backend, Layer, extra, options, use_lengths):
    tr.manual_seed(0)
    T, B, I, H = 4, 3, 2, 3
    layer = Layer(I, H, **extra, **options)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    shape = (B, T, I) if options.get("batch_first") else (T, B, I)
    x = tr.Tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    lengths = np.array([4, 2, 1]) if use_lengths else None
    results = []
    for fused in (True, False):
        layer.fused = fused
        with tr.backend(backend):
            results.append(forward_backward(layer, x, lengths, with_state=True))
    for k, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"result {k}")
