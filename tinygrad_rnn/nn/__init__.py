"""Neural-network building blocks: modules, recurrent cells and layers, losses."""
from .module import Dropout, Embedding, Linear, Module, Sequential, dropout
from .cells import GRUCell, LeakyRNNCell, LSTMCell, RecurrentCell, RNNCell
from .recurrent import GRU, LSTM, RNN, RecurrentLayer
from .losses import bce_with_logits, cross_entropy, mse_loss
from .attention import AdditiveAttention, DotAttention
from .conv import Conv1d
from .seq2seq import Seq2Seq
from . import utils

__all__ = ["Dropout", "Embedding", "Linear", "Module", "Sequential", "GRUCell", "LeakyRNNCell",
           "LSTMCell", "RNNCell", "RecurrentCell", "GRU", "LSTM", "RNN", "RecurrentLayer", "bce_with_logits", "cross_entropy", "mse_loss",
           "AdditiveAttention", "DotAttention", "Conv1d", "Seq2Seq", "dropout", "utils"]
