"""Worked examples, one per way of wiring an RNN to a task.

    many-to-many (next character)   char_rnn.CharRNN            task "chars"
    many-to-one  (classify)         classifier.SequenceClassifier   "digits", "reber"
    one-to-many  (generate)         generator.DigitSpeller      task "spell"
    many-to-many (tag each step)    tagger.SequenceTagger       task "routine"
    many-to-many (regress)          forecast.Forecaster         task "mackey-glass"
    many-to-many (next pixel)       pixel_rnn.PixelRNN          task "pixels"
    sequence to sequence            translate (nn.Seq2Seq)      task "translate"
    CNN + RNN + MLP                 cnn_rnn.ConvRecurrentClassifier  "cnn-rnn"
    soft vs hard attention          hard_attention              "soft-attention", "hard-attention"

Each module builds a `training.Task`; `training.Trainer` trains any of them:

    from tinygrad_rnn import apps, optim
    task = apps.build_task("routine", hidden_size=16)
    trainer = apps.Trainer(task, optim.Adam(task.model.parameters(), lr=1e-2))
    trainer.train(steps=200)
    print(task.evaluate(task.model))            # {'test accuracy': 1.0}
"""
from .. import io, optim
from . import (char_rnn, classifier, cnn_rnn, forecast, generator, hard_attention, pixel_rnn, tagger,
               translate)
from .training import CHECKPOINT_FORMAT, Task, Trainer, TrainResult, describe

TASKS = {
    "chars": char_rnn.build_task,
    "digits": classifier.build_digits_task,
    "reber": classifier.build_reber_task,
    "spell": generator.build_task,
    "routine": tagger.build_task,
    "mackey-glass": forecast.build_task,
    "pixels": pixel_rnn.build_task,
    "translate": translate.build_task,
    "cnn-rnn": cnn_rnn.build_task,
    "soft-attention": hard_attention.build_soft_task,
    "hard-attention": hard_attention.build_hard_task,
}

MAX_OPTION = 2**16          # largest size option (hidden_size, batch_size, seq_len...), on the CLI and in a header
UNBOUNDED_OPTIONS = {"max_chars"}   # integer options that only trim data, never size an array
OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}


def build_task(name, **options):
    """The Task called `name` (a key of TASKS), built with the given options."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name](**options)


def make_optimizer(name, params, lr):
    """OPTIMIZERS[name](params, lr=lr); name is case-insensitive ("adam", "sgd", ...)."""
    if name.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name.lower()](params, lr=lr)


def read_checkpoint(path):
    """The io.Checkpoint at `path`, checked to be an apps checkpoint.

    Nothing is built yet: the header is checked first (ValueError naming the
    file and the field), so an edited file cannot make the program allocate
    a huge model or open another file.
    """
    checkpoint = io.load(path)
    extra = checkpoint.extra if isinstance(checkpoint.extra, dict) else {}
    if extra.get("format") != CHECKPOINT_FORMAT or extra.get("task") not in TASKS:
        raise ValueError(f"{str(path)!r} is a tinygrad_rnn checkpoint of a {checkpoint.class_name}, but not one "
                         f"written by `tinygrad-rnn train`/`demo` (no task recorded); load it with tr.io.load")
    if not isinstance(extra.get("task_options"), dict):
        raise ValueError(f"{str(path)!r}: header field extra.task_options must be a dict")
    if extra.get("model_type", checkpoint.class_name) != checkpoint.class_name:
        raise ValueError(f"{str(path)!r}: header field extra.model_type={extra['model_type']!r:.40} does not match "
                         f"its class {checkpoint.class_name!r} (edited or corrupt header)")
    io.check_config_sizes(checkpoint, extra["task_options"])
    _check_task_options(path, extra["task_options"])
    return checkpoint


def _check_task_options(path, options):
    """Refuse task options that would size an array beyond reason, or a vocabulary that is not text."""
    for key, value in options.items():
        if isinstance(value, int) and not isinstance(value, bool) and key not in UNBOUNDED_OPTIONS \
                and not 0 <= value <= MAX_OPTION:
            raise ValueError(f"{str(path)!r}: header field extra.task_options.{key}={value} is out of range "
                             f"(0 to {MAX_OPTION}; edited or corrupt header)")
    if options.get("vocab") is not None and not isinstance(options["vocab"], str):
        raise ValueError(f"{str(path)!r}: header field extra.task_options.vocab must be a string of characters, "
                         f"got {type(options['vocab']).__name__}")


def load_checkpoint(path, **overrides):
    """Rebuild the task a checkpoint was trained on and load its weights: (task, io.Checkpoint).

    `path` is a file, or the io.Checkpoint `read_checkpoint` returned (the file is then not
    read again).
    overrides replace saved task options that do not change the model (e.g. the
    corpus path, the batch size); an option the task does not have is refused.
    A corpus file named in the checkpoint is never opened on the checkpoint's
    word: pass `corpus=` (its hash is checked). Raises ValueError for a file
    that is not an apps checkpoint.
    """
    checkpoint = path if isinstance(path, io.Checkpoint) else read_checkpoint(path)
    path = checkpoint.path
    saved = checkpoint.extra["task_options"]
    unknown = sorted(set(overrides) - set(saved))
    if unknown:
        raise ValueError(f"option {unknown[0]} does not apply to task {checkpoint.extra['task']!r} "
                         f"(its options: {', '.join(saved)})")
    if saved.get("corpus") and not overrides.get("corpus"):
        raise ValueError(f"{str(path)!r} was trained on the corpus file {saved['corpus']!r}; pass it again "
                         f"with --corpus (corpus=) to continue: a checkpoint never opens files on its own")
    try:
        built = build_task(checkpoint.extra["task"], **{**saved, **overrides})
    except TypeError as err:
        raise ValueError(f"{str(path)!r}: header field extra.task_options does not fit task "
                         f"{checkpoint.extra['task']!r} ({err})") from None
    except MemoryError:
        raise ValueError(f"{str(path)!r}: the model its header describes does not fit in memory "
                         f"(edited or corrupt header)") from None
    io.load_into(checkpoint, built.model)
    return built, checkpoint


def resume(path, **overrides):
    """A Trainer in exactly the state a checkpoint recorded: weights, optimizer, step, data generator.
    `path` is a file or an io.Checkpoint from `read_checkpoint`."""
    task, checkpoint = load_checkpoint(path, **overrides)
    path, extra = checkpoint.path, checkpoint.extra
    saved = extra.get("optimizer")
    if not isinstance(saved, dict) or str(saved.get("type")).lower() not in OPTIMIZERS \
            or not isinstance(saved.get("hyperparameters"), dict):
        raise ValueError(f"{str(path)!r}: header field extra.optimizer is not an optimizer state")
    try:
        optimizer = OPTIMIZERS[saved["type"].lower()](task.model.parameters(), lr=saved["hyperparameters"]["lr"])
        trainer = Trainer(task, optimizer, clip=extra.get("clip"))
        trainer.restore(extra)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{str(path)!r}: a header field is invalid: {err}") from None
    return trainer


__all__ = ["TASKS", "OPTIMIZERS", "Task", "Trainer", "TrainResult", "build_task", "describe", "load_checkpoint",
           "read_checkpoint",
           "make_optimizer", "resume", "char_rnn", "classifier", "cnn_rnn", "forecast", "generator",
           "hard_attention", "pixel_rnn", "tagger", "translate"]
