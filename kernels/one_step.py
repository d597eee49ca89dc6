"""Cell kernels for a backend whose kernels run whole sequences: a cell step
is a sequence of length T = 1 (no extra kernel to write or test).

    lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh)  -> h_t, c_t, saved
    lstm_cell_backward(dh_t, dc_t, saved)                -> dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh
    gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh)       -> h_t, saved
    gru_cell_backward(dh_t, saved)                       -> dx, dh, dW_ih, dW_hh, db_ih, db_hh
    rnn_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh") -> h_t, saved
    rnn_cell_backward(dh_t, saved)                       -> dx, dh, dW_ih, dW_hh, db_ih, db_hh

x (B, I), h, c (B, H); `saved` is the sequence kernel's. A backend module
gets all six with ``one_step_cells(sys.modules[__name__])``.
"""
import numpy as np


def one_step_cells(backend):
    """The six cell kernels of `backend` (a module with the *_seq_forward/backward kernels)."""

    def lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh):
        _, h_t, c_t, saved = backend.lstm_seq_forward(x[None], h, c, W_ih, W_hh, b_ih, b_hh)
        return h_t, c_t, saved

    def lstm_cell_backward(dh_t, dc_t, saved):
        dx, *grads = backend.lstm_seq_backward(np.zeros_like(dh_t)[None], dh_t, dc_t, saved)
        return (dx[0], *grads)

    def gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh):
        _, h_t, saved = backend.gru_seq_forward(x[None], h, W_ih, W_hh, b_ih, b_hh)
        return h_t, saved

    def gru_cell_backward(dh_t, saved):
        dx, *grads = backend.gru_seq_backward(np.zeros_like(dh_t)[None], dh_t, saved)
        return (dx[0], *grads)

    def rnn_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
        _, h_t, saved = backend.rnn_seq_forward(x[None], h, W_ih, W_hh, b_ih, b_hh, nonlinearity=nonlinearity)
        return h_t, saved

    def rnn_cell_backward(dh_t, saved):
        dx, *grads = backend.rnn_seq_backward(np.zeros_like(dh_t)[None], dh_t, saved)
        return (dx[0], *grads)

    return (lstm_cell_forward, lstm_cell_backward, gru_cell_forward, gru_cell_backward,
            rnn_cell_forward, rnn_cell_backward)
