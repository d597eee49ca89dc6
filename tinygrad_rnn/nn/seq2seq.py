"""Encoder–decoder (sequence-to-sequence) with attention.

Translation maps a sequence x_1..x_S to a sequence y_1..y_T of another
length, not aligned step by step. An *encoder* RNN reads the source; a
*decoder* RNN writes the target one token at a time, each time feeding back
the token it has just written (Sutskever et al., 2014). With attention the
decoder also looks back at every encoder state at every step, so the source
no longer has to squeeze through one fixed-size vector (Bahdanau et al.,
2015; Luong et al., 2015).

Symbols (B batch, S source length, T target length, E embedding size,
H encoder hidden size, D = 2 for a bidirectional encoder else 1, Hd = D*H the
decoder's hidden size, V target vocabulary size):

    encoder:  m_1..m_S = RNN(E_src x_1..x_S)          memory (B, S, Hd)
              s_0 = [h_S(forward); h_1(backward)]       the final states joined: (B, Hd)

    decoder, step t (Luong's global attention with *input feeding*):
              u_t = [E_tgt y_{t-1}; h~_{t-1}]            h~_0 = 0           (B, E + Hd)
              s_t = cell(u_t, s_{t-1})                   LSTM (h_t, c_t) or GRU h_t
              c_t, a_t = attention(h_t, m, mask)        context (B, Hd), weights (B, S)
              h~_t = tanh(W_c [c_t; h_t])                the attentional state (B, Hd)
              p(y_t | y_<t, x) = softmax(W_o h~_t + b_o) (B, V)

Feeding h~_{t-1} back in tells the decoder where it looked last time. Without
attention (``attention=None``) the decoder is the plain Sutskever model:
u_t = E_tgt y_{t-1} and the logits are W_o h_t + b_o.

Training uses *teacher forcing*: the decoder input y_{t-1} is the true
previous token with probability ``teacher_forcing_ratio`` (drawn once per
step for the whole batch), otherwise the model's own previous guess — which
is what it will see at test time.

Decoding: greedy (the most likely token each step, for a whole batch at
once) or beam search (keep the `beam_width` best prefixes; a finished
hypothesis y_1..y_n, EOS included, is ranked by log p(y|x) / n^alpha, where
alpha = 0 is no length normalisation and alpha = 1 is the mean log-prob per
token: without it, beam search prefers short outputs, since every extra token
can only lower the log-probability).

Token sequences are time-major like the layers: source (S, B) and target
(T, B) integer arrays; (B, S) and (B, T) with ``batch_first=True``. The
target starts with SOS: the model reads target[:-1] and predicts target[1:].
"""
from dataclasses import dataclass, field

import numpy as np

from .. import functions as F
from ..autograd import no_grad
from ..tensor import Tensor, check_sizes, rng, zeros
from .attention import AdditiveAttention, DotAttention, attention_mask
from .cells import GRUCell, LSTMCell
from .module import Embedding, Linear, Module
from .recurrent import GRU, LSTM

CELLS = {"lstm": (LSTM, LSTMCell), "gru": (GRU, GRUCell)}
ATTENTIONS = ("additive", "dot", "scaled_dot", "general", None)


def make_attention(kind, size):
    """The attention module named `kind` for queries and keys of `size` features (None: no attention)."""
    if kind not in ATTENTIONS:
        raise ValueError(f"Seq2Seq: attention must be one of {ATTENTIONS}, got {kind!r}")
    if kind == "additive":
        return AdditiveAttention(size, size, size, batch_first=True)
    if kind == "general":
        return DotAttention(query_size=size, key_size=size, batch_first=True)
    if kind in ("dot", "scaled_dot"):
        return DotAttention(scaled=kind == "scaled_dot", batch_first=True)
    return None


@dataclass
class Hypothesis:
    """One beam-search prefix: its tokens, summed log-probability and attention rows."""

    tokens: list = field(default_factory=list)
    log_prob: float = 0.0
    attention: list = field(default_factory=list)

    def normalised_score(self, alpha):
        """log p / n^alpha for a finished hypothesis, n counting its EOS."""
        return self.log_prob / (len(self.tokens) + 1) ** alpha


class Seq2Seq(Module):
    """Seq2Seq(source_vocab_size, target_vocab_size, embedding_size, hidden_size, cell="lstm",
               bidirectional=False, attention="additive", sos_index=1, eos_index=2,
               batch_first=False, fused=True)

    cell:       "lstm" or "gru" (encoder layer and decoder cell)
    attention:  "additive" (Bahdanau), "dot", "scaled_dot", "general" (Luong), or None
    sos_index, eos_index: start and end tokens of the target vocabulary

        logits = model(source, target, source_lengths, teacher_forcing_ratio=1.0)   # (T-1, B, V)
        loss = nn.cross_entropy(logits, target[1:], ignore_index=pad)
        outputs = model.decode(source, source_lengths, beam_width=5, alpha=0.6)   # token lists
    """

    def __init__(self, source_vocab_size, target_vocab_size, embedding_size, hidden_size, cell="lstm",
                 bidirectional=False, attention="additive", sos_index=1, eos_index=2,
                 batch_first=False, fused=True):
        check_sizes("Seq2Seq", source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                    embedding_size=embedding_size, hidden_size=hidden_size)
        if cell not in CELLS:
            raise ValueError(f"Seq2Seq: cell must be one of {tuple(CELLS)}, got {cell!r}")
        for name, index in (("sos_index", sos_index), ("eos_index", eos_index)):
            if not 0 <= index < target_vocab_size:
                raise ValueError(f"Seq2Seq: {name}={index} is outside the target vocabulary "
                                 f"[0, {target_vocab_size})")
        if sos_index == eos_index:
            raise ValueError(f"Seq2Seq: sos_index and eos_index are both {sos_index}; the start and "
                             f"end tokens must differ")
        self.config = dict(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                           embedding_size=embedding_size, hidden_size=hidden_size, cell=cell,
                           bidirectional=bidirectional, attention=attention, sos_index=sos_index,
                           eos_index=eos_index, batch_first=batch_first, fused=fused)
        self.cell, self.sos_index, self.eos_index, self.batch_first = cell, sos_index, eos_index, batch_first
        layer, cell_class = CELLS[cell]
        decoder_size = hidden_size * (2 if bidirectional else 1)
        self.source_embedding = Embedding(source_vocab_size, embedding_size)
        self.target_embedding = Embedding(target_vocab_size, embedding_size)
        self.encoder = layer(embedding_size, hidden_size, bidirectional=bidirectional, fused=fused)
        self.attention = make_attention(attention, decoder_size)
        feed_size = decoder_size if self.attention is not None else 0
        self.decoder_cell = cell_class(embedding_size + feed_size, decoder_size, fused=fused)
        self.combine = Linear(2 * decoder_size, decoder_size, bias=False) if self.attention is not None else None
        self.output = Linear(decoder_size, target_vocab_size)

    # ---- the pieces ------------------------------------------------------------
    def encode(self, source, source_lengths=None):
        """memory (B, S, Hd), mask (B, S) or None, and the decoder's initial state (a tuple of (B, Hd))."""
        S, B = source.shape
        lengths = None if source_lengths is None else np.asarray(source_lengths)
        output, final = self.encoder(self.source_embedding(source), lengths=lengths, enforce_sorted=False)
        finals = final if self.cell == "lstm" else (final,)
        directions = 2 if self.encoder.bidirectional else 1
        state = tuple(F.concat([f[k] for k in range(-directions, 0)], axis=1) for f in finals)
        mask = attention_mask(None, lengths, B, S, "Seq2Seq")
        return output.transpose(1, 0, 2), mask, state

    def initial_feed(self, batch_size, dtype):
        """h~_0 = 0 (B, Hd), or None without attention."""
        if self.attention is None:
            return None
        return zeros(batch_size, self.decoder_cell.hidden_size, dtype=dtype)

    def decode_step(self, tokens, state, feed, memory, mask):
        """One decoder step (the equations in the module doc).

        tokens (B,) int, state tuple of (B, Hd), feed h~_{t-1} (B, Hd) or None
        -> logits (B, V), new state, new feed h~_t, attention weights (B, S) or None
        """
        u = self.target_embedding(tokens)
        if self.attention is not None:
            u = F.concat([u, feed], axis=1)
        if self.cell == "lstm":
            state = self.decoder_cell(u, state)
        else:
            state = (self.decoder_cell(u, state[0]),)
        h = state[0]
        if self.attention is None:
            return self.output(h), state, None, None
        context, weights = self.attention(h, memory, mask=mask)
        attentional = self.combine(F.concat([context, h], axis=1)).tanh()
        return self.output(attentional), state, attentional, weights

    # ---- training ------------------------------------------------------------
    def forward(self, source, target, source_lengths=None, teacher_forcing_ratio=1.0):
        """Logits (T-1, B, V) (batch-first: (B, T-1, V)) for target[1:], reading target[:-1]."""
        source, target = self._check_tokens(source, "source"), self._check_tokens(target, "target")
        if target.shape[0] < 2 or target.shape[1] != source.shape[1]:
            raise ValueError(f"Seq2Seq: target must be (T, B) with T >= 2 (SOS plus at least one token) and "
                             f"the source's batch size {source.shape[1]}, got {target.shape} (time-major)")
        if not 0 <= teacher_forcing_ratio <= 1:
            raise ValueError(f"Seq2Seq: teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        memory, mask, state = self.encode(source, source_lengths)
        feed = self.initial_feed(source.shape[1], memory.dtype)
        tokens, steps = target[0], []
        for t in range(target.shape[0] - 1):
            logits, state, feed, _ = self.decode_step(tokens, state, feed, memory, mask)
            steps.append(logits)
            teacher = rng().random() < teacher_forcing_ratio
            tokens = target[t + 1] if teacher else logits.data.argmax(axis=1)
        logits = F.stack(steps, axis=0)
        return logits.transpose(1, 0, 2) if self.batch_first else logits

    # ---- inference -------------------------------------------------------------
    def decode(self, source, source_lengths=None, max_length=50, beam_width=1, alpha=0.0,
               return_attention=False):
        """Translate a batch: a list of B token lists (SOS and EOS left out).

        beam_width=1 is greedy decoding; more is beam search with length
        normalisation alpha (see the module doc). With return_attention=True,
        also a list of B arrays (n_b, S_b): row t holds the weights the decoder
        put on each source position when it wrote output token t.
        """
        source = self._check_tokens(source, "source")
        if return_attention and self.attention is None:
            raise ValueError("Seq2Seq.decode: return_attention=True needs a model built with attention")
        check_sizes("Seq2Seq.decode", beam_width=beam_width)
        with no_grad():
            memory, mask, state = self.encode(source, source_lengths)
            if beam_width == 1:
                results = self._greedy(memory, mask, state, max_length)
            else:
                results = [self._beam_search(memory[[b]], None if mask is None else mask[[b]],
                                             tuple(s[[b]] for s in state), beam_width, max_length, alpha)
                           for b in range(source.shape[1])]
        tokens = [result.tokens for result in results]
        if not return_attention:
            return tokens
        S, B = source.shape
        lengths = np.full(B, S) if source_lengths is None else np.asarray(source_lengths)
        return tokens, [np.reshape(r.attention, (len(r.tokens), S))[:, :n] for r, n in zip(results, lengths)]

    def _greedy(self, memory, mask, state, max_length):
        """The most likely token at every step, for the whole batch at once."""
        B = memory.shape[0]
        results = [Hypothesis() for _ in range(B)]
        running = np.ones(B, dtype=bool)
        tokens = np.full(B, self.sos_index)
        feed = self.initial_feed(B, memory.dtype)
        for _ in range(max_length):
            logits, state, feed, weights = self.decode_step(tokens, state, feed, memory, mask)
            tokens = logits.data.argmax(axis=1)
            log_probs = logits.log_softmax(axis=1).data
            for b in np.flatnonzero(running):
                results[b].log_prob += float(log_probs[b, tokens[b]])
                if tokens[b] == self.eos_index:
                    running[b] = False
                else:
                    results[b].tokens.append(int(tokens[b]))
                    if weights is not None:
                        results[b].attention.append(weights.data[b])
            if not running.any():
                break
        return results

    def _beam_search(self, memory, mask, state, beam_width, max_length, alpha):
        """Beam search for one source (memory (1, S, Hd)): the best finished hypothesis.

        Each step extends every live prefix by every token. Ending it (EOS)
        makes a finished hypothesis; of the other extensions, the
        `beam_width` with the highest summed log-probability live on. Search
        stops once no live prefix can still beat the best finished one (a
        prefix's log-probability can only fall, so its best possible score is
        log p / max_length^alpha: no further loss, longest length), or after
        max_length steps. Either way the answer ends with EOS.
        """
        live, finished = [Hypothesis()], []
        tokens = np.array([self.sos_index])
        feed = self.initial_feed(1, memory.dtype)
        for _ in range(max_length):
            rows = np.zeros(len(live), dtype=np.int64)
            logits, state, feed, weights = self.decode_step(tokens, state, feed, memory[rows],
                                                            None if mask is None else mask[rows])
            totals = np.array([h.log_prob for h in live])[:, None] + logits.log_softmax(axis=1).data   # (n, V)
            finished += [Hypothesis(h.tokens, float(totals[row, self.eos_index]), h.attention)
                         for row, h in enumerate(live)]
            totals[:, self.eos_index] = -np.inf
            best = np.argsort(-totals, axis=None)[:beam_width]
            best = best[np.isfinite(totals.reshape(-1)[best])]           # fewer tokens than beams: skip EOS
            parents, next_tokens = np.divmod(best, totals.shape[1])
            live = [Hypothesis(live[row].tokens + [int(token)], float(totals[row, token]),
                               live[row].attention + ([] if weights is None else [weights.data[row]]))
                    for row, token in zip(parents, next_tokens)]
            best_finished = max(h.normalised_score(alpha) for h in finished)
            if best_finished >= max(h.log_prob for h in live) / max_length ** alpha:
                break
            tokens = next_tokens
            state = tuple(s[parents] for s in state)
            feed = None if feed is None else feed[parents]
        return max(finished, key=lambda h: h.normalised_score(alpha))

    # ---- checks ------------------------------------------------------------------
    def _check_tokens(self, tokens, what):
        """Integer (S, B) array (transposed from (B, S) when batch_first)."""
        tokens = np.asarray(tokens.data if isinstance(tokens, Tensor) else tokens)
        layout = "(B, S)" if self.batch_first else "(S, B)"
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise ValueError(f"Seq2Seq: {what} must be a 2-D integer array of token indices {layout}, "
                             f"got shape {tokens.shape} dtype {tokens.dtype}")
        return tokens.T if self.batch_first else tokens
