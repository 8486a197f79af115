"""AdaGrad with its state in plain sight, and the gradient clipping that precedes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Params

EPS = 1e-8
CLIP = 5.0


@dataclass
class AdaGrad:
    """AdaGrad: G += g^2; theta -= eta * g / sqrt(G + eps).

    `G` (a Params of running sums of squared gradients) is the whole state: it is what a
    checkpoint saves and what `step` returns anew.
    """

    eta: float = 0.1
    eps: float = EPS

    def step(self, params: Params, grads: Params, G: Params) -> tuple[Params, Params]:
        """(next_params, next_G); the inputs are left as they were."""
        next_G = Params(**{name: G_p + getattr(grads, name) ** 2 for name, G_p in G.items()})
        next_params = Params(
            **{
                name: w
                - self.eta * getattr(grads, name) / np.sqrt(getattr(next_G, name) + self.eps)
                for name, w in params.items()
            }
        )
        return next_params, next_G


def clip(grads: Params, bound: float = CLIP) -> Params:
    """Each gradient entry clipped to [-bound, bound] (the original's guard against explosion)."""
    return grads.map(lambda g: np.clip(g, -bound, bound))
