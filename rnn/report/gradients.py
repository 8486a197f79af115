"""Part I: the gradient check's table of relative errors, with PyTorch's column when
it ran."""

from __future__ import annotations

from rnn.report.markup import escape, table
from rnn.report.network import GATE_ORDER, NETWORKS


def gradcheck_html(errors: dict, params, T: int, autograd=None, caption: str = "") -> str:
    """Part I: how the check was made, the cell's parameters, and the table (with autograd's
    column when given an rnn.engine.torchref.AutogradCheck; after `caption`, a Numbering.table line,
    when given)."""
    from rnn.engine.gradcheck import DELTA, FULL_UP_TO, REL_FLOOR, SAMPLE

    shapes = ", ".join(
        f"{name} {value.shape[0]} × {value.shape[1]}" for name, value in params.items()
    )
    stacked = f" ({GATE_ORDER[params.cell]} stacked row-wise)" if GATE_ORDER[params.cell] else ""
    depth, dropout = "", ""
    if params.layers > 1:
        depth = f" of {params.layers} layers"
        dropout = (
            " The upper layers' W2, U2, b2 ... are checked like the first's (U2 reads the h of "
            "the layer below), with dropout off: its masks are constants BPTT multiplies by, "
            "and the test suite checks the stack with masks by complex step."
        )
        if autograd is not None:  # PyTorch's column is of a single layer: not this network
            caption = (
                "<p>The comparison with PyTorch's autograd is made for one layer only and is "
                "not shown for this stacked network.</p>" + caption
            )
            autograd = None
    return (
        f"<p>BPTT gradients of {NETWORKS[params.cell]}{depth} with m = {params.m} hidden units "
        f"on the corpus's first {T} characters: {shapes}{stacked}. Each is compared with the "
        f"fourth-order centered difference g<sub>n</sub> = [8 (L(θ + δ) − L(θ − δ)) − "
        f"(L(θ + 2δ) − L(θ − 2δ))] / 12δ, δ = {DELTA:g}, computed in float64; the error of an "
        f"entry is |g<sub>a</sub> − g<sub>n</sub>| / max({REL_FLOOR:g}, |g<sub>a</sub>| + "
        f"|g<sub>n</sub>|), g<sub>a</sub> being the BPTT gradient. A parameter of at most "
        f"{FULL_UP_TO:,} entries is checked entry by entry, a larger one on {SAMPLE} entries "
        f"drawn at random (for U, half of them in the columns of the characters the sequence "
        f"reads: U's gradient is zero elsewhere).{dropout}</p>"
        + caption
        + gradcheck_table(errors, autograd)
    )


def gradcheck_table(errors: dict, autograd=None) -> str:
    """One row per parameter: its largest error, the entries it was taken over, the verdict;
    given autograd (an rnn.engine.torchref.AutogradCheck), a last column with the largest error
    against PyTorch's autograd and a sentence on how it was made, or, when torch is not
    installed, a sentence saying that column needs the optional extra."""
    from rnn.engine.gradcheck import PASS_BELOW, REL_FLOOR

    def entries(err) -> str:
        checked, size = getattr(err, "checked", None), getattr(err, "size", None)
        if checked is None or checked == size:
            return f"all {size:,}" if size is not None else ""
        return f"{checked:,} of {size:,}, at random"

    header = ("parameter", "largest error", "entries checked", f"below {PASS_BELOW:g}")
    rows = [
        (name, f"{err:.2e}", entries(err), "yes" if err < PASS_BELOW else "NO")
        for name, err in errors.items()
    ]
    if autograd is None:
        return table(rows, header=header)
    if not autograd.available:
        return table(rows, header=header) + (
            f"<p>A second column, the largest error against PyTorch's automatic "
            f"differentiation, {escape(autograd.missing)}.</p>"
        )
    net = f"m = {autograd.m}"
    header += (f"against PyTorch autograd ({net})",)
    rows = [row + (f"{autograd.errors[row[0]]:.2e}",) for row in rows]
    return table(rows, header=header) + (
        f"<p>The last column compares the same BPTT, for a {escape(autograd.cell)} network with "
        f"{net} on the first {autograd.seq_length} characters ({escape(autograd.loss)} of the "
        f"losses), with the gradients PyTorch {escape(autograd.torch_version)}'s automatic "
        f"differentiation takes through a forward pass written in torch from the same "
        f"equations, in float64, over every entry, with the same error measure (floor "
        f"{REL_FLOOR:g}).</p>"
    )
