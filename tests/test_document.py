"""The report as a document: its heading and tables, escaping, the sampling comparison, and
the printed PDF (page size, where the parts end, the font of the model's text, the title)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn import build, compare, report

CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"
MARKUP = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # those print_pdf looks for
needs_chromium = pytest.mark.skipif(
    not any(shutil.which(b) for b in BROWSERS),
    reason="no Chromium to print the PDF (apt-get install chromium)",
)


def rows(**changes):
    values = dict(
        title="A title",
        author="",
        corpus="corpus.txt",
        characters=1000,
        K=30,
        corpus_sha256="ab" * 32,
        n_train=950,
        n_val=50,
        config={"n_updates": 300, "eta": 0.1, "prime": "", "temperatures": "0.5, 1.0"},
        epochs=2.5,
        per_epoch=120,
        seconds=1.5,
        updates_per_sec=200.0,
        provenance="trained in this build (1.5 s)",
        run_date="2026-01-02 03:04 UTC",
        commit=None,
    )
    return report.header_rows(**(values | changes))


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
    shown = report.run_header(rows(author="A. Student", commit="abc+dirty"))
    data, meta = shown._repr_mimebundle_()
    assert meta == {"rnn": {"title": "A title"}}
    assert "<h1>A title</h1>" in data["text/html"]
    assert "A. Student · 2026-01-02 03:04 UTC · commit abc+dirty" in data["text/html"]
    assert '<th scope="row">title</th>' not in data["text/html"]  # not again in the table


def test_compact_table_puts_short_rows_in_column_pairs():
    pairs = [(f"p{i}", str(i)) for i in range(7)] + [("long", "x" * 40)]
    got = report.compact_table(pairs, pairs=3)
    body = re.findall(r"<tr>(.*?)</tr>", got)
    assert len(body) == 1 + 3  # the long row, then 7 short ones in 3 rows of 3 pairs
    assert 'colspan="5"' in body[0]
    assert re.findall(r"<th scope=\"row\">(p\d)</th>", body[1]) == ["p0", "p3", "p6"]
    assert '<td class="num">0</td>' in body[1]  # numbers are set right


def test_git_commit_outside_a_checkout_and_without_git(tmp_path, monkeypatch):
    assert report.git_commit(tmp_path) is None
    assert report.git_commit(tmp_path / "missing") is None
    here = report.git_commit(Path(__file__).parent)
    if here is not None:  # the tests may run from an exported tree
        assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", here)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert report.git_commit(Path(__file__).parent) is None


def test_git_commit_marks_a_dirty_tree(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "f"], check=True)
    clean = report.git_commit(tmp_path)
    assert clean and not clean.endswith("+dirty")
    (tmp_path / "f").write_text("b")
    assert report.git_commit(tmp_path) == clean + "+dirty"


# --- escaping ------------------------------------------------------------------------------


def test_every_user_string_is_escaped_by_the_display_functions():
    header = report.run_header(
        rows(
            title=MARKUP,
            author=MARKUP,
            corpus=MARKUP,
            config={"prime": MARKUP},
            provenance=MARKUP,
            run_date=MARKUP,
            commit=MARKUP,
        )
    )._repr_html_()
    shown = [
        header,
        report.table([(MARKUP, MARKUP)], header=(MARKUP,)),
        report.compact_table([(MARKUP, MARKUP)]),
        report.pre(MARKUP),
        report.passage_html(MARKUP),
        report.sampling_grid([(MARKUP, MARKUP, -1.0)]),
        report.gradcheck_table({MARKUP: 1e-9}),
    ]
    for html in shown:
        assert MARKUP not in html and ESCAPED in html
    assert header.count(ESCAPED) == 7


def test_figure_html_has_an_escaped_alt_text():
    from matplotlib.figure import Figure

    got = report.figure_html(Figure(figsize=(1, 1)), alt=f'a "quoted" {MARKUP}')
    assert re.fullmatch(
        r'<figure class="rnn-figure"><img alt="[^"<>]*" '
        r'src="data:image/png;base64,[A-Za-z0-9+/=]+"></figure>',
        got,
    )
    assert "a &quot;quoted&quot; " + ESCAPED in got


def test_curves_figure_keeps_ten_points_apart():
    points = [{"point": f"eta={i / 10} m={i}", "curve": [5.0 - i / 10] * 4} for i in range(10)]
    fig = report.curves_figure(points + [{"point": "failed", "curve": None}])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 10
    assert len({tuple(line.get_color()) for line in lines}) == 10
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [p["point"] for p in points]


# --- the sampling comparison ---------------------------------------------------------------


def test_sampling_comparison_draws_every_setting_from_the_same_numbers(small_problem):
    params, _, _, h0 = small_problem(K=12, m=6, sigma=0.5)
    vocab = rnn.Vocab.from_text("abcdefghijkl")
    prime = np.array([1, 2, 3])
    got = compare.sampling_comparison(
        params, vocab, prime, 40, temperatures=[0.5, 1.0], top_p=0.9, seed=7, h0=h0
    )
    assert [label for label, _, _ in got] == [
        "temperature 0.5",
        "temperature 1",
        "nucleus, top_p = 0.9",
    ]
    for (_, text, logp), (t, p) in zip(got, [(0.5, 1.0), (1.0, 1.0), (1.0, 0.9)]):
        drawn = rnn.sample_primed(params, prime, 40, np.random.default_rng(7), t, p, h0=h0)
        assert text == "bcd" + vocab.decode(drawn)
        h = rnn.warm(params, prime, h0.reshape(-1, 1))
        assert logp == pytest.approx(-rnn.mean_loss(params, np.concatenate([[3], drawn]), h0=h))
        assert logp < 0
    assert got == compare.sampling_comparison(
        params, vocab, prime, 40, temperatures=[0.5, 1.0], top_p=0.9, seed=7, h0=h0
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
    params = SMALL | {"data_path": str(corpus), "out_dir": str(out)}
    build.execute(build.NOTEBOOK, out / "report.ipynb", params, cwd=out)
    build.render(out / "report.ipynb", out / "report.html")
    build.write_seal(out, out / "checkpoint.npz", "")  # as a build seals what it writes
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
    pages = pdf_pages(build.print_pdf(out, paper=paper))
    assert pages
    for page in pages:
        assert page["width"] == pytest.approx(size[0], abs=1)
        assert page["height"] == pytest.approx(size[1], abs=1)


@pytest.mark.slow
@needs_chromium
def test_pdf_first_page_and_where_the_parts_end(printed):
    out, _ = printed
    text = [page["text"] for page in pdf_pages(build.print_pdf(out))]
    # Page 1: the heading, the run table and the start of part I.
    assert "A report" in text[0] and "n_updates" in text[0]
    assert "I. Gradient check" in text[0]
    # Parts I to IV end by page 4: part V starts at the latest at the top of page 5.
    v = next(i for i, t in enumerate(text) if "V. Sampling controls" in t)
    assert v <= 3 or (v == 4 and text[4].lstrip().startswith("V. Sampling controls"))


@pytest.mark.slow
@needs_chromium
def test_pdf_title_and_fonts(printed):
    pdfplumber = pytest.importorskip("pdfplumber")
    out, _ = printed
    with pdfplumber.open(build.print_pdf(out)) as pdf:
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
    got = report.table([("W", "1.2e-09", "yes"), ("b", "", True)], header=("p", "error", "ok"))
    assert '<th>p</th><th class="num">error</th><th>ok</th>' in got
    assert '<td>W</td><td class="num">1.2e-09</td><td>yes</td>' in got
    assert "<td>True</td>" in got
