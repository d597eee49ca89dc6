"""Offline datasets: synthetic tasks and text corpora, seeded, batched, time-major."""
from .synthetic import adding_problem, copy_task
from .text import CharCorpus, Vocabulary, builtin_text, read_text
from .sequences import (ACTIVITIES, REBER_SYMBOLS, WEATHER, embedded_reber_string, forecast_windows,
                        is_embedded_reber, is_reber, mackey_glass, reber_classification_batch, reber_string,
                        routine_batch, sine_series, weekly_routine)
from .digits import DIGIT_NAMES, as_pixels, as_rows, digit_images, draw_digit, render
from .dates import (DateBatch, SOURCE_VOCAB, TARGET_VOCAB, date_batches, date_pairs, decode_target,
                    encode_sources, encode_targets, make_batch)

__all__ = ["adding_problem", "copy_task"]
__all__ += ["CharCorpus", "Vocabulary", "builtin_text", "read_text"]
__all__ += ["ACTIVITIES", "REBER_SYMBOLS", "WEATHER", "embedded_reber_string", "forecast_windows",
            "is_embedded_reber", "is_reber", "mackey_glass", "reber_classification_batch", "reber_string",
            "routine_batch", "sine_series", "weekly_routine"]
__all__ += ["DIGIT_NAMES", "as_pixels", "as_rows", "digit_images", "draw_digit", "render"]
__all__ += ["DateBatch", "SOURCE_VOCAB", "TARGET_VOCAB", "date_batches", "date_pairs", "decode_target",
            "encode_sources", "encode_targets", "make_batch"]
