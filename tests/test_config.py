"""rnn.Config is the one list of run parameters: everything that lists them follows it."""

import json
import re
from pathlib import Path

import pytest

import rnn
from rnn import build, config
from rnn.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def parameters_cell(name="report.ipynb"):
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    return next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))


def test_the_notebooks_parameters_cell_is_generated_from_config():
    source = "".join(parameters_cell()["source"])
    assert source == config.notebook_parameters_source(), (
        "the notebook's parameters cell drifted from rnn.config: "
        "run `python -m rnn parameters --write`"
    )
    assert build.notebook_defaults(build.NOTEBOOK) == {
        p["name"]: p["default"] for p in config.PATH_PARAMETERS + tuple(config.describe())
    }


def test_the_readme_table_is_generated_from_config():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- parameters -->\n(.*?)\n<!-- /parameters -->", readme, re.S)
    assert block, "README.md needs the generated table between <!-- parameters --> markers"
    assert block.group(1) == config.markdown_table(), "run `python -m rnn parameters --write`"


def test_the_command_line_offers_every_training_parameter(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for p in config.describe():
        if p["kind"] in (config.TRAINING, config.RUN):
            assert f"--{p['name']}" in text
            assert " ".join(p["help"].split()) in text, p["name"]


def test_every_parameter_is_checked_and_named_in_the_message():
    bad = {
        "cell": "lsmt",
        "n_updates": -1,
        "m": 0,
        "eta": 0.0,
        "seq_length": 0,
        "sigma": -1.0,
        "seed": -1,
        "sample_every": 0,
        "sample_length": -1,
        "val_fraction": 0.9,
        "eval_every": 0,
        "order": "shuffled",
        "n_chunks": 0,
        "batch_size": 0,
        "checkpoint_every": 0,
        "title": ["x"],
        "author": None,
        "check_m": -1,
        "passage_length": -1,
        "temperatures": "hot",
        "top_p": 0.0,
        "prime": None,
        "compare_length": -1,
        "analysis": "yes",
        "ngram_order": 0,
        "analysis_length": 0,
    }
    assert set(bad) == set(config.names())
    for name, value in bad.items():
        with pytest.raises(rnn.ConfigError, match=f"parameter {name} "):
            rnn.Config(**{name: value})


def test_a_training_parameter_changes_the_training_key_and_a_report_one_does_not():
    base = rnn.Config()
    assert rnn.Config(eta=0.05).training_key() != base.training_key()
    assert rnn.Config(prime="ROMEO", top_p=0.5, title="x").training_key() == base.training_key()
    assert rnn.Config(checkpoint_every=5).training_key() == base.training_key()


def test_from_namespace_takes_exactly_the_configs_names():
    namespace = {"m": 7, "eta": 0.2, "data_path": "x", "unrelated": object()}
    assert rnn.Config.from_namespace(namespace) == rnn.Config(m=7, eta=0.2)


def test_natural_spellings_are_read_as_meant():
    cfg = rnn.Config(temperatures=0.7, title=1984, eta="1e-2")  # -p values, YAML's 1e-2
    assert (cfg.temperatures, cfg.title, cfg.eta) == ("0.7", "1984", 0.01)
    with pytest.raises(rnn.ConfigError, match="parameter m must be an integer, got '5'"):
        rnn.Config(m="5")
