"""Checkpoints: save and load weights as a plain .npz, and read other frameworks' layouts.

A checkpoint is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

    __header__        JSON text (as uint8 bytes): format name and version, the
                      module's class name and config (its constructor
                      arguments), the name, shape and dtype of every array,
                      and an optional JSON `extra` (epoch, optimizer state...)
    state/<name>      one array per parameter, e.g. state/weight_ih_l0
    extra/<path>      arrays found inside `extra` (e.g. Adam's running averages)

Loading uses ``numpy.load(..., allow_pickle=False)``: a file can only ever
give back numbers, never run code. A truncated, foreign or mismatched file
is refused with a ValueError that names the file and what is wrong.

Writing is atomic: the archive goes to a temporary file in the same folder,
which is then renamed over the target (``os.replace``), so a crash mid-write
leaves the previous checkpoint intact. Saving through a symbolic link writes
the file it points to; temporary files that a killed writer left behind for
the same target are removed.

A checkpoint is untrusted input: every header field is checked (type,
range, nesting depth, and each array's declared size against the bytes the
file really holds, so an edited header cannot ask for a terabyte), and
`load(..., into=model)` checks everything before changing any parameter.

`convert_weights` turns PyTorch, CS231n and Keras weight layouts into ours
(which is PyTorch's: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih,
bias_hh (G*H,), gates LSTM i,f,g,o and GRU r,z,n).
"""
import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .nn.module import Module
from .tensor import Tensor

FORMAT = "tinygrad_rnn"
FORMAT_VERSION = 1
HEADER = "__header__"
ARRAY_REFERENCE = "__array__"   # in the JSON header, {"__array__": name} stands for a stored array
MAX_DEPTH = 32                  # deepest nesting accepted in a header (ours is at most ~6 levels)
EXECUTION_OPTIONS = ("fused",)    # config keys that change how a model runs, not its weights or results


@dataclass
class Checkpoint:
    """What `load` returns: the arrays, and the header that describes them."""

    path: str
    class_name: object          # the saved module's class name, or None for a bare state dict
    config: object              # its get_config() dict, or None
    state: OrderedDict          # parameter name -> array
    extra: object               # the `extra` passed to save, arrays included
    format_version: int


# --------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------

def save(module_or_state, path, extra=None):
    """Write a module's parameters (or a dict name -> array) to `path` as a checkpoint.

    extra: optional JSON-able data to keep alongside (numbers, strings, lists,
    dicts), where dicts may also hold NumPy arrays, e.g.
    ``extra={"epoch": 3, "optimizer": opt.state_dict()}``.
    """
    path = os.fspath(path)
    if isinstance(module_or_state, Module):
        class_name, config = type(module_or_state).__name__, module_or_state.get_config()
        state = module_or_state.state_dict()
    elif isinstance(module_or_state, dict):
        class_name, config, state = None, None, module_or_state
    else:
        raise TypeError(f"io.save: expected a Module or a dict of name -> array, "
                        f"got {type(module_or_state).__name__}")
    arrays = {}
    for name, value in state.items():
        arrays[f"state/{name}"] = _plain_array(f"state entry {name!r}", value)
    extra_json = _split_arrays(extra, "extra", arrays)
    header = {
        "format": FORMAT, "version": FORMAT_VERSION, "class": class_name, "config": config,
        "arrays": {key: {"shape": list(a.shape), "dtype": a.dtype.str} for key, a in arrays.items()},
        "extra": extra_json,
    }
    try:
        header_bytes = json.dumps(header).encode("utf-8")
    except TypeError as err:
        raise TypeError(f"io.save: the config or extra is not JSON-able ({err}); use numbers, strings, "
                        f"lists, dicts and NumPy arrays") from None
    arrays[HEADER] = np.frombuffer(header_bytes, dtype=np.uint8)
    _atomic_write(path, arrays)


def _plain_array(what, value):
    """A NumPy array of numbers from an ndarray, a Tensor, a torch tensor or a number."""
    array = _to_numpy(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"io.save: {what} has dtype {array.dtype}; only numeric arrays can be saved")
    return array


def _split_arrays(tree, prefix, arrays):
    """Replace every ndarray in a JSON-like tree by {"__array__": key}, storing it in `arrays`."""
    if isinstance(tree, np.ndarray):
        arrays[prefix] = _plain_array(prefix, tree)
        return {ARRAY_REFERENCE: prefix}
    if isinstance(tree, dict):
        for key in tree:
            if not isinstance(key, str) or "/" in key or key == ARRAY_REFERENCE:
                raise TypeError(f"io.save: keys of extra must be strings without '/' and other than "
                                f"{ARRAY_REFERENCE!r} (which marks a stored array), got {key!r}")
        return {key: _split_arrays(value, f"{prefix}/{key}", arrays) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split_arrays(value, f"{prefix}/{k}", arrays) for k, value in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _write_arrays(file, arrays):
    """The archive itself: one .npy member per array (no pickling)."""
    np.savez(file, **arrays)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path, arrays):
    path = os.path.realpath(path)       # through a symlink: replace its target, keep the link
    if os.path.isdir(path):
        raise IsADirectoryError(f"io.save: {path!r} is a folder; give a file name such as "
                                f"{os.path.join(path, 'model.npz')!r}")
    folder, prefix = os.path.dirname(path), "." + os.path.basename(path) + "."
    _remove_stale_temporaries(folder, prefix)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=f"{prefix}{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            _write_arrays(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temp_path, path)
    except BaseException:
        os.unlink(temp_path)
        raise


def _remove_stale_temporaries(folder, prefix):
    """Delete `.NAME.PID.*.tmp` files a killed writer of the same target left behind.

    A temporary whose writer (PID) is still running is another save in progress: kept."""
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(".tmp") and not _writer_alive(name[len(prefix):]):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass    # already gone, or not ours to delete: harmless either way


def _writer_alive(rest):
    """Is the process that named a temporary `PID.<random>.tmp` still running?"""
    pid = rest.split(".", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:         # it exists but belongs to another user
        return True
    return True


# --------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------

def load(path, into=None):
    """Read a checkpoint written by `save`; with `into=module`, also copy the weights into it.

    `into` must be of the saved class with the same config (sizes, options;
    `fused` may differ, as both paths give the same numbers), otherwise a
    ValueError says what differs. Returns a `Checkpoint`.
    """
    path = os.fspath(path)
    arrays, header = _read_archive(path)
    state = OrderedDict((key[len("state/"):], arrays[key]) for key in header["arrays"]
                        if key.startswith("state/"))
    try:
        extra = _join_arrays(header.get("extra"), arrays)
    except (KeyError, TypeError) as err:
        raise ValueError(f"io.load: {path!r} is inconsistent: its extra data refers to a missing array "
                         f"{err}") from None
    checkpoint = Checkpoint(path, header.get("class"), header.get("config"), state, extra, header["version"])
    if into is not None:
        load_into(checkpoint, into)
    return checkpoint


def is_checkpoint(path):
    """True if `path` is a .npz archive with a tinygrad_rnn header (a cheap look, no arrays read)."""
    if not os.path.isfile(path):   # a folder or a device such as /dev/zero, which reads without end
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return HEADER + ".npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


class _NotACheckpoint(Exception):
    """Raised inside `_read_archive` when a readable file is not one of ours."""


def _read_archive(path):
    """All arrays of the file and its parsed header, after checking both."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise ValueError(f"io.load: cannot read {path!r}: it is not a regular file (a device or a pipe?)")
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            is_npy = file.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX
        what = ("a single array (.npy), not a .npz archive" if is_npy else
                "not a .npz (zip) archive: truncated, corrupted or another kind of file")
        raise ValueError(f"io.load: cannot read {path!r}: it is {what}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _NotACheckpoint("it holds a single array (.npy), not a .npz archive")
        with archive:
            if HEADER not in archive.files:
                raise _NotACheckpoint(f"it is a .npz archive but not a {FORMAT} checkpoint (no {HEADER}); "
                                      f"it holds {sorted(archive.files)[:8]}; read plain arrays with numpy.load")
            _check_member_size(archive, HEADER)
            header = _parse_header(archive[HEADER])
            missing = [key for key in header["arrays"] if key not in archive.files]
            if missing:
                raise _NotACheckpoint(f"the header lists arrays missing from the file: {missing}")
            for key in header["arrays"]:
                _check_member_size(archive, key)
            arrays = {key: archive[key] for key in header["arrays"]}
    except FileNotFoundError:
        raise
    except _NotACheckpoint as err:
        raise ValueError(f"io.load: {path!r}: {err}") from None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, MemoryError) as err:
        raise ValueError(f"io.load: cannot read {path!r} (truncated, corrupted or not a .npz file?): "
                         f"{err}") from None
    for key, spec in header["arrays"].items():
        array = arrays[key]
        if list(array.shape) != spec["shape"] or array.dtype.str != spec["dtype"]:
            raise ValueError(f"io.load: {path!r} is inconsistent: array {key!r} is {array.dtype} "
                             f"{array.shape}, the header says {spec['dtype']} {tuple(spec['shape'])}")
    return arrays, header


def _check_member_size(archive, key):
    """Refuse an array whose own .npy header declares more bytes than the member holds.

    NumPy allocates the declared size before reading the data, so an edited
    file could otherwise ask for any amount of memory.
    """
    info = archive.zip.getinfo(key + ".npy")
    with archive.zip.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
    declared = dtype.itemsize * math.prod(shape)
    if declared > info.file_size:
        raise _NotACheckpoint(f"array {key!r} declares shape {shape} ({declared:,} bytes) but the file holds "
                              f"only {info.file_size:,} bytes for it (edited or truncated)")


def _parse_header(raw):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _NotACheckpoint(f"its {HEADER} is not JSON bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _NotACheckpoint(f"its {HEADER} is not valid JSON ({err})") from None
    except RecursionError:
        raise _NotACheckpoint(f"its {HEADER} is nested too deeply") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _NotACheckpoint(f"its header does not say format {FORMAT!r}")
    if not isinstance(header.get("version"), int) or header["version"] > FORMAT_VERSION:
        raise _NotACheckpoint(f"it has format version {header.get('version')!r}; this tinygrad_rnn reads "
                              f"versions up to {FORMAT_VERSION} (upgrade the package)")
    if not isinstance(header.get("arrays"), dict):
        raise _NotACheckpoint("its header has no array list")
    for key, spec in header["arrays"].items():
        _check_array_spec(key, spec)
    if not isinstance(header.get("class"), (str, type(None))):
        raise _NotACheckpoint(f"header field 'class' must be a class name, got {header['class']!r:.60}")
    if not isinstance(header.get("config"), (dict, type(None))):
        raise _NotACheckpoint(f"header field 'config' must be a dict, got {header['config']!r:.60}")
    for field in ("config", "extra"):
        if _depth(header.get(field)) > MAX_DEPTH:
            raise _NotACheckpoint(f"header field {field!r} is nested more than {MAX_DEPTH} levels deep")
    return header


def _check_array_spec(key, spec):
    shape = spec.get("shape") if isinstance(spec, dict) else None
    if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                             for n in shape) and isinstance(spec.get("dtype"), str)):
        raise _NotACheckpoint(f"header field arrays[{key!r}] must be {{'shape': [sizes >= 0], "
                              f"'dtype': str}}, got {spec!r:.80}")


def _depth(tree, limit=MAX_DEPTH + 1):
    """How deeply lists and dicts nest in `tree` (counting stops just above MAX_DEPTH)."""
    if limit <= 0 or not isinstance(tree, (dict, list)):
        return 0
    children = tree.values() if isinstance(tree, dict) else tree
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _join_arrays(tree, arrays):
    """Inverse of `_split_arrays`: put the arrays back in place of their {"__array__": key}."""
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_REFERENCE}:
            return arrays[tree[ARRAY_REFERENCE]]
        return {key: _join_arrays(value, arrays) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_join_arrays(value, arrays) for value in tree]
    return tree


def check_config_sizes(checkpoint, options=None):
    """Refuse a config (or task `options`) whose sizes the file's weights cannot match.

    Every integer in a model's config is a size (hidden_size, vocab_size,
    num_layers...) and no weight can be smaller than one of them, so none may
    exceed the number of stored numbers. Checked before a model is built from
    an untrusted header: an edited hidden_size=200000 would allocate a
    terabyte.
    """
    stored = sum(a.size for a in checkpoint.state.values())
    config = checkpoint.config or {}
    sizes = {**{k: v for k, v in config.items()}, **{k: v for k, v in (options or {}).items() if k in config}}
    for key, value in config.items():
        if isinstance(value, (list, dict)):
            raise ValueError(f"io.load: {checkpoint.path!r}: header field config.{key} must be a number or a "
                             f"name, got {type(value).__name__} {value!r:.40} (edited or corrupt header)")
    for key, value in sizes.items():
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= max(stored, 1):
            raise ValueError(f"io.load: {checkpoint.path!r}: header field {key}={value} does not fit the "
                             f"{stored:,} numbers the file stores (edited or corrupt header)")


def load_into(checkpoint, module):
    """Copy a loaded Checkpoint's weights into `module` (what `load(path, into=module)` does
    after reading the file): the class and config must match, and nothing changes on failure."""
    path, name = checkpoint.path, type(module).__name__
    if checkpoint.class_name is not None and checkpoint.class_name != name:
        raise ValueError(f"io.load: {path!r} holds a {checkpoint.class_name}, cannot load it into a {name}")
    if checkpoint.config is not None:
        current = json.loads(json.dumps(module.get_config()))
        differences = {key: (checkpoint.config.get(key), current.get(key))
                       for key in sorted(set(checkpoint.config) | set(current))
                       if checkpoint.config.get(key) != current.get(key) and key not in EXECUTION_OPTIONS}
        if differences:
            listed = ", ".join(f"{key}: saved {saved!r}, model {now!r}" for key, (saved, now) in differences.items())
            raise ValueError(f"io.load: {path!r} was saved from a {name} with another config ({listed}); "
                             f"build the model with the saved config: {checkpoint.config}")
    try:
        module.load_state_dict(checkpoint.state)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"io.load: {path!r} does not fit this {name}: {err}") from None


# --------------------------------------------------------------------------
# Other frameworks' layouts
# --------------------------------------------------------------------------

SOURCES = ("pytorch", "cs231n", "keras")
CS231N_LSTM_TO_OURS = [0, 1, 3, 2]    # CS231n gates i, f, o, g  ->  ours i, f, g, o
KERAS_GRU_TO_OURS = [1, 0, 2]         # Keras GRU gates z, r, h  ->  ours r, z, n


def convert_weights(state, source, layer=0):
    """Convert weights from another framework's layout to ours; returns name -> numpy array.

    source="pytorch": names and layout are already ours; torch tensors (or
        anything with .detach().cpu().numpy()) become NumPy arrays.
    source="cs231n": {"Wx": (I, G*H), "Wh": (H, G*H), "b": (G*H,)} from the
        CS231n assignments, G = 1 (vanilla RNN) or 4 (LSTM, gates i, f, o, g):
            weight_ih = Wx^T, weight_hh = Wh^T (LSTM gates reordered to i, f, g, o),
            bias_ih = b, bias_hh = 0   (one bias: the sum is what matters)
    source="keras": {"kernel": (I, G*H), "recurrent_kernel": (H, G*H), "bias"}
        or the list layer.get_weights() in that order; G = 1 (SimpleRNN),
        4 (LSTM, gates i, f, c, o = our i, f, g, o) or 3 (GRU, gates z, r, h
        -> our r, z, n). A Keras GRU comes in two kinds, told apart by its bias:
        reset_after=True (the default since Keras 2.3), bias (2, 3H) = [input
        bias; recurrent bias], n = tanh(W_in x + b_in + r * (W_hn h + b_hn)):
        load it into nn.GRU(...); reset_after=False, bias (3H,) (input bias
        only, bias_hh = 0), n = tanh(W_in x + b_in + W_hn (r * h)): load it
        into nn.GRU(..., reset_after=False).
    layer: the layer index in the names (weight_ih_l0, ...); None gives a
        cell's names (weight_ih, ...).
    """
    if source == "pytorch":
        return OrderedDict((name, _to_numpy(value)) for name, value in state.items())
    if source == "cs231n":
        W_x, W_h, b = (_to_numpy(_entry(state, key, source)) for key in ("Wx", "Wh", "b"))
        gates = _gate_count(W_h, source, {1: "RNN", 4: "LSTM"})
        order = CS231N_LSTM_TO_OURS if gates == 4 else [0]
        b_ih, b_hh = b, np.zeros_like(b)
    elif source == "keras":
        if isinstance(state, (list, tuple)):
            state = dict(zip(("kernel", "recurrent_kernel", "bias"), state))
        W_x, W_h, bias = (_to_numpy(_entry(state, key, source)) for key in ("kernel", "recurrent_kernel", "bias"))
        gates = _gate_count(W_h, source, {1: "SimpleRNN", 3: "GRU", 4: "LSTM"})
        order = KERAS_GRU_TO_OURS if gates == 3 else list(range(gates))
        b_ih, b_hh = _keras_biases(bias, gates, W_h.shape[0])
    else:
        raise ValueError(f"convert_weights: source must be one of {SOURCES}, got {source!r}")
    suffix = "" if layer is None else f"_l{layer}"
    return OrderedDict([
        (f"weight_ih{suffix}", _reorder_gates(W_x.T, order)),
        (f"weight_hh{suffix}", _reorder_gates(W_h.T, order)),
        (f"bias_ih{suffix}", _reorder_gates(b_ih, order)),
        (f"bias_hh{suffix}", _reorder_gates(b_hh, order)),
    ])


def _to_numpy(value):
    if isinstance(value, Tensor):
        return np.array(value.data)
    if hasattr(value, "detach"):                 # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.array(value)


def _entry(state, key, source):
    if key not in state:
        raise KeyError(f"convert_weights: source={source!r} needs an entry {key!r}, got keys {list(state)}")
    return state[key]


def _gate_count(W_h, source, known):
    """G from the recurrent matrix (H, G*H), checked against the cells this source has."""
    H, width = W_h.shape
    if width % H or width // H not in known:
        raise ValueError(f"convert_weights: source={source!r} recurrent weights of shape {W_h.shape} are not "
                         f"(H, G*H) with G in {sorted(known)} ({', '.join(known.values())})")
    return width // H


def _keras_biases(bias, gates, H):
    if gates == 3 and bias.shape == (2, 3 * H):           # reset_after=True: [input bias; recurrent bias]
        return bias[0], bias[1]
    if gates == 3 and bias.shape != (3 * H,):
        raise ValueError(f"convert_weights: a Keras GRU bias must have shape (2, {3 * H}) (reset_after=True) "
                         f"or ({3 * H},) (reset_after=False), got {bias.shape}")
    if bias.shape != (gates * H,):
        raise ValueError(f"convert_weights: a Keras bias must have shape ({gates * H},), got {bias.shape}")
    return bias, np.zeros_like(bias)


def _reorder_gates(array, order):
    """Rearrange the G equal blocks along axis 0 into `order` (block k of the result = block order[k])."""
    blocks = np.split(array, len(order), axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in order], axis=0))
