"""rnn.Config is the one list of run parameters: everything that lists them follows it."""

import argparse
import json
import re
from pathlib import Path

import pytest

import rnn
from rnn.cli.commands import add_config_arguments, main
from rnn.report import execution
from rnn.runs import config

ROOT = Path(__file__).resolve().parent.parent


def parameters_cell(name="report.ipynb"):
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    return next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))


def test_the_notebooks_parameters_cell_is_generated_from_config():
    source = "".join(parameters_cell()["source"])
    assert source == config.notebook_parameters_source(), (
        "the notebook's parameters cell drifted from rnn.runs.config: "
        "run `python -m rnn parameters --write`"
    )
    assert execution.notebook_defaults(execution.NOTEBOOK) == {
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
        "assignment": "adma",
        "optimizer": "sgd",
        "beta1": 1.0,
        "beta2": -0.1,
        "epsilon": 0.0,
        "gamma": 1.5,
        "loss": "avg",
        "init": "xavier",
        "clip": -1.0,
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
        "layers": 5,
        "dropout": 1.0,
        "dtype": "float16",
        "time_budget": -1.0,
        "lr_decay": 0.0,
        "lr_decay_after": -1,
        "lr_anneal": 1.5,
        "checkpoint_every": 0,
        "title": ["x"],
        "author": None,
        "layout": "short",
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


# --- the preset: assignment sets the defaults of what it governs; a value given wins -------


def resolved(cfg) -> dict:
    return {name: getattr(cfg, name) for name in config.PRESETS["adam"]}


def test_each_preset_resolves_to_its_edition():
    earlier, current = rnn.Config(), rnn.Config(assignment="adam")
    assert earlier.assignment == "adagrad"
    assert resolved(earlier) == dict(
        optimizer="adagrad", eta=0.1, loss="sum", init="sigma", clip=5.0
    )
    assert resolved(current) == dict(
        optimizer="adam", eta=0.001, loss="mean", init="scaled", clip=0.0
    )
    assert earlier.preset_set == resolved(earlier) and current.preset_set == resolved(current)
    assert (current.beta1, current.beta2, current.epsilon) == (0.9, 0.999, 1e-8)
    spec = current.train_spec()
    assert (spec.optimizer, spec.eta, spec.loss, spec.init, spec.clip) == tuple(
        resolved(current).values()
    )


def test_a_value_given_explicitly_wins_over_the_preset():
    cfg = rnn.Config(assignment="adam", eta=0.01, clip=5, loss="sum")
    assert (cfg.optimizer, cfg.eta, cfg.loss, cfg.init, cfg.clip) == (
        "adam",
        0.01,
        "sum",
        "scaled",
        5.0,
    )
    assert cfg.preset_set == {"optimizer": "adam", "init": "scaled"}
    given = cfg.given()
    assert given["eta"] == 0.01 and given["optimizer"] is None and given["init"] is None
    again = rnn.Config.from_dict(given)
    assert again == cfg and again.preset_set == cfg.preset_set
    assert "set optimizer adam, init scaled" in cfg.preset_description()
    # a value equal to the preset's, given, is given: it stays when the preset changes
    kept = rnn.Config(assignment="adam", eta=0.001)
    assert "eta" not in kept.preset_set
    assert rnn.Config.from_dict(kept.given() | {"assignment": "adagrad"}).eta == 0.001
    assert rnn.Config.from_dict(cfg.given() | {"assignment": "adagrad"}).optimizer == "adagrad"


def test_the_training_key_holds_the_resolved_values_not_the_presets_name():
    adam = rnn.Config(assignment="adam")
    spelled_out = rnn.Config(optimizer="adam", eta=0.001, loss="mean", init="scaled", clip=0)
    assert adam.training_key() == spelled_out.training_key()
    assert "assignment" not in adam.training_key()
    assert adam.training_key()["eta"] == 0.001
    assert adam.training_key() != rnn.Config().training_key()
    assert rnn.Config(assignment="adam", beta2=0.99).training_key() != adam.training_key()


def test_every_way_in_tells_a_given_value_from_the_presets(tmp_path):
    # make report / sweeps: the notebook's defaults (None) with -p values over them
    cfg, values = execution.effective_parameters(
        execution.NOTEBOOK, {"assignment": "adam", "eta": 0.01}
    )
    assert values["eta"] == 0.01 and values["optimizer"] is None and values["loss"] is None
    assert (cfg.optimizer, cfg.loss, cfg.eta) == ("adam", "mean", 0.01)
    # the notebook's parameters cell: papermill injects these values, Config resolves them
    assert rnn.Config.from_namespace(values).preset_set == cfg.preset_set
    # the command line: options left out are None

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = vars(parser.parse_args(["--assignment", "adam", "--clip", "2"]))
    assert args["eta"] is None and args["clip"] == 2.0
    cli = rnn.Config.from_dict({k: v for k, v in args.items() if k in config.names()})
    assert cli.preset_set == {"optimizer": "adam", "eta": 0.001, "loss": "mean", "init": "scaled"}


def test_the_training_spec_carries_every_training_parameter_but_the_split():
    """A training parameter added to the list and forgotten in TrainSpec fails here (the
    split, val_fraction, is the driver's: training receives the ids already split)."""
    from dataclasses import fields

    from rnn.engine.spec import TrainSpec

    spec = {f.name for f in fields(TrainSpec)}
    assert spec == set(config.names(config.TRAINING)) - {"assignment", "val_fraction"}
    cfg = rnn.Config(eta=0.05, layers=2, dropout=0.2)
    assert {n: getattr(cfg.train_spec(), n) for n in spec} == {n: getattr(cfg, n) for n in spec}
