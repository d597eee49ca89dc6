"""Many-to-many, aligned: a character-level language model (char-RNN).

At every step t the model reads character x_t and predicts the next one:

    e_t      = E[x_t]                              embedding      (B, E)
    h_t      = LSTM(e_t, h_{t-1})                   recurrent      (B, H)
    logits_t = h_t W_hy^T + b_y                     output         (B, V)
    L        = (1/TB) sum_t sum_b -log softmax(logits_t)[b, x_{t+1}]

(GRU or a vanilla RNN instead of the LSTM with ``cell="gru"`` / ``"rnn"``.)
Trained on random windows of a corpus (`data.CharCorpus.batch`), then run
forward one character at a time to *sample* new text:

    p = softmax(logits / temperature)       temperature < 1: safer, > 1: wilder
    top-k: keep the k most likely characters, renormalise, draw from those

    model = CharRNN(vocab_size=len(corpus.vocab))
    text = sample(model, corpus.vocab, prime="The ", length=200, temperature=0.8, top_k=5)
"""
import hashlib

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..bptt import run as bptt_run
from ..data.text import CharCorpus, Vocabulary, builtin_text, read_text
from ..tensor import Tensor, check_sizes
from .training import Task

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharRNN(nn.Module):
    """Embedding(V, E) -> {LSTM, GRU, RNN}(E, H, num_layers) -> Linear(H, V).

    forward(ids (T, B) int, state=None) -> logits (T, B, V), state
    (state is whatever the recurrent layer returns: h_n, or (h_n, c_n) for the LSTM).
    """

    def __init__(self, vocab_size, hidden_size=128, num_layers=1, embedding_size=32, cell="lstm",
                 fused=True):
        if cell not in CELLS:
            raise ValueError(f"CharRNN: cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.config = dict(vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
                           embedding_size=embedding_size, cell=cell, fused=fused)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = CELLS[cell](embedding_size, hidden_size, num_layers, fused=fused)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        out, state = self.rnn(self.embedding(ids), state)
        return self.head(out), state

    def loss(self, inputs, targets):
        """Mean next-character cross-entropy over all T*B positions (fresh state per batch)."""
        logits, _ = self(inputs)
        return nn.cross_entropy(logits, targets)


def sampling_distribution(logits, temperature=1.0, top_k=None):
    """Probabilities p (V,) from logits (V,): softmax(logits / temperature) over the top_k largest."""
    check_sampling_options(temperature, top_k)
    z = np.asarray(logits, dtype=np.float64)
    if top_k is not None and top_k < z.size:
        kth_largest = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth_largest, z, -np.inf)
    return softmax_with_temperature(z, temperature)


def softmax_with_temperature(z, temperature, axis=-1):
    """softmax(z / temperature) along `axis`, also for tiny temperatures.

    The maximum is subtracted *before* dividing, so z - max <= 0 and a tiny
    temperature can only send the other entries to -inf (probability 0), never
    give inf - inf = NaN: as temperature -> 0 this becomes the greedy choice.
    """
    with np.errstate(over="ignore"):
        scaled = (z - z.max(axis=axis, keepdims=True)) / temperature
    p = np.exp(scaled)
    return p / p.sum(axis=axis, keepdims=True)


def check_sampling_options(temperature, top_k):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)) \
            or not 0 < temperature < np.inf:
        raise ValueError(f"sampling: temperature must be > 0, got {temperature!r} (a finite number is "
                         f"needed); use a small value such as 0.1 for nearly greedy text")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"sampling: top_k must be an integer >= 1 (or None for all characters), got {top_k!r}")


def sample(model, vocab, prime, length, temperature=1.0, top_k=None, rng=None):
    """prime + `length` characters drawn one at a time from the model.

    The prime is read in one forward pass to set the hidden state; then each
    drawn character is fed back in as the next input.
    """
    check_sampling_options(temperature, top_k)
    if not prime:
        raise ValueError("sample: the prime text must have at least one character")
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"sample: length must be an integer >= 0, got {length!r}")
    rng = rng if rng is not None else np.random.default_rng()
    ids = vocab.encode(prime)
    was_training = model.training
    model.eval()
    drawn = []
    with no_grad():
        logits, state = model(Tensor(ids[:, None]))
        for _ in range(length):
            p = sampling_distribution(logits.data[-1, 0], temperature, top_k)
            drawn.append(int(rng.choice(len(p), p=p)))
            logits, state = model(Tensor(np.array([[drawn[-1]]])), state)
    model.train(was_training)
    return prime + vocab.decode(drawn)


# ---- the training task -------------------------------------------------------------

def check_corpus_hash(path, text, expected=None):
    """The SHA-256 of the corpus `text` read from `path`; ValueError if `expected` is given and differs."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if expected is not None and digest != expected:
        raise ValueError(f"corpus {str(path)!r} is not the text this model was trained on (its SHA-256 "
                         f"differs); pass the same file, or start a new run to train on other text")
    return digest


def build_task(corpus=None, max_chars=None, vocab=None, hidden_size=128, num_layers=1, embedding_size=32,
               cell="lstm", seq_len=64, batch_size=32, tbptt=None, fused=True, corpus_sha256=None):
    """A `training.Task` for next-character prediction on `corpus` (a file path; None: the built-in text).

    vocab    the symbols as one string (saved in checkpoints so sampling needs no corpus);
             None: the corpus's own characters
    corpus_sha256  the SHA-256 of the corpus file a checkpoint was trained on: a resumed run
             refuses another file (None: no check)
    tbptt    None for full BPTT over each window of seq_len characters, or [k1, k2]
             for truncated BPTT inside it (`bptt.run`: an update every k1 steps)
    """
    check_sizes("char_rnn", seq_len=seq_len, batch_size=batch_size)
    if tbptt is not None and not 1 <= len(tbptt) <= 2:
        raise ValueError(f"char_rnn: tbptt must be [k1] or [k1, k2], got {list(tbptt)}")
    text = read_text(corpus) if corpus else builtin_text()
    if corpus:
        corpus_sha256 = check_corpus_hash(corpus, text, corpus_sha256)
    text_corpus = CharCorpus(text[:max_chars] if max_chars else text,   # encoded once, with the saved vocab if any
                             None if vocab is None else Vocabulary(vocab))
    if len(text_corpus) < seq_len + 1:
        raise ValueError(f"char_rnn: seq_len={seq_len} needs at least {seq_len + 1} characters, the corpus has "
                         f"{len(text_corpus)}{' (max_chars)' if max_chars else ''}; use a shorter seq_len (--seq-len) or more "
                         f"text (--corpus, --max-chars)")
    model = CharRNN(len(text_corpus.vocab), hidden_size, num_layers, embedding_size, cell, fused)
    options = dict(corpus=corpus and str(corpus), max_chars=max_chars, vocab="".join(text_corpus.vocab.symbols),
                   hidden_size=hidden_size, num_layers=num_layers, embedding_size=embedding_size, cell=cell,
                   seq_len=seq_len, batch_size=batch_size, tbptt=tbptt and list(tbptt), fused=fused,
                   corpus_sha256=corpus_sha256 if corpus else None)

    def truncated_backward(model, batch, optimizer, clip):
        inputs, targets = batch

        def step(ids_t, state):                          # ids_t (B,) -> logits (B, V)
            logits, state = model(Tensor(ids_t[None, :]), state)
            return logits[0], state

        result = bptt_run(step, inputs, None, lambda logits, t: nn.cross_entropy(logits, targets[t]),
                          k1=tbptt[0], k2=tbptt[1] if len(tbptt) > 1 else None,
                          optimizer=optimizer, clip_norm=clip)
        return float(np.mean(result.losses))

    def evaluate(model):
        return {"sample": sample(model, text_corpus.vocab, text_corpus.text[0], 60, 0.8,
                                 rng=np.random.default_rng(0))}

    return Task("chars", options, model,
                next_batch=lambda rng: text_corpus.batch(seq_len, batch_size, rng),
                loss=lambda model, batch: model.loss(*batch),
                evaluate=evaluate, items_per_batch=seq_len * batch_size, item_name="char",
                backward=truncated_backward if tbptt else None)
