"""Hyperparameter sweeps: a grid of report builds run on Dask, and the page comparing them."""
