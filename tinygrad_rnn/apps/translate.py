"""Many-to-many, unaligned: translate written dates to ISO with an encoder–decoder and attention.

    "23 November 2026"  ->  "2026-11-23"
    "the 1st of June 1964"  ->  "1964-06-01"

The source and target have different lengths and a different order (the year
moves to the front, "November" becomes "11"), so no step-by-step tagger can
do it. `nn.Seq2Seq` reads the source with a bidirectional LSTM, then writes
the target one character at a time; at every step its attention looks back
at the source characters it needs: `show_attention` draws it reading the
year first, then the month, then the day.

Training minimises the summed cross-entropy of the target characters given
the true previous ones (teacher forcing):

    L = - sum_t log p(y_t | y_<t, x)        (padding ignored)

and every batch is freshly drawn, so the test sentences are (almost surely)
new ones. Evaluation decodes greedily and counts *exact matches* (every
character right) and per-character accuracy.
"""
import numpy as np

from .. import nn
from ..data.dates import (EOS_INDEX, PAD_INDEX, SOS_INDEX, SOURCE_VOCAB, TARGET_VOCAB, date_pairs,
                          encode_sources, make_batch)
from ..viz import attention_heatmap
from ..tensor import check_sizes
from .training import Task

TARGET_LENGTH = len("2026-11-23")
TEST_SEED = 12345


def build_model(hidden_size=32, embedding_size=16, cell="lstm", attention="additive", bidirectional=True,
                fused=True):
    """nn.Seq2Seq over the date vocabularies."""
    return nn.Seq2Seq(len(SOURCE_VOCAB), len(TARGET_VOCAB), embedding_size, hidden_size, cell=cell,
                      bidirectional=bidirectional, attention=attention, sos_index=SOS_INDEX,
                      eos_index=EOS_INDEX, fused=fused)


def translate(model, dates, beam_width=1, alpha=0.0, return_attention=False):
    """Human-written dates -> ISO strings (and, optionally, each one's (n_out, n_source) attention)."""
    source, lengths = encode_sources(dates)
    decoded = model.decode(source, lengths, max_length=TARGET_LENGTH + 1, beam_width=beam_width, alpha=alpha,
                           return_attention=return_attention)
    tokens, attention = decoded if return_attention else (decoded, None)
    texts = [TARGET_VOCAB.decode(t) for t in tokens]
    return (texts, attention) if return_attention else texts


def show_attention(model, text, path=None):
    """Translate one date and return (ISO string, attention (n_out, n_source)).

    Row t says where the decoder looked while writing output character t;
    with `path`, the matrix is also saved as a heatmap PNG (needs matplotlib).
    """
    (iso,), (weights,) = translate(model, [text], return_attention=True)
    attention_heatmap(weights, source=list(text), target=list(iso), path=path, title=f"{text} -> {iso}")
    return iso, weights


def translation_scores(model, pairs, beam_width=1, alpha=0.0):
    """{"exact match": fraction of outputs entirely right, "char accuracy": fraction of right characters}."""
    outputs = translate(model, [source for source, _ in pairs], beam_width=beam_width, alpha=alpha)
    targets = [target for _, target in pairs]
    exact = np.mean([out == target for out, target in zip(outputs, targets)])
    chars = np.mean([sum(a == b for a, b in zip(out, target)) / len(target) for out, target in zip(outputs, targets)])
    return {"exact match": float(exact), "char accuracy": float(chars)}


def sequence_loss(model, batch, teacher_forcing_ratio=1.0):
    """Cross-entropy of target[1:] given the source and (mostly) the true previous characters."""
    logits = model(batch.source, batch.target, batch.source_lengths, teacher_forcing_ratio=teacher_forcing_ratio)
    return nn.cross_entropy(logits, batch.target[1:], ignore_index=PAD_INDEX)


def build_task(hidden_size=32, embedding_size=16, batch_size=64, cell="lstm", attention="additive",
               bidirectional=True, teacher_forcing_ratio=1.0, test_size=500, fused=True):
    """Date translation with nn.Seq2Seq; evaluate() decodes `test_size` held-out dates greedily."""
    check_sizes("translate", hidden_size=hidden_size, embedding_size=embedding_size, batch_size=batch_size,
                test_size=test_size)
    model = build_model(hidden_size, embedding_size, cell, attention, bidirectional, fused)
    test_pairs = date_pairs(test_size, seed=TEST_SEED)

    def evaluate(model):
        scores = translation_scores(model, test_pairs)
        source = test_pairs[0][0]
        scores["sample"] = f"{source} -> {translate(model, [source])[0]}"
        return scores

    options = dict(hidden_size=hidden_size, embedding_size=embedding_size, batch_size=batch_size, cell=cell,
                   attention=attention, bidirectional=bidirectional, teacher_forcing_ratio=teacher_forcing_ratio,
                   test_size=test_size, fused=fused)
    return Task("translate", options, model,
                next_batch=lambda rng: make_batch(date_pairs(batch_size, rng)),
                loss=lambda model, batch: sequence_loss(model, batch, teacher_forcing_ratio),
                evaluate=evaluate, items_per_batch=batch_size, item_name="date")
