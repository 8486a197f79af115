"""The whole report pipeline: papermill executes the notebook, nbconvert renders it."""

import html as html_lib
import json
import os
import re
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from rnn import build, checkpoint

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
    steps = re.findall(r"<h4>step ([0-9,]+) \(", html)
    assert steps == ["0", "100", "200"]
    pres = re.findall(r'<pre class="rnn-text">(.*?)</pre>', html, flags=re.S)
    # three samples, the passage, then four temperatures and nucleus sampling after the prime
    assert [len(html_lib.unescape(p)) for p in pres] == [50, 50, 50, 120] + [12 + 80] * 5
    assert all(html_lib.unescape(p).startswith("<b>&MACBETH\n") for p in pres[4:])


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
    nb = nbformat.read(str(build.NOTEBOOK), as_version=4)
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
    nb = nbformat.read(str(build.NOTEBOOK), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('after training')"))
    nbformat.write(nb, str(broken))
    monkeypatch.setattr(build, "NOTEBOOK", broken)
    with pytest.raises(build.BuildError, match="after training"):
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
    assert "<b>&MACBETH" not in html  # the priming text, as raw markup
    # five samples, the parameter table and the sentence that introduces the samples
    assert html.count("&lt;b&gt;&amp;MACBETH") == 7
    assert "<b>bold</b>" not in html and "<script>alert" not in html


def test_code_is_hidden(built):
    _, html = built
    assert "rnn.gradient_check(" not in html
    assert "import numpy" not in html


def test_papermill_reports_a_bad_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(build.NOTEBOOK),
            str(tmp_path / "out.ipynb"),
            parameters={"data_path": str(CORPUS), "out_dir": str(tmp_path), "m": -3},
            cwd=str(build.NOTEBOOK.parent),
            progress_bar=False,
        )
    assert info.value.ename == "ConfigError"
    assert "parameter m must be >= 1, got -3" in info.value.evalue


def test_papermill_reports_a_missing_corpus(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(build.NOTEBOOK),
            str(tmp_path / "out.ipynb"),
            parameters={"data_path": str(missing), "out_dir": str(tmp_path)},
            cwd=str(build.NOTEBOOK.parent),
            progress_bar=False,
        )
    assert info.value.ename == "DataError"
    assert f"{missing}: no such file" in info.value.evalue


def test_build_command_fails_cleanly_and_keeps_the_previous_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    code = build.main(["--data", str(CORPUS), "--out", str(out), "-p", "m", "-3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: parameter m must be >= 1, got -3"
    code = build.main(["--data", str(tmp_path / "missing.txt"), "--out", str(out)])
    assert code == 2 and "missing.txt: no such file" in capsys.readouterr().err
    assert (out / "report.html").read_text() == "previous report"


def test_build_failure_inside_the_notebook_keeps_partial_notebook(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    broken = tmp_path / "report.ipynb"
    nb = nbformat.read(str(build.NOTEBOOK), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure')"))
    nbformat.write(nb, str(broken))
    monkeypatch.setattr(build, "NOTEBOOK", broken)
    code = build.main(["--data", str(CORPUS), "--out", str(out), "-p", "n_updates", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert "raised RuntimeError: deliberate failure" in err and "cell [" in err
    assert (out / "report.failed.ipynb").exists()
    assert (out / "report.html").read_text() == "previous report"


def test_unknown_parameter_is_refused(tmp_path, capsys):
    code = build.main(["--data", str(CORPUS), "--out", str(tmp_path), "-p", "etaa", "0.1"])
    assert code == 2 and "unknown parameter 'etaa'" in capsys.readouterr().err


def test_parameters_file_is_read_and_checked(tmp_path, capsys):
    good = tmp_path / "p.yaml"
    good.write_text("eta: 0.05\nm: 8\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("eta: [0.1\n")
    args = lambda *extra: build.main(["--data", str(CORPUS), "--out", str(tmp_path / "o"), *extra])
    assert args("-f", str(bad)) == 2 and "bad.yaml: not valid YAML" in capsys.readouterr().err
    assert args("-f", str(tmp_path / "none.yaml")) == 2
    assert "none.yaml: no such parameters file" in capsys.readouterr().err
    assert args("-f", str(good), "-p", "m", "-2") == 2  # -p comes after -f and wins
    assert "parameter m must be >= 1, got -2" in capsys.readouterr().err


def test_pdf_prints_what_is_in_out_and_nothing_else(tmp_path, monkeypatch, capsys):
    assert build.main(["--pdf-only", "--out", str(tmp_path)]) == 2  # no report there
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'report.html'}: no report to print; run 'make report' first"
    assert list(tmp_path.iterdir()) == []  # nothing was built
    (tmp_path / "report.html").write_text("<html><head></head><body>a report</body></html>")
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    assert build.main(["--pdf-only", "--out", str(tmp_path)]) == 2
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
    with pytest.raises(build.BuildError, match=r"could not write the report into .* \(No space"):
        build.build(CORPUS, out, dict(TINY, n_updates=50, prime=""))
    assert (out / "report.failed.ipynb").exists()
    assert not (out / "report.html").exists()


def test_papermill_without_cwd_says_to_add_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the notebook's relative default corpus is not found from here
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(build.NOTEBOOK), str(tmp_path / "out.ipynb"), progress_bar=False)
    assert info.value.ename == "DataError"
    assert "papermill --cwd notebooks" in info.value.evalue
