"""The report as a document: its heading and tables, escaping, the sampling comparison, and
the printed PDF (page size, where the parts end, the font of the model's text, the title)."""

import json
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn.report import (
    build,
    compare,
    execution,
    figures,
    gradients,
    heading,
    markup,
    network,
    printing,
    results,
    seal,
)
from rnn.runs import driver
from rnn.sweep import comparison

CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"
MARKUP = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # those print_pdf looks for
needs_chromium = pytest.mark.skipif(
    not any(shutil.which(b) for b in BROWSERS),
    reason="no Chromium to print the PDF (apt-get install chromium)",
)


CONFIG = {"n_updates": 300, "eta": 0.1, "prime": "", "temperatures": "0.5, 1.0"}


def rows(config=CONFIG, provenance="trained in this build (1.5 s)", corpus="corpus.txt", **changes):
    """header_rows of a small run; changes: the Heading's fields to change."""
    return heading.header_rows(
        heading.Heading("A title", "", "2026-01-02 03:04 UTC", None)._replace(**changes),
        heading.CorpusFacts(corpus, 1000, 30, "ab" * 32, 950, 50),
        config,
        heading.Timing(2.5, 120, 1.5, 200.0),
        provenance,
    )


# --- the heading and the run table ---------------------------------------------------------


def test_header_rows_are_text_and_lead_with_the_identity():
    got = rows(author="A. Student", commit="0123456789")
    assert got[:4] == [
        ("title", "A title"),
        ("author", "A. Student"),
        ("date", "2026-01-02 03:04 UTC"),
        ("commit", "0123456789"),
    ]
    named = dict(got)
    assert named["corpus"] == "corpus.txt (1,000 characters, K = 30)"
    assert named["corpus SHA-256"] == "ab" * 8
    assert named["n_updates"] == "300" and named["prime"] == "''"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in got)
    assert "author" not in dict(rows()) and "commit" not in dict(rows())


def test_run_header_shows_the_title_and_carries_it_in_the_output_metadata():
    shown = heading.run_header(rows(author="A. Student", commit="abc+dirty"))
    data, meta = shown._repr_mimebundle_()
    assert meta == {"rnn": {"title": "A title"}}
    assert "<h1>A title</h1>" in data["text/html"]
    assert "A. Student · 2026-01-02 03:04 UTC · commit abc+dirty" in data["text/html"]
    # page 1 has the run in one line; every row is the appendix's table
    assert (
        '<p class="rnn-runline">300 updates (2.50 epochs), η = 0.1 · corpus.txt'
        in (data["text/html"])
    )
    assert "<table" not in data["text/html"]
    table = shown.table_html()
    assert '<th scope="row">n_updates</th><td class="num">300</td>' in table
    assert '<th scope="row">title</th>' not in table  # the heading's, not again in the table


def test_run_line_names_the_network_its_training_the_corpus_and_the_run():
    config = {"cell": "lstm", "m": 45, "n_updates": 100_000, "seq_length": 25, "eta": 0.1}
    assert heading.run_line(rows(config=config)) == (
        "LSTM cell, m = 45 · 100,000 updates of 25 characters (2.50 epochs), η = 0.1 · "
        "corpus.txt (1,000 characters, K = 30) · trained in this build (1.5 s)"
    )


def test_the_cells_are_named_with_their_articles(small_problem):
    assert "The LSTM cell: " in network.model_html("lstm")
    assert "The GRU cell: " in network.model_html("gru")
    for cell, name in [("vanilla", "a vanilla RNN"), ("lstm", "an LSTM"), ("gru", "a GRU")]:
        params, *_ = small_problem(K=6, m=3, cell=cell)
        errors = {key: 1e-9 for key, _ in params.items()}
        assert f"BPTT gradients of {name} with m = 3" in gradients.gradcheck_html(errors, params, 5)


def test_compact_table_puts_short_rows_in_column_pairs():
    pairs = [(f"p{i}", str(i)) for i in range(7)] + [("long", "x" * 40)]
    got = markup.compact_table(pairs, pairs=3)
    body = re.findall(r"<tr>(.*?)</tr>", got)
    assert len(body) == 1 + 3  # the long row, then 7 short ones in 3 rows of 3 pairs
    assert 'colspan="5"' in body[0]
    assert re.findall(r"<th scope=\"row\">(p\d)</th>", body[1]) == ["p0", "p3", "p6"]
    assert '<td class="num">0</td>' in body[1]  # numbers are set right


def test_git_commit_outside_a_checkout_and_without_git(tmp_path, monkeypatch):
    assert heading.git_commit(tmp_path) is None
    assert heading.git_commit(tmp_path / "missing") is None
    # The tests' own folder: what git says of it, whether or not it is a checkout (the tests
    # may run from an exported tree, or where there is no git).
    here = Path(__file__).parent
    head = shutil.which("git") and subprocess.run(
        ["git", "-C", str(here), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True
    )
    expected = head.stdout.strip() if head and head.returncode == 0 else None
    got = heading.git_commit(here)
    assert (got.removesuffix("+dirty") if got else None) == expected
    monkeypatch.setenv("PATH", str(tmp_path))
    assert heading.git_commit(Path(__file__).parent) is None


def test_git_commit_marks_a_dirty_tree(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "f"], check=True)
    clean = heading.git_commit(tmp_path)
    assert clean and not clean.endswith("+dirty")
    (tmp_path / "f").write_text("b")
    assert heading.git_commit(tmp_path) == clean + "+dirty"


# --- escaping ------------------------------------------------------------------------------


def test_every_user_string_is_escaped_by_the_display_functions():
    shown_header = heading.run_header(
        rows(
            title=MARKUP,
            author=MARKUP,
            corpus=MARKUP,
            config={"prime": MARKUP},
            provenance=MARKUP,
            date=MARKUP,
            commit=MARKUP,
        )
    )
    header = shown_header._repr_html_()
    shown = [
        header,
        markup.table([(MARKUP, MARKUP)], header=(MARKUP,)),
        markup.compact_table([(MARKUP, MARKUP)]),
        markup.pre(MARKUP),
        results.passage_html(MARKUP),
        markup.sampling_grid([(MARKUP, MARKUP, -1.0)]),
        gradients.gradcheck_table({MARKUP: 1e-9}),
    ]
    numbering = markup.Numbering()
    shown += [
        shown_header.table_html(),
        numbering.table("t", MARKUP),
        figures.figure_html(_blank(), alt="", caption=numbering.figure("f", MARKUP)),
        numbering.figure_line("g", MARKUP),
        results.summary_html(
            {
                "best_val_bits_per_char": 3.0,
                "best_val_perplexity": 8.0,
                "best_step": 5,
                "baselines": [[MARKUP, 6.0], [MARKUP, 4.0]],
            },
            10,
            {"validation": MARKUP},
        ),
    ]
    for html in shown:
        assert MARKUP not in html and ESCAPED in html
    # heading: title, author, date, commit; run line: corpus, run; table: corpus, run, prime
    assert header.count(ESCAPED) == 6 and shown[-5].count(ESCAPED) == 3


def _blank():
    from matplotlib.figure import Figure

    return Figure(figsize=(1, 1))


def test_figure_html_has_an_escaped_alt_text():
    from matplotlib.figure import Figure

    got = figures.figure_html(Figure(figsize=(1, 1)), alt=f'a "quoted" {MARKUP}')
    assert re.fullmatch(
        r'<figure class="rnn-figure"><img alt="[^"<>]*" '
        r'src="data:image/png;base64,[A-Za-z0-9+/=]+"></figure>',
        got,
    )
    assert "a &quot;quoted&quot; " + ESCAPED in got


def test_figures_and_tables_are_numbered_in_order_of_first_caption():
    n = markup.Numbering()
    assert n.table("gradcheck", "Errors.") == ('<p class="rnn-caption"><b>Table 1.</b> Errors.</p>')
    assert n.figure("loss", "Loss.") == "<b>Figure 1.</b> Loss."
    assert n.number("Table", "baselines") == 2  # asked for early (the summary refers to it)
    assert n.table("units", "Units.").startswith('<p class="rnn-caption"><b>Table 3.</b>')
    assert n.table("baselines", "Baselines.").startswith('<p class="rnn-caption"><b>Table 2.</b>')
    assert n.table("gradcheck", "Again.").startswith('<p class="rnn-caption"><b>Table 1.</b>')
    assert n.figure_line("flow", "Flow.", above=False) == (
        '<p class="rnn-caption rnn-below"><b>Figure 2.</b> Flow.</p>'
    )
    got = figures.figure_html(_blank(), alt="a", caption=n.figure("loss", "Loss."))
    assert got.endswith("<figcaption><b>Figure 1.</b> Loss.</figcaption></figure>")


def test_loss_figure_marks_validation_where_it_was_measured():
    result = types.SimpleNamespace(
        smooth_loss=np.linspace(100, 50, 300),
        val_steps=np.array([0, 100, 200, 300]),
        val_loss=np.array([4.0, 3.0, 2.5, 2.4]),
        epochs=2.5,
        per_epoch=120,
    )
    lines = figures.loss_figure(result, 25).axes[0].get_lines()
    smooth, validation = lines[0], lines[1]
    assert smooth.get_linestyle() == "-"
    assert validation.get_linestyle() == "None" and validation.get_marker() == "o"
    assert list(validation.get_xdata()) == [0, 100, 200, 300]
    assert list(validation.get_ydata()) == [100.0, 75.0, 62.5, 60.0]


# --- the summary and a failed run's box ----------------------------------------------------

FACTS = {
    "config": {"n_updates": 2000},
    "best_step": 1500,
    "best_smooth_loss": 60.0,
    "epochs": 1.25,
    "seconds": 3.25,
    "updates_per_sec": 615.4,
    "val_steps": [0, 500, 1000, 1500, 2000],
    "best_val_bits_per_char": 2.8314,
    "best_val_perplexity": 7.117,
    "baselines": [
        ["uniform (log2 K)", 6.07],
        ["Kneser-Ney, order 2", 3.58],
        ["Kneser-Ney, order 3", 2.90],
        ["Kneser-Ney, order 4", 2.41],
    ],
    "gradient_check": {
        "errors": {"W": 2.4e-08, "U": 5e-10},
        "largest": 2.4e-08,
        "largest_in": "W",
        "pass_below": 1e-06,
        "passed": True,
    },
    "verdict": {"failed": False, "findings": [], "advice": ""},
}


def test_summary_states_the_score_the_baselines_the_check_and_the_time():
    got = results.summary_html(FACTS, 54714, {"gradient check": "Table 1", "baselines": "Table 2"})
    text = re.sub(r"<[^>]+>", "", got)
    assert "2.831 bits per character (perplexity 7.12) on the held-out last 54,714" in text
    assert "after 1,500 updates" in text and "the lowest of 5 passes" in text
    assert "scores it" in text  # the split that chose the model also scores it
    assert (
        "beats the Kneser-Ney, order 3 model (2.900) and is beaten by the Kneser-Ney, order 4 "
        "model (2.410) (Table 2)."
    ) in text
    assert (
        "passed: the largest error, 2.40e-08 (in W), is below 1e-06 for all of W, U (Table 1)."
        in (text)
    )
    assert "2,000 updates (1.25 epochs) in 3.2 s, 615 updates per second" in text
    assert "failed" not in text.lower() and results.warning_html(FACTS) == ""


def test_summary_of_a_failed_check_and_a_failed_run():
    facts = FACTS | {
        "best_step": 0,
        "gradient_check": {
            "errors": {"W": 2e-3, "U": 1e-9},
            "largest": 2e-3,
            "largest_in": "W",
            "pass_below": 1e-06,
            "passed": False,
        },
        "verdict": {
            "failed": True,
            "findings": ["the smooth loss rose from 104.4 to 571.5 over 2,000 updates"],
            "advice": "lower eta",
        },
    }
    text = re.sub(r"<[^>]+>", "", results.summary_html(facts, 100))
    assert text.startswith("SummaryTraining failed: see the box above.")
    assert "FAILED: the error of W is not below 1e-06 (largest 2.00e-03, in W)" in text
    assert "by the best model, the untrained one" in text
    box = results.warning_html(facts, eta=5.0)
    assert box.startswith('<div class="rnn-warning" role="alert">')
    assert re.sub(r"<[^>]+>", "", box) == (
        "Training failed. The smooth loss rose from 104.4 to 571.5 over 2,000 updates. "
        "Try: lower eta (now 5). The parts below show this run as it is."
    )


def test_summary_without_validation_names_the_smooth_loss():
    facts = {k: v for k, v in FACTS.items() if "val" not in k and k != "baselines"}
    text = re.sub(r"<[^>]+>", "", results.summary_html(facts, 0))
    assert (
        "No validation split (val_fraction = 0): the best model is the one of the lowest " in text
    )
    assert "smooth loss, 60.00 nats per sequence, after 1,500 updates." in text
    assert "n-gram" not in text


def test_layouts_leave_out_tagged_cells():
    assert results.dropped_tags(rnn.Config()) == set()
    assert results.dropped_tags(rnn.Config(analysis=False)) == {"analysis"}
    assert results.dropped_tags(rnn.Config(layout="assignment")) == {"analysis", "full"}
    with pytest.raises(rnn.ConfigError, match="parameter layout must be one of full, assignment"):
        rnn.Config(layout="short")


def test_the_notebook_tags_what_the_assignment_layout_leaves_out():
    nb = json.loads(execution.NOTEBOOK.read_text(encoding="utf-8"))
    kept = [
        "".join(c["source"]).splitlines()[0]
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        and not {"full", "analysis", "remove-cell"} & set(c["metadata"].get("tags", []))
    ]
    headings = [line for line in kept if line.startswith("## ")]
    assert headings == [
        "## I. Gradient check",
        "## II. Training loss",
        "## III. Evolution of synthesized text",
        "## IV. A passage from the best model",
    ]


# --- the sweep's page ------------------------------------------------------------------------


def sweep_summary(tmp_path, fixed, grid, listed, points):
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {
                "name": "cells",
                "corpus": {"path": "/x/shakespeare.txt", "sha256": "ab" * 32},
                "fixed": fixed,
                "grid": grid,
                "listed_points": listed,
                "points": [{"point": n, "status": "done", "params": p} for n, p in points],
            }
        )
    )
    return json.loads((tmp_path / "sweep.json").read_text())


def test_sweep_page_says_the_grid_in_words_and_only_the_shared_parameters(tmp_path):
    base = {"m": 100, "check_m": 5, "eta": 0.1}
    summary = sweep_summary(
        tmp_path,
        fixed={"m": 100, "check_m": 5},
        grid={"cell": ["vanilla", "lstm", "gru"]},
        listed=[{"cell": "lstm", "m": 45}, {"cell": "gru", "m": 54}],
        points=[
            ("cell-vanilla", base | {"cell": "vanilla"}),
            ("cell-lstm", base | {"cell": "lstm"}),
            ("cell-gru", base | {"cell": "gru"}),
            ("cell-lstm_m-45", base | {"cell": "lstm", "m": 45}),
            ("cell-gru_m-54", base | {"cell": "gru", "m": 54}),
        ],
    )
    words = comparison.grid_words(summary)
    assert "m\u00a0=\u00a045" in words  # a setting is never broken across lines
    assert words.replace("\u00a0", " ") == (
        "cell: vanilla, lstm, gru at m = 100; plus lstm with m = 45 and gru with m = 54"
    )
    assert comparison.shared_parameters(summary) == {"check_m": 5}
    assert comparison.title(tmp_path) == "Sweep cells: cell and m compared"
    page = comparison.summary_html(tmp_path)
    assert "<td>check_m\u00a0=\u00a05</td>" in page and "m\u00a0=\u00a0100," not in page
    assert '<table class="rnn-table rnn-keyvalue">' in page
    assert "{" not in page and "[" not in page  # no Python reprs


def test_sweep_grid_of_numbers_in_words(tmp_path):
    summary = sweep_summary(
        tmp_path,
        fixed={"n_updates": 20000},
        grid={"eta": [0.05, 0.1], "m": [50, 100]},
        listed=[{"eta": 0.2, "m": 30}],
        points=[(f"p{i}", {"n_updates": 20000, "eta": 0.1, "m": 50}) for i in range(5)],
    )
    assert comparison.grid_words(summary).replace("\u00a0", " ") == (
        "eta: 0.05, 0.1; m: 50, 100 (every combination); plus eta = 0.2, m = 30"
    )
    assert comparison.shared_parameters(summary) == {"n_updates": 20000}
    assert "n_updates\u00a0=\u00a020,000" in comparison.summary_html(tmp_path)
    assert comparison.title(tmp_path) == "Sweep cells: eta and m compared"


def test_sweep_table_sets_numbers_right_and_names_whole():
    rows = [
        {
            "point": "cell-lstm_m-45",
            "status": "done",
            "error": "",
            "report": "p/r.html",
            "val_bits_per_char": 2.655,
            "best_smooth_loss": 1.804,  # per character (comparison.table divides the sum's)
            "final_smooth_loss": 1.84,
            "n_params": 23422,
            "updates_per_sec": 5199.4,
            "seconds": 20.25,
        },
        {"point": "eta-0.5", "status": "failed", "error": "<diverged>"},
    ]
    got = comparison.table_html(rows)
    assert '<td class="rnn-point"><a href="p/r.html">cell-lstm_m-45</a></td>' in got
    assert '<td class="num">2.655</td><td class="num">1.804</td>' in got
    assert '<td class="num">23,422</td><td class="num">5,199</td><td class="num">20.2</td>' in got
    assert '<th class="num">validation bits/char</th>' in got
    assert "<td>failed: &lt;diverged&gt;</td>" in got


def test_curves_figure_keeps_ten_points_apart():
    points = [{"point": f"eta={i / 10} m={i}", "curve": [5.0 - i / 10] * 4} for i in range(10)]
    fig = comparison.curves_figure(points + [{"point": "failed", "curve": None}])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 10
    assert len({tuple(line.get_color()) for line in lines}) == 10
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [p["point"] for p in points]


# --- the sampling comparison ---------------------------------------------------------------


def test_sampling_comparison_draws_every_setting_from_the_same_numbers(small_problem):
    params, _, _, h0 = small_problem(K=12, m=6, sigma=0.5)
    vocab = rnn.Vocab.from_text("abcdefghijkl")
    prime = np.array([1, 2, 3])
    draws = compare.Draws(prime, 40, seed=7, h0=h0)
    got = compare.sampling_comparison(params, vocab, draws, temperatures=[0.5, 1.0], top_p=0.9)
    assert [label for label, _, _ in got] == [
        "temperature 0.5",
        "temperature 1",
        "nucleus, top_p = 0.9",
    ]
    for (_, text, logp), (t, p) in zip(got, [(0.5, 1.0), (1.0, 1.0), (1.0, 0.9)]):
        how = rnn.Sampling(t, p)
        drawn = rnn.sample_primed(params, prime, 40, np.random.default_rng(7), how, h0=h0)
        assert text == "bcd" + vocab.decode(drawn)
        h = rnn.warm(params, prime, h0.reshape(-1, 1))
        assert logp == pytest.approx(-rnn.mean_loss(params, np.concatenate([[3], drawn]), h0=h))
        assert logp < 0
    assert got == compare.sampling_comparison(
        params, vocab, draws, temperatures=[0.5, 1.0], top_p=0.9
    )


# --- the printed report --------------------------------------------------------------------

SMALL = {
    "title": f"{MARKUP} A report",
    "author": f"{MARKUP} Student",
    "n_updates": 300,
    "m": 16,
    "sample_every": 30,  # ten samples, as at the default parameters
    "sample_length": 200,
    "passage_length": 1000,
    "eval_every": 100,
    "compare_length": 300,
    "prime": f"{MARKUP}\n",
}


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """The report of a small run, on a corpus whose name is markup, as HTML and as PDF."""
    corpus = tmp_path_factory.mktemp("corpus") / f"{MARKUP}.txt"
    # The priming text's characters must be in the corpus.
    corpus.write_text(f"{MARKUP}\n" * 3 + CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path_factory.mktemp("report")
    cfg = rnn.Config(**SMALL)
    driver.run(cfg, driver.prepare(cfg, corpus), out)  # the build trains; the notebook reads
    params = SMALL | {"run_dir": str(out), "out_dir": str(out)}
    execution.execute(execution.NOTEBOOK, out / "report.ipynb", params, cwd=out)
    execution.render(out / "report.ipynb", out / "report.html")
    seal.write_seal(out, out / "checkpoint.npz", "")  # as a build seals what it writes
    return out, (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_user_strings_are_escaped_in_the_report(printed):
    _, html = printed
    assert MARKUP not in html
    for shown in (f"{ESCAPED} A report", f"{ESCAPED} Student", f"{ESCAPED}.txt"):
        assert shown in html
    assert html.count(f"{ESCAPED}\n") >= 5  # the priming text of each compared sample


@pytest.mark.slow
def test_html_title_is_the_reports(printed):
    _, html = printed
    assert re.search(r"<title>(.*?)</title>", html).group(1) == f"{ESCAPED} A report"
    assert f"<h1>{ESCAPED} A report</h1>" in html


@pytest.mark.slow
def test_figure_has_alt_text(printed):
    _, html = printed
    alts = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert len(alts) == 2 and "loss" in alts[0] and "gradient norm" in alts[1]


def pdf_pages(pdf: Path) -> list[dict]:
    """Each page's size (points) and text, read with poppler's pdfinfo and pdftotext."""
    if not (shutil.which("pdfinfo") and shutil.which("pdftotext")):
        pytest.skip("no poppler-utils to read the PDF (apt-get install poppler-utils)")
    info = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "999", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    sizes = re.findall(r"Page +\d+ size: +([0-9.]+) x ([0-9.]+) pts", info)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    return [{"width": float(w), "height": float(h), "text": t} for (w, h), t in zip(sizes, text)]


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize(("paper", "size"), [("a4", (595.3, 841.9)), ("letter", (612, 792))])
def test_pdf_page_size(printed, paper, size):
    out, _ = printed
    pages = pdf_pages(printing.print_pdf(out, paper=paper))
    assert pages
    for page in pages:
        assert page["width"] == pytest.approx(size[0], abs=1)
        assert page["height"] == pytest.approx(size[1], abs=1)


@pytest.mark.slow
@needs_chromium
def test_pdf_first_page_and_where_the_parts_end(printed):
    out, _ = printed
    text = [page["text"] for page in pdf_pages(printing.print_pdf(out))]
    # Page 1: the heading, the run in one line, the summary and the start of part I; every
    # parameter in the appendix at the end.
    assert "A report" in text[0] and "300 updates of 25 characters" in text[0]
    assert "Summary" in text[0] and "bits per character (perplexity" in text[0]
    assert "I. Gradient check" in text[0]
    assert "n_updates" not in text[0] and "n_updates" in text[-1]
    assert "Appendix: the run" in "".join(text[-2:])
    # numbered captions, in print too
    assert re.search(r"Figure 1\. Smooth training loss", "".join(text))
    assert re.search(r"Table 1\. The largest error", "".join(text))
    # Parts I to IV end by page 4: part V starts at the latest at the top of page 5.
    v = next(i for i, t in enumerate(text) if "V. Sampling controls" in t)
    assert v <= 3 or (v == 4 and text[4].lstrip().startswith("V. Sampling controls"))


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    """The report of the same small run in the assignment layout, as the build renders it."""
    out = tmp_path_factory.mktemp("assignment")
    build.build(CORPUS, out, SMALL | {"prime": "", "layout": "assignment"}, progress=False)
    return out


@pytest.mark.slow
@needs_chromium
def test_the_assignment_layout_fits_three_a4_pages(assignment):
    pages = pdf_pages(printing.print_pdf(assignment))
    assert len(pages) <= 3
    assert all(page["width"] == pytest.approx(595.3, abs=1) for page in pages)
    text = "".join(page["text"] for page in pages)
    assert "Summary" in pages[0]["text"]
    for part in ("I. Gradient check", "II. Training loss", "III. Evolution", "IV. A passage"):
        assert part in text
    assert "V. Sampling controls" not in text and "Appendix" not in text


@pytest.mark.slow
@needs_chromium
def test_pdf_title_and_fonts(printed):
    pdfplumber = pytest.importorskip("pdfplumber")
    out, _ = printed
    with pdfplumber.open(printing.print_pdf(out)) as pdf:
        assert pdf.metadata.get("Title") == f"{MARKUP} A report"
        words = [w for page in pdf.pages for w in page.extract_words(extra_attrs=["fontname"])]
    mono = re.compile(r"mono|courier|consol|menlo", re.I)
    set_in_mono = {w["text"] for w in words if mono.search(w["fontname"])}
    prose = {w["text"] for w in words if not mono.search(w["fontname"])}
    assert {"Gradient", "check", "characters"} <= prose
    passage = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["passage"]
    tokens = set(re.findall(r"[A-Za-z]{5,}", passage)) & {w["text"] for w in words}
    assert len(tokens) >= 5
    assert tokens <= set_in_mono, tokens - set_in_mono


def test_table_sets_numbers_and_their_headings_right():
    got = markup.table([("W", "1.2e-09", "yes"), ("b", "", True)], header=("p", "error", "ok"))
    assert '<th>p</th><th class="num">error</th><th>ok</th>' in got
    assert '<td>W</td><td class="num">1.2e-09</td><td>yes</td>' in got
    assert "<td>True</td>" in got
