"""rnn.report.explore, what notebooks/explore.ipynb shows, on a small finished run; and the notebook
itself, executed headless."""

import html as html_lib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn.report import execution, explore
from rnn.report.analysis import units

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.ipynb"


@pytest.fixture(scope="module")
def ex(finished_run):
    folder, _ = finished_run
    return explore.open_run(folder)


def sampled_text(page: str) -> str:
    """The sample as text: what follows the bold priming text."""
    body = re.search(r"</b>(.*)</div>$", page, flags=re.S).group(1)
    return html_lib.unescape(body)


def test_a_sample_follows_its_settings_and_draws_the_same_numbers(ex):
    page = explore.sample_html(ex, "MACBETH", 0.8, 1.0, 120, seed=3)
    assert "<b>MACBETH</b>" in page and len(sampled_text(page)) == 120
    assert page == explore.sample_html(ex, "MACBETH", 0.8, 1.0, 120, seed=3)  # pure
    result = ex.run.result
    expected = rnn.sample_primed(
        result.best_params,
        ex.vocab.encode("MACBETH"),
        120,
        np.random.default_rng(3),
        rnn.Sampling(0.8, 1.0),
        h0=result.best_h,
    )
    assert sampled_text(page) == ex.vocab.decode(expected)
    # temperature 0 is the argmax: the same text whatever the seed
    cold = [sampled_text(explore.sample_html(ex, "MACBETH", 0.0, 1.0, 60, seed=s)) for s in (1, 2)]
    assert cold[0] == cold[1]
    assert sampled_text(explore.sample_html(ex, "MACBETH", 0.8, 1.0, 60, seed=4)) != cold[0]


def test_bad_settings_are_one_line_not_an_exception(ex):
    cases = {
        ("", 1.0, 1.0, 10): "The priming text is empty",
        ("\u2713 caf\u00e9", 1.0, 1.0, 10): "2 characters the corpus never uses",
        ("A", 1.0, 1.0, -1): "The length must be a whole number from 0 to",
        ("A", -0.5, 1.0, 10): "The temperature must be a number >= 0",
        ("A", 1.0, 0.0, 10): "top-p must be in (0, 1]",
    }
    for args, expected in cases.items():
        page = explore.sample_html(ex, *args)
        assert page.startswith('<p class="rnn-explore-problem"') and page.count("<p") == 1
        assert html_lib.escape(expected) in page, (args, page)


def test_surprisal_shades_each_character_by_the_models_bits(ex):
    text = ex.passage[:80]
    page = explore.surprisal_html(ex, text)
    bits = [float(b) for b in re.findall(r'title="([0-9.]+) bits"', page)]
    assert len(bits) == len(text) - 1 and 'title="read only"' in page  # the first is only read
    result = ex.run.result
    ids = ex.vocab.encode(text)
    mean_bits = rnn.mean_loss(result.best_params, ids, h0=result.best_h) / math.log(2)
    assert np.mean(bits) == pytest.approx(mean_bits, abs=0.01)  # titles are rounded
    assert f"mean {mean_bits:.3f} bits per character" in page
    assert "never uses" in explore.surprisal_html(ex, "caf\u00e9 <b>")
    assert "&lt;" in explore.surprisal_html(ex, "<b>&")  # markup from the box is text


def test_the_unit_picker_offers_every_unit_once_tracked_ones_first(ex):
    choices = explore.unit_choices(ex)
    m = ex.model.m
    assert sorted(unit for _, unit in choices) == list(range(m))
    tracked = units.strongest(ex.matches, m)
    assert [unit for _, unit in choices[: len(tracked)]] == [mt.unit for mt in tracked]
    assert choices[0][0].startswith(f"unit {tracked[0].unit}: {tracked[0].name} (r = ")


def test_a_unit_shades_the_passage_by_its_activation(ex):
    unit = explore.unit_choices(ex)[0][1]
    page = explore.unit_html(ex, unit)
    shown = [float(v) for v in re.findall(r'title="([+-][0-9.]+)"', page)]
    result = ex.run.result
    reading = rnn.report.analysis.surprisal.read(
        result.best_params, ex.vocab.encode(ex.passage), result.best_h
    )
    np.testing.assert_allclose(shown, reading.h[:, unit], atol=0.005)
    assert "There is no unit 99" in explore.unit_html(ex, 99)
    assert "never uses" in explore.unit_html(ex, unit, "\u2713")


def test_no_run_is_one_line_naming_the_command(tmp_path):
    with pytest.raises(rnn.RNNError, match=r"^no finished run in .*: `make report` makes one"):
        explore.open_run(tmp_path)


@pytest.mark.slow
def test_the_notebook_executes_headless_over_a_finished_run(finished_run, tmp_path):
    folder, _ = finished_run
    out = tmp_path / "explore.ipynb"
    execution.execute(NOTEBOOK, out, {"run_dir": str(folder)}, cwd=NOTEBOOK.parent)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    # the widgets were drawn: their state holds the sample, the shading and the unit
    state = json.dumps(nb["metadata"]["widgets"])
    assert "characters at temperature 0.8, top-p 1" in state
    assert "bits per character over the" in state and "activation of the unit" in state


def test_the_default_priming_text_is_the_reports(ex):
    # part V's: the run's prime, else the corpus's first character
    assert ex.run.cfg.prime == ""
    first = (Path(__file__).parent / "data" / "macbeth-act1.txt").read_text(encoding="utf-8")[0]
    assert ex.prime == first
