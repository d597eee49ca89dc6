"""One-to-many: one vector in, a sequence out — spell a digit's name from its image.

A tiny image-captioning analogue. The 8×8 image sets the first hidden state,
then a GRU writes the name one letter at a time, each letter fed back in as
the next input:

    h_0      = tanh(W_img vec(image) + b_img)          (B, H)   the image, once
    h_t      = GRU(E[c_{t-1}], h_{t-1})                 c_{-1} = "^" (start)
    logits_t = h_t W^T + b                              (B, V)   next letter
    L        = mean over letters of -log softmax(logits_t)[c_t]   (targets end with ".")

Training uses *teacher forcing*: the input at step t is the true letter
c_{t-1}, not the model's guess. Spelling (`spell`) is greedy: the most likely
letter is fed back until "." or max_len letters.
"""
import numpy as np

from .. import nn
from ..autograd import no_grad
from ..data.digits import DIGIT_NAMES, digit_images
from ..tensor import Tensor, check_sizes
from .training import Task

START, END, IGNORE = "^", ".", -100
SPELLING_SYMBOLS = START + END + "".join(sorted(set("".join(DIGIT_NAMES))))


def encode_names(labels):
    """inputs (T, B) = "^" + name, targets (T, B) = name + "." padded with IGNORE; T = longest name + 1."""
    names = [DIGIT_NAMES[label] for label in labels]
    T = max(len(name) for name in names) + 1
    inputs = np.full((T, len(names)), SPELLING_SYMBOLS.index(END), dtype=np.int64)
    targets = np.full((T, len(names)), IGNORE, dtype=np.int64)
    for b, name in enumerate(names):
        inputs[:len(name) + 1, b] = [SPELLING_SYMBOLS.index(c) for c in START + name]
        targets[:len(name) + 1, b] = [SPELLING_SYMBOLS.index(c) for c in name + END]
    return inputs, targets


class DigitSpeller(nn.Module):
    """Linear(64, H) image encoder -> GRU(E, H) letter decoder -> Linear(H, V).

    forward(images (B, 8, 8), letters (T, B) int) -> logits (T, B, V)   (teacher forcing)
    """

    def __init__(self, hidden_size=32, embedding_size=8, fused=True):
        V = len(SPELLING_SYMBOLS)
        self.config = dict(hidden_size=hidden_size, embedding_size=embedding_size, fused=fused)
        self.encoder = nn.Linear(64, hidden_size)
        self.embedding = nn.Embedding(V, embedding_size)
        self.decoder = nn.GRU(embedding_size, hidden_size, fused=fused)
        self.head = nn.Linear(hidden_size, V)

    def initial_state(self, images):
        flat = Tensor(np.asarray(images, dtype=self.dtype).reshape(len(images), 64))
        return self.encoder(flat).tanh().reshape(1, len(images), -1)      # (1, B, H)

    def forward(self, images, letters, state=None):
        state = self.initial_state(images) if state is None else state
        out, state = self.decoder(self.embedding(letters), state)
        return self.head(out), state

    def spell(self, images, max_len=8):
        """Greedy decoding: a list of B strings (without the end mark)."""
        B = len(images)
        letters = np.full((1, B), SPELLING_SYMBOLS.index(START), dtype=np.int64)
        written, state = [], None
        with no_grad():
            for _ in range(max_len):
                logits, state = self(images, letters, state)
                letters = logits.data.argmax(axis=-1)                     # (1, B)
                written.append(letters[0])
        words = ["".join(SPELLING_SYMBOLS[i] for i in column) for column in np.array(written).T]
        return [word.split(END)[0] for word in words]

    def spelling_accuracy(self, images, labels):
        return float(np.mean([word == DIGIT_NAMES[label] for word, label in zip(self.spell(images), labels)]))


def build_task(hidden_size=32, embedding_size=8, batch_size=32, noise=0.05, fused=True):
    """Spell the name of the digit in an 8×8 image."""
    check_sizes("digit speller", hidden_size=hidden_size, embedding_size=embedding_size,
                batch_size=batch_size)
    model = DigitSpeller(hidden_size, embedding_size, fused)
    test_images, test_labels = digit_images(300, np.random.default_rng(12345), noise)

    def next_batch(rng):
        images, labels = digit_images(batch_size, rng, noise)
        return (images, *encode_names(labels))

    def loss(model, batch):
        images, inputs, targets = batch
        logits, _ = model(images, inputs)
        return nn.cross_entropy(logits, targets, ignore_index=IGNORE)

    return Task("spell", dict(hidden_size=hidden_size, embedding_size=embedding_size, batch_size=batch_size,
                              noise=noise, fused=fused), model, next_batch, loss,
                evaluate=lambda model: {"spelled right": model.spelling_accuracy(test_images, test_labels),
                                        "sample": " ".join(model.spell(test_images[:4]))},
                items_per_batch=batch_size, item_name="image")
