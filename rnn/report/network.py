"""The network as the report writes it: each cell's equations and the state it carries."""

from __future__ import annotations

# What the report calls each cell, and the network built of it (with its article: "an LSTM").
CELL_LABELS = {"vanilla": "vanilla", "lstm": "LSTM", "gru": "GRU"}


NETWORKS = {"vanilla": "a vanilla RNN", "lstm": "an LSTM", "gru": "a GRU"}


# Each cell's equations, as part of the report's method (xₜ one-hot, hₜ₋₁ the previous state).
CELL_EQUATIONS = {
    "vanilla": "aₜ = W hₜ₋₁ + U xₜ + b, hₜ = tanh(aₜ)",
    "lstm": (
        "zₜ = W hₜ₋₁ + U xₜ + b, split into four blocks; iₜ = σ(z<sub>i</sub>), "
        "fₜ = σ(z<sub>f</sub>), oₜ = σ(z<sub>o</sub>), gₜ = tanh(z<sub>g</sub>); the memory "
        "sₜ = fₜ ⊙ sₜ₋₁ + iₜ ⊙ gₜ and hₜ = oₜ ⊙ tanh(sₜ) (the forget gate's bias starts at 1)"
    ),
    "gru": (
        "zₜ = σ(W<sub>z</sub> hₜ₋₁ + U<sub>z</sub> xₜ + b<sub>z</sub>), "
        "rₜ = σ(W<sub>r</sub> hₜ₋₁ + U<sub>r</sub> xₜ + b<sub>r</sub>), "
        "nₜ = tanh(W<sub>n</sub> (rₜ ⊙ hₜ₋₁) + U<sub>n</sub> xₜ + b<sub>n</sub>) and "
        "hₜ = (1 − zₜ) ⊙ hₜ₋₁ + zₜ ⊙ nₜ"
    ),
}


STATE = {
    "vanilla": "the hidden state hₜ",
    "lstm": "the state [hₜ; sₜ]",
    "gru": "the hidden state hₜ",
}


def model_html(cell: str, loss: str = "sum", layers: int = 1) -> str:
    """The report's statement of the model: the cell's equations and the output layer; loss
    the loss mode, "sum" or "mean" (rnn.engine.model.LOSSES); layers, how many are stacked."""
    carried = STATE[cell]
    total = "sum" if loss == "sum" else "mean"
    stack = (
        f" The network stacks {layers} such layers: layer l > 1 reads the h of the layer below "
        f"in place of xₜ (Uˡ hₜˡ⁻¹, Uˡ of m columns), each carrying its own state, and V reads "
        f"the top layer's hₜ."
        if layers > 1
        else ""
    )
    return (
        f"<p><b>Model.</b> The network reads the text one character at a time: the character "
        f"at step t is a one-hot vector xₜ over the corpus's K distinct characters, and "
        f"{carried} of m units each is carried from step to step. The {CELL_LABELS[cell]} cell: "
        f"{CELL_EQUATIONS[cell]}.{stack} Then pₜ = softmax(V hₜ + c) are the model's "
        f"probabilities for the next character yₜ. The loss of a sequence is the {total} of "
        f"−ln pₜ[yₜ] over its characters, in nats.</p>"
    )


GATE_ORDER = {"vanilla": "", "lstm": "gates i, f, o, g", "gru": "gates z, r, n"}
