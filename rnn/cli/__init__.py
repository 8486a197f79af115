"""The command line (python -m rnn, or `rnn`) and what `make` hands on to it."""
