"""The whole report pipeline: papermill executes the notebook, nbconvert renders it."""

import html as html_lib
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from rnn.cli.commands import main as cli
from rnn.errors import BuildError
from rnn.report import build, execution, printing
from rnn.runs import checkpoint
from rnn.runs.config import Config, names
from rnn.runs.lock import LOCK_NAME

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"
TINY = {
    "n_updates": 300,
    "m": 16,
    "sample_every": 100,
    "sample_length": 50,
    "passage_length": 120,
    "eval_every": 100,
    "val_fraction": 0.05,
    "compare_length": 80,
    "prime": "<b>&MACBETH\n",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus") / "tricky.txt"
    # Markup in the corpus must come out as text, never as markup.
    # At the start, so that the validation suffix is ordinary text.
    corpus.write_text(
        "<script>alert(1)</script> & <b>bold</b>\n" * 40 + CORPUS.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("report")
    # A relative OUT, as `make report OUT=...` gives it: the notebook runs in notebooks/.
    html_file = build.build(corpus, Path(os.path.relpath(out)), dict(TINY))
    return out, html_file.read_text(encoding="utf-8")


def test_products_are_written(built):
    out, _ = built
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.ipynb", "metrics.json"}
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["n_updates"] == 300
    assert metrics["best_val_bits_per_char"] > 0


def test_gradient_check_table(built):
    _, html = built
    rows = re.findall(r'<td>([WUbVc])</td><td class="num">([0-9.e+-]+)</td>', html)
    assert [name for name, _ in rows] == list("WUbVc")
    assert all(float(err) < 1e-6 for _, err in rows)


def test_part_one_compares_with_autograd_or_says_it_needs_the_extra(built):
    _, html = built
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "needs the optional extra: pip install '.[torch]'" in html_lib.unescape(html)
        return
    assert "against PyTorch autograd (m = 10)</th>" in html
    rows = re.findall(
        r'<td>([WUbVc])</td>(?:<td[^>]*>[^<]*</td>){3}<td class="num">([0-9.e+-]+)</td>', html
    )
    assert [name for name, _ in rows] == list("WUbVc")
    assert all(float(err) < 1e-7 for _, err in rows)


def test_figure_is_embedded_and_nothing_is_fetched(built):
    _, html = built
    alts = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert len(alts) == 2 and "loss" in alts[0] and "gradient" in alts[1].lower()
    assert "<script" not in html  # no script at all: the report reads offline and prints


def test_part_six_shows_baselines_surprisal_units_and_gradient_flow(built):
    _, html = built
    assert "VI. What the network learned" in html
    for name in ("add-one unigram", "Kneser", "RNN"):
        assert name in html
    assert "print-color-adjust: exact" in html
    assert len(re.findall(r"Unit \d+|unit \d+", html)) >= 3


def test_samples_at_expected_steps_and_passage_length(built):
    _, html = built
    cfg = Config(**TINY)
    sampled = range(0, cfg.n_updates, cfg.sample_every)  # before each multiple's update
    steps = re.findall(r"<h4>step ([0-9,]+) \(", html)
    assert steps == [f"{s:,}" for s in sampled]
    pres = re.findall(r'<pre class="rnn-text">(.*?)</pre>', html, flags=re.S)
    # the samples, the passage (its priming character, the corpus's first, then
    # passage_length more, as part V's), then each temperature and nucleus sampling after
    # the prime
    compared = len(cfg.temperature_list()) + 1
    assert [len(html_lib.unescape(p)) for p in pres] == (
        [cfg.sample_length] * len(sampled)
        + [1 + cfg.passage_length]
        + [len(cfg.prime) + cfg.compare_length] * compared
    )
    assert html_lib.unescape(pres[len(sampled)]).startswith("<")  # the tricky corpus's first
    assert all(html_lib.unescape(p).startswith(cfg.prime) for p in pres[-compared:])


def text_of(html: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def summary_of(html: str) -> str:
    return text_of(re.search(r'<section class="rnn-summary">(.*?)</section>', html, re.S)[1])


def test_the_summary_comes_first_and_states_the_metrics(built):
    out, html = built
    m = json.loads((out / "metrics.json").read_text())
    text = summary_of(html)
    assert html.index("<h1>") < html.index('class="rnn-summary"') < html.index("I. Gradient check")
    bits, perplexity = m["best_val_bits_per_char"], m["best_val_perplexity"]
    assert f"{bits:.3f} bits per character (perplexity {perplexity:.2f})" in text
    assert f"after {m['best_step']:,} updates (Figure 1)" in text
    assert f"the lowest of {len(m['val_steps'])} passes) and scores it" in text
    assert f"300 updates ({m['epochs']:.2f} epochs) in {m['seconds']:.1f} s" in text
    # the gradient check: the largest error of part I's table
    table = re.findall(r'<td>([WUbVc])</td><td class="num">([0-9.e+-]+)</td>', html)
    worst = max(table, key=lambda row: float(row[1]))
    assert m["gradient_check"]["passed"] and m["gradient_check"]["largest_in"] == worst[0]
    assert f"passed: the largest error, {worst[1]} (in {worst[0]}), is below 1e-06" in text
    # the baselines: part VI's table, and the same sentence placing the RNN among them
    assert [name for name, _ in m["baselines"]][:2] == ["uniform (log2 K)", "add-one unigram"]
    for name, value in m["baselines"]:
        assert f'<td>{name}</td><td class="num">{value:.3f}</td>' in html
    placed = re.search(r"Against n-gram models\. (At .*?) \(Table 2\)\.", text)[1]
    assert text_of(html).count(placed) == 2
    # a healthy run: no box
    assert not m["verdict"]["failed"] and 'class="rnn-warning"' not in html


def test_figures_and_tables_are_numbered_and_captioned(built):
    _, html = built
    numbers = {"Figure": [], "Table": []}
    for kind, n in re.findall(r"<b>(Figure|Table) (\d+)\.</b>", html):
        numbers[kind].append(int(n))
    # loss, surprisal, unit passages, gradient flow; part I, baselines, units, the appendix
    assert numbers == {"Figure": [1, 2, 3, 4], "Table": [1, 2, 3, 4]}
    assert re.search(r"<figcaption><b>Figure 1\.</b> Smooth training loss", html)
    assert re.search(r"<b>Table 1\.</b> The largest error of each parameter", html)
    # every parameter in the appendix, after part VI
    appendix = html[html.index("Appendix: the run") :]
    assert html.index("VI. What the network learned") < html.index("Appendix: the run")
    for name in ("cell", "n_updates", "eta", "layout", "ngram_order"):
        assert f'<th scope="row">{name}</th>' in appendix


def test_the_assignment_layout_has_parts_one_to_four(tmp_path):
    params = dict(TINY, prime="", layout="assignment")
    html = build.build(CORPUS, tmp_path / "out", params).read_text()
    for part in ("I. Gradient check", "II. Training loss", "III. Evolution", "IV. A passage"):
        assert part in html
    for left_out in ("V. Sampling controls", "VI. What the network", "Appendix", "Model."):
        assert left_out not in html
    assert 'class="rnn-summary"' in html and "n-gram models" in summary_of(html)
    assert re.findall(r"<b>(Figure|Table) (\d+)\.</b>", html) == [("Table", "1"), ("Figure", "1")]


def failed_box(html: str) -> str:
    box = re.search(r'<div class="rnn-warning" role="alert">(.*?)</div>', html, re.S)
    assert box, "no warning box"
    assert html.index('class="rnn-warning"') < html.index('class="rnn-summary"')
    assert html.index('class="rnn-warning"') < html.index("I. Gradient check")
    return text_of(box[1])


def test_a_run_whose_loss_rose_says_so_at_the_top(tmp_path):
    # eta = 5: the loss rises fivefold without passing rnn.engine.train's divergence limit
    params = dict(TINY, prime="", eta=5.0, n_updates=1000, analysis=False, layout="assignment")
    out = tmp_path / "out"
    html = build.build(CORPUS, out, params).read_text()
    m = json.loads((out / "metrics.json").read_text())
    first, last = m["smooth_loss_every_100"][0], m["final_smooth_loss"]
    assert m["verdict"]["failed"] and last > 2 * first
    box = failed_box(html)
    assert box.startswith(
        f"Training failed. The smooth loss rose from {first:,.1f} to {last:,.1f} over 1,000 "
        f"updates; the validation loss never fell below its value before training"
    )
    assert "Try: lower eta (now 5)." in box
    assert summary_of(html).startswith("SummaryTraining failed: see the box above.")
    assert "(the untrained model: see the box at the top)" in text_of(html)


def test_a_run_whose_validation_never_improved_says_so_at_the_top(tmp_path):
    # The model learns a, b, c in turn; the held-out end of the text runs c, b, a.
    corpus = tmp_path / "cycles.txt"
    corpus.write_text("abc" * 3800 + "cba" * 200, encoding="utf-8")
    params = dict(
        TINY, prime="", m=8, n_updates=400, analysis=False, layout="assignment", passage_length=50
    )
    out = tmp_path / "out"
    html = build.build(corpus, out, params).read_text()
    m = json.loads((out / "metrics.json").read_text())
    assert m["final_smooth_loss"] < m["smooth_loss_every_100"][0]  # training went well
    box = failed_box(html)
    assert box.startswith("Training failed. The validation loss never fell below its value")
    assert "Try: lower eta or train for more updates" in box
    assert m["verdict"]["findings"][0].startswith("the validation loss never fell")


def test_an_unchanged_build_keeps_the_pdf_of_its_run(tmp_path, capsys):
    out, params = tmp_path / "out", dict(TINY, prime="", analysis=False)
    build.build(CORPUS, out, params)
    (out / "report.pdf").write_text("printed from this run's report")
    build.build(CORPUS, out, params)  # the same run, parameters and corpus: rendered again
    assert (out / "report.pdf").read_text() == "printed from this run's report"
    build.build(CORPUS, out, params | {"title": "Another title"})
    assert not (out / "report.pdf").exists()  # it described the previous report
    assert "removed the previous report's report.pdf" in capsys.readouterr().out


def test_sampling_comparison(built):
    _, html = built
    labels = re.findall(
        r'<div class="rnn-cell"><h4>([^<]*)</h4><p>mean log-probability (-?[0-9.]+)', html
    )
    assert [label for label, _ in labels] == [
        "temperature 0.5",
        "temperature 0.8",
        "temperature 1",
        "temperature 1.2",
        "nucleus, top_p = 0.9",
    ]
    logps = [float(v) for _, v in labels]
    assert all(v < 0 for v in logps)
    assert logps[0] > logps[3]  # colder samples are likelier under the model


def provenance(html_file) -> str:
    return re.search(
        r"(trained in this build|continued from|rendered from)[^<]*", Path(html_file).read_text()
    ).group(0)


def test_reuse_is_decided_by_the_training_parameters_and_the_corpus(built, tmp_path):
    out, _ = built
    assert (out / "checkpoint.npz").exists()
    assert provenance(out / "report.html").startswith("trained in this build (")
    params = dict(TINY, prime="MACBETH\n")
    html_file = build.build(CORPUS, out, params)  # another corpus: trained afresh
    assert provenance(html_file).startswith("trained in this build (")
    # A parameter that only changes what is drawn from the model: rendered, not retrained.
    again = build.build(CORPUS, out, params | {"passage_length": 77, "top_p": 0.5})
    assert provenance(again).startswith("rendered from the finished run of ")
    assert "resumed" not in again.read_text()
    fresh = build.build(CORPUS, out, params, retrain=True)
    assert provenance(fresh).startswith("trained in this build (")
    assert not (out / "checkpoint.partial.npz").exists()
    # A default edited in the notebook's own parameters cell is a training parameter too.
    edited = tmp_path / "report.ipynb"
    nb = nbformat.read(str(execution.NOTEBOOK), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = cell.source.replace("eta: float = None ", "eta: float = 0.05 ")
    nbformat.write(nb, str(edited))
    params.pop("eta", None)
    html_file = build.build(CORPUS, out, params, notebook=edited)
    assert provenance(html_file).startswith("trained in this build (")
    assert json.loads((out / "metrics.json").read_text())["config"]["eta"] == 0.05


def test_a_failed_report_keeps_the_previous_report(tmp_path, monkeypatch):
    out = tmp_path / "out"
    build.build(CORPUS, out, dict(TINY, prime=""))
    before = (out / "report.html").read_bytes()
    broken = tmp_path / "report.ipynb"
    nb = nbformat.read(str(execution.NOTEBOOK), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('after training')"))
    nbformat.write(nb, str(broken))
    monkeypatch.setattr(build, "NOTEBOOK", broken)
    with pytest.raises(BuildError, match="after training"):
        build.build(CORPUS, out, dict(TINY, prime="", n_updates=350))
    assert (out / "report.html").read_bytes() == before
    assert (out / "report.failed.ipynb").exists()
    # The report and the checkpoint beside it stay of one run; the new run waits, trained,
    # in the partial file, and the next build renders it without training again.
    assert checkpoint.load(out / "checkpoint.npz")[0].step == 300
    assert checkpoint.load(out / "checkpoint.partial.npz")[0].step == 350
    monkeypatch.undo()
    (out / "report.pdf").write_text("printed from the previous report")
    html_file = build.build(CORPUS, out, dict(TINY, prime="", n_updates=350))
    assert provenance(html_file).startswith("rendered from the finished run of ")
    assert checkpoint.load(out / "checkpoint.npz")[0].step == 350
    assert not (out / "checkpoint.partial.npz").exists()
    assert not (out / "report.pdf").exists()  # it described the previous report


def test_markup_is_escaped(built):
    _, html = built
    cfg = Config(**TINY)
    assert "<b>&MACBETH" not in html  # the priming text, as raw markup
    # each compared sample, the parameter table and the sentence that introduces the samples
    compared = len(cfg.temperature_list()) + 1
    assert html.count("&lt;b&gt;&amp;MACBETH") == compared + 2
    assert "<b>bold</b>" not in html and "<script>alert" not in html


def test_code_is_hidden(built):
    _, html = built
    assert "rnn.gradient_check(" not in html
    assert "import numpy" not in html


def test_papermill_reports_a_bad_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(execution.NOTEBOOK),
            str(tmp_path / "out.ipynb"),
            parameters={"data_path": str(CORPUS), "out_dir": str(tmp_path), "m": -3},
            cwd=str(execution.NOTEBOOK.parent),
            progress_bar=False,
        )
    assert info.value.ename == "ConfigError"
    assert "parameter m must be >= 1, got -3" in info.value.evalue


def test_papermill_reports_a_missing_corpus(tmp_path, finished_run):
    missing = tmp_path / "nope.txt"
    folder, trained = finished_run
    params = {n: getattr(trained.cfg, n) for n in names()}
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(execution.NOTEBOOK),
            str(tmp_path / "out.ipynb"),
            parameters=params | {"data_path": str(missing), "run_dir": str(folder)},
            cwd=str(execution.NOTEBOOK.parent),
            progress_bar=False,
        )
    assert info.value.ename == "DataError"
    assert f"{missing}: no such file" in info.value.evalue


def test_build_command_fails_cleanly_and_keeps_the_previous_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    code = cli(["report", "--data", str(CORPUS), "--out", str(out), "-p", "m", "-3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: parameter m must be >= 1, got -3"
    code = cli(["report", "--data", str(tmp_path / "missing.txt"), "--out", str(out)])
    assert code == 2 and "missing.txt: no such file" in capsys.readouterr().err
    assert (out / "report.html").read_text() == "previous report"


def test_build_failure_inside_the_notebook_keeps_partial_notebook(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    broken = tmp_path / "report.ipynb"
    nb = nbformat.read(str(execution.NOTEBOOK), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure')"))
    nbformat.write(nb, str(broken))
    monkeypatch.setattr(build, "NOTEBOOK", broken)
    code = cli(["report", "--data", str(CORPUS), "--out", str(out), "-p", "n_updates", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert "raised RuntimeError: deliberate failure" in err and "cell [" in err
    assert (out / "report.failed.ipynb").exists()
    assert (out / "report.html").read_text() == "previous report"


def test_unknown_parameter_is_refused(tmp_path, capsys):
    code = cli(["report", "--data", str(CORPUS), "--out", str(tmp_path), "-p", "etaa", "0.1"])
    assert code == 2 and "unknown parameter 'etaa'" in capsys.readouterr().err


def test_parameters_file_is_read_and_checked(tmp_path, capsys):
    good = tmp_path / "p.yaml"
    good.write_text("eta: 0.05\nm: 8\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("eta: [0.1\n")
    args = lambda *extra: cli(
        ["report", "--data", str(CORPUS), "--out", str(tmp_path / "o"), *extra]
    )
    assert args("-f", str(bad)) == 2 and "bad.yaml: not valid YAML" in capsys.readouterr().err
    assert args("-f", str(tmp_path / "none.yaml")) == 2
    assert "none.yaml: no such parameters file" in capsys.readouterr().err
    assert args("-f", str(good), "-p", "m", "-2") == 2  # -p comes after -f and wins
    assert "parameter m must be >= 1, got -2" in capsys.readouterr().err


def test_pdf_prints_what_is_in_out_and_nothing_else(tmp_path, monkeypatch, capsys):
    assert cli(["pdf", "--out", str(tmp_path)]) == 2  # no report there
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'report.html'}: no report to print; run 'make report' first"
    assert list(tmp_path.iterdir()) == []  # nothing was built
    (tmp_path / "report.html").write_text("<html><head></head><body>a report</body></html>")
    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    assert cli(["pdf", "--out", str(tmp_path)]) == 2
    assert "apt-get install chromium" in capsys.readouterr().err


def test_the_build_runs_this_environment_whatever_kernels_the_user_has(tmp_path, monkeypatch):
    # A kernelspec named python3 on JUPYTER_PATH that cannot start ("Kernel died before
    # replying to kernel_info" if it were used).
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/bin/false", "{connection_file}"],
                "display_name": "broken",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    html_file = build.build(CORPUS, tmp_path / "out", dict(TINY, n_updates=50, prime=""))
    assert "Gradient check" in html_file.read_text()


def test_a_full_disk_while_rendering_is_one_line_and_keeps_the_notebook(tmp_path, monkeypatch):
    import errno

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "render", no_space)
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"could not write the report into .* \(No space"):
        build.build(CORPUS, out, dict(TINY, n_updates=50, prime=""))
    assert (out / "report.failed.ipynb").exists()
    assert not (out / "report.html").exists()


def test_papermill_without_cwd_says_to_add_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the notebook's relative default corpus is not found from here
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(execution.NOTEBOOK), str(tmp_path / "out.ipynb"), progress_bar=False
        )
    assert info.value.ename == "DataError"
    assert "papermill --cwd notebooks" in info.value.evalue


# A kernel that fails on any call into the training loop, and says it started guarded.
GUARD = """
import pathlib, sys
import rnn.engine.kernels, rnn.engine.train

def refuse(*args, **kwargs):
    raise AssertionError("the notebook called the training loop")

module = sys.modules["rnn.engine.train"]
for name in ("train", "run_updates_reference", "_run_updates_compiled"):
    setattr(module, name, refuse)
rnn.train = rnn.engine.kernels.run_updates = refuse
pathlib.Path(__file__).with_name("guarded").touch()
"""


@pytest.fixture
def guarded_kernels(tmp_path, monkeypatch):
    """Notebook kernels started from here import a sitecustomize that breaks training."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")])
    )
    return guard / "guarded"


def test_the_notebook_reads_the_run_and_never_trains(finished_run, tmp_path, guarded_kernels):
    folder, trained = finished_run
    # Opened from notebooks/ with its defaults, it reads ../reports, make report's folder.
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    shutil.copytree(folder, reports)
    # The files of the run, not the lock the kernel holds on their folder while it reads
    # (an empty .lock, there or not depending on which test read the folder first).
    files = lambda: {p.name: p.read_bytes() for p in reports.iterdir() if p.name != LOCK_NAME}
    before = files()
    training = {n: getattr(trained.cfg, n) for n in names()}
    executed = notebooks / "report.ipynb"
    execution.execute(execution.NOTEBOOK, executed, training, cwd=notebooks)
    assert guarded_kernels.exists()  # the kernel ran with training broken
    assert files() == before
    assert not (notebooks / "metrics.json").exists()  # out_dir empty: nothing written
    text = executed.read_text()
    assert "rendered from the finished run of " in text and "Gradient check" in text
    # and the guard is real: a notebook asked to train fails on it
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(pm.PapermillExecutionError, match="the notebook called the training"):
        execution.execute(
            execution.NOTEBOOK,
            tmp_path / "trains.ipynb",
            training | {"run_dir": str(empty), "data_path": str(CORPUS), "train_if_missing": True},
            cwd=notebooks,
        )


def test_the_notebook_without_a_run_says_which_command_makes_one(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (tmp_path / "reports").mkdir()
    with pytest.raises(pm.PapermillExecutionError) as info:
        execution.execute(execution.NOTEBOOK, tmp_path / "out.ipynb", {}, cwd=notebooks)
    assert info.value.ename == "RNNError"
    assert info.value.evalue.startswith("no finished run in ../reports: `make report` makes one")
