"""Checkpoints: bit-for-bit round trips, clear refusals, atomic writes; other frameworks' layouts."""
import json
import os
import stat

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import io, nn


def lstm(hidden=5, seed=0, **options):
    tr.manual_seed(seed)
    return nn.LSTM(3, hidden, fused=False, **options)


def outputs(model, x):
    with tr.no_grad():
        return model(tr.tensor(x))[0].data


# --------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_round_trip_is_bit_for_bit(tmp_path, dtype):
    model = lstm(num_layers=2, bidirectional=True).to(dtype)
    path = tmp_path / "model.npz"
    io.save(model, path, extra={"epoch": 7, "note": "after warm-up", "history": [0.5, 0.25]})
    checkpoint = io.load(path)
    assert checkpoint.class_name == "LSTM" and checkpoint.config == model.get_config()
    assert checkpoint.extra == {"epoch": 7, "note": "after warm-up", "history": [0.5, 0.25]}
    assert list(checkpoint.state) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert checkpoint.state[name].dtype == value.dtype
        assert checkpoint.state[name].tobytes() == value.tobytes()

    fresh = lstm(num_layers=2, bidirectional=True, seed=1).to(dtype)
    io.load(path, into=fresh)
    for name, value in model.state_dict().items():
        assert fresh.state_dict()[name].tobytes() == value.tobytes()
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(dtype)
    np.testing.assert_array_equal(outputs(fresh, x), outputs(model, x))


def test_plain_state_dict_and_arrays_inside_extra(tmp_path):
    state = {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "steps": np.array([1, 2], dtype=np.int64)}
    extra = {"optimizer": {"state": {"0": {"step": 3, "exp_avg": np.full((2, 3), np.nan, dtype=np.float32)}}}}
    io.save(state, tmp_path / "state.npz", extra=extra)
    checkpoint = io.load(tmp_path / "state.npz")
    assert checkpoint.class_name is None and checkpoint.config is None
    for name, value in state.items():
        assert checkpoint.state[name].tobytes() == value.tobytes() and checkpoint.state[name].dtype == value.dtype
    saved = checkpoint.extra["optimizer"]["state"]["0"]
    assert saved["step"] == 3 and saved["exp_avg"].tobytes() == extra["optimizer"]["state"]["0"]["exp_avg"].tobytes()


def test_the_file_is_a_plain_npz_with_a_json_header(tmp_path):
    io.save(lstm(), tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        header = json.loads(archive["__header__"].tobytes())
        assert header["format"] == "tinygrad_rnn" and header["version"] == io.FORMAT_VERSION
        assert header["arrays"]["state/weight_ih_l0"] == {"shape": [20, 3], "dtype": "<f4"}
        assert "state/bias_hh_l0" in archive.files


@pytest.mark.parametrize("keep", [0.5, 0.95, 100])
def test_truncated_file_gives_a_clear_error(tmp_path, keep):
    path = tmp_path / "model.npz"
    io.save(lstm(), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(ValueError, match=r"io.load: cannot read .*model\.npz.*truncated"):
        io.load(path)


@pytest.mark.parametrize("write, message", [
    (lambda p: np.savez(p, weights=np.ones(3)), "not a tinygrad_rnn checkpoint"),
    (lambda p: np.save(p, np.ones(3)), "single array"),
    (lambda p: open(p, "w").write("hello, not numpy"), "cannot read"),
    (lambda p: np.savez(p, __header__=np.frombuffer(b'{"format": "other"}', dtype=np.uint8)),
     "does not say format"),
    (lambda p: np.savez(p, __header__=np.frombuffer(b'{"format": "tinygrad_rnn", "version": 99, "arrays": {}}',
                                                    dtype=np.uint8)), "upgrade"),
])
def test_foreign_files_are_refused(tmp_path, write, message):
    path = str(tmp_path / "foreign.npz")
    write(path)
    if not os.path.exists(path):            # np.save appended .npy
        os.replace(path + ".npy", path)
    with pytest.raises(ValueError, match=message) as caught:
        io.load(path)
    assert "foreign.npz" in str(caught.value)


class RunsCodeWhenUnpickled:
    """A pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_pickled_objects_are_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    header = {"format": "tinygrad_rnn", "version": 1, "class": None, "config": None,
              "arrays": {"state/W": {"shape": [1], "dtype": "|O"}}, "extra": None}
    path = tmp_path / "evil.npz"
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **{"state/W": np.array([RunsCodeWhenUnpickled(str(marker))], dtype=object)})
    with pytest.raises(ValueError, match="evil.npz"):
        io.load(path)
    assert not marker.exists()


def test_header_that_does_not_match_the_arrays_is_refused(tmp_path):
    header = {"format": "tinygrad_rnn", "version": 1, "class": None, "config": None,
              "arrays": {"state/W": {"shape": [2, 2], "dtype": "<f4"}}, "extra": None}
    path = tmp_path / "bad.npz"
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **{"state/W": np.ones(3, dtype=np.float32)})
    with pytest.raises(ValueError, match="bad.npz.*inconsistent.*'state/W'"):
        io.load(path)


def test_loading_into_a_mismatched_model_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    io.save(lstm(hidden=5), path)
    with pytest.raises(ValueError, match="holds a LSTM, cannot load it into a GRU"):
        io.load(path, into=nn.GRU(3, 5, fused=False))
    with pytest.raises(ValueError, match="hidden_size: saved 5, model 6"):
        io.load(path, into=lstm(hidden=6))
    io.load(path, into=nn.LSTM(3, 5, fused=True))          # fused or not: same weights, same numbers
    bare = tmp_path / "bare.npz"
    io.save({"weight": np.ones(2, dtype=np.float32)}, bare)
    with pytest.raises(ValueError, match="bare.npz.*does not fit this LSTM"):
        io.load(bare, into=lstm())


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = lstm(seed=0)
    io.save(old, path)
    before = path.read_bytes()

    def crash_midway(file, arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(io, "_write_arrays", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save(lstm(seed=1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]           # the temporary file is gone too
    io.load(path, into=lstm(seed=2))


def test_save_rejects_what_json_and_npz_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="not JSON-able"):
        io.save(lstm(), tmp_path / "m.npz", extra={"when": object()})
    with pytest.raises(TypeError, match="expected a Module or a dict"):
        io.save([np.ones(2)], tmp_path / "m.npz")
    with pytest.raises(TypeError, match="only numeric arrays"):
        io.save({"names": np.array(["a", "b"])}, tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------
# convert_weights
# --------------------------------------------------------------------------

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def run_numpy(step, x, H, with_cell):
    """Unroll a NumPy step function from zero state; outputs (T, B, H)."""
    h = np.zeros((x.shape[1], H))
    c = np.zeros_like(h)
    out = []
    for x_t in x:
        h, c = step(x_t, h, c) if with_cell else (step(x_t, h), None)
        out.append(h)
    return np.stack(out)


def blocks(array, order):
    parts = np.split(array, len(order), axis=0)
    return np.concatenate([parts[k] for k in order], axis=0)


def reference_model(kind, seed=0):
    tr.manual_seed(seed)
    return {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](3, 4, fused=False).double()


def converted_model(kind, state):
    model = reference_model(kind, seed=99)
    model.load_state_dict(state)
    return model


X = np.random.default_rng(1).standard_normal((5, 2, 3))


def test_pytorch_weights_load_directly_and_match_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.GRU(3, 4, num_layers=2)
    state = io.convert_weights(theirs.state_dict(), "pytorch")
    assert all(isinstance(v, np.ndarray) for v in state.values())
    ours = nn.GRU(3, 4, num_layers=2, fused=False)
    ours.load_state_dict(state)
    x = X.astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(outputs(ours, x), expected, rtol=1e-5, atol=1e-6)


def test_cs231n_lstm_layout():
    """CS231n: a = x Wx + h Wh + b, gates i, f, o, g in that order of columns."""
    model = reference_model("lstm")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in model.layer_weights(0))
    to_cs231n = [0, 1, 3, 2]                       # ours i,f,g,o -> theirs i,f,o,g (its own inverse)
    source = {"Wx": blocks(W_ih, to_cs231n).T, "Wh": blocks(W_hh, to_cs231n).T, "b": blocks(b_ih + b_hh, to_cs231n)}

    def cs231n_step(x, h, c):
        a = x @ source["Wx"] + h @ source["Wh"] + source["b"]
        i, f, o, g = np.split(a, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c

    state = io.convert_weights(source, "cs231n")
    np.testing.assert_array_equal(state["bias_hh_l0"], 0.0)
    converted = converted_model("lstm", state)
    np.testing.assert_allclose(outputs(converted, X), outputs(model, X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outputs(converted, X), run_numpy(cs231n_step, X, 4, True), rtol=1e-12)


def test_cs231n_vanilla_rnn_layout_and_cell_names():
    model = reference_model("rnn")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in model.layer_weights(0))
    source = {"Wx": W_ih.T, "Wh": W_hh.T, "b": b_ih + b_hh}
    converted = converted_model("rnn", io.convert_weights(source, "cs231n"))
    np.testing.assert_allclose(outputs(converted, X), outputs(model, X), rtol=1e-12, atol=1e-14)
    assert list(io.convert_weights(source, "cs231n", layer=None)) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def test_keras_lstm_layout():
    """Keras: z = x kernel + h recurrent_kernel + bias, gates i, f, c, o (= ours i, f, g, o)."""
    model = reference_model("lstm")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in model.layer_weights(0))
    kernel, recurrent, bias = W_ih.T, W_hh.T, b_ih + b_hh

    def keras_step(x, h, c):
        i, f, c_bar, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(c_bar)
        return sigmoid(o) * np.tanh(c), c

    converted = converted_model("lstm", io.convert_weights([kernel, recurrent, bias], "keras"))
    np.testing.assert_allclose(outputs(converted, X), outputs(model, X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outputs(converted, X), run_numpy(keras_step, X, 4, True), rtol=1e-12)


def test_keras_gru_reset_after_layout_and_equations():
    """Keras GRU, reset_after=True: gates z, r, h; bias (2, 3H) = [input bias; recurrent bias];
    hh = tanh(x W_h + b_xh + r * (h U_h + b_hh)),  h' = z * h + (1 - z) * hh."""
    model = reference_model("gru")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in model.layer_weights(0))
    to_keras = [1, 0, 2]                            # ours r,z,n -> theirs z,r,h (its own inverse)
    kernel, recurrent = blocks(W_ih, to_keras).T, blocks(W_hh, to_keras).T
    bias = np.stack([blocks(b_ih, to_keras), blocks(b_hh, to_keras)])

    def keras_step(x, h):
        x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=1)
        h_z, h_r, h_h = np.split(h @ recurrent + bias[1], 3, axis=1)
        z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
        hh = np.tanh(x_h + r * h_h)
        return z * h + (1 - z) * hh

    state = io.convert_weights({"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias}, "keras")
    for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), (W_ih, W_hh, b_ih, b_hh)):
        np.testing.assert_array_equal(state[name], value)
    converted = converted_model("gru", state)
    np.testing.assert_allclose(outputs(converted, X), run_numpy(keras_step, X, 4, False), rtol=1e-12)


def test_keras_simple_rnn_layout():
    model = reference_model("rnn")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in model.layer_weights(0))
    converted = converted_model("rnn", io.convert_weights([W_ih.T, W_hh.T, b_ih + b_hh], "keras"))
    np.testing.assert_allclose(outputs(converted, X), outputs(model, X), rtol=1e-12, atol=1e-14)


def test_convert_weights_errors():
    H = 4
    with pytest.raises(ValueError, match="reset_after=False"):
        io.convert_weights([np.ones((3, 3 * H)), np.ones((H, 3 * H)), np.ones(5)], "keras")
    with pytest.raises(ValueError, match="source must be one of"):
        io.convert_weights({}, "caffe")
    with pytest.raises(KeyError, match="needs an entry 'Wh'"):
        io.convert_weights({"Wx": np.ones((3, H))}, "cs231n")
    with pytest.raises(ValueError, match=r"not \(H, G\*H\)"):
        io.convert_weights({"Wx": np.ones((3, 2 * H)), "Wh": np.ones((H, 2 * H)), "b": np.ones(2 * H)}, "cs231n")


def test_checkpoint_gets_the_usual_file_mode(tmp_path):
    """The temp file mkstemp creates is private (0600); the saved checkpoint must not be."""
    path = tmp_path / "mode.npz"
    old_mask = os.umask(0o022)
    try:
        io.save({"w": np.zeros(2)}, path)
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_saves_a_dict_of_library_tensors(tmp_path):
    path = tmp_path / "tensors.npz"
    io.save({"w": tr.tensor([1.0, 2.0])}, path)
    np.testing.assert_array_equal(io.load(path).state["w"], np.array([1.0, 2.0], dtype=np.float32))


def test_extra_key_that_marks_arrays_is_refused(tmp_path):
    path = tmp_path / "extra.npz"
    with pytest.raises(TypeError, match="'__array__'"):
        io.save({"w": np.ones(2)}, path, extra={"__array__": "state/w"})
    assert not path.exists()
