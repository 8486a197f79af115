"""The mathematics: the cells, the network and its backpropagation through time, the compiled
kernels, the optimizers, the training loop, sampling and the gradient check. Nothing here
reads or writes the user's files (only numba's cache of the kernels)."""
