"""The race: a configuration of this package against PyTorch's char-rnn, the same seconds of
one-thread training each."""
