"""The project's own promises: pinned environment in step, notebooks stored without outputs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins_from_requirements():
    pins = {}
    text = (ROOT / "requirements.txt").read_text() + (ROOT / "requirements-dev.txt").read_text()
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_environment_yml_names_the_same_pinned_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep and not dep.startswith("python="):
            name, version = dep.split("=")
            conda[name.lower()] = version
    assert conda == pins_from_requirements()


def test_constraints_agree_with_requirements():
    constraints = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.strip().split("==")
            constraints[name.lower().replace("_", "-")] = version
    for name, version in pins_from_requirements().items():
        assert constraints[name] == version, name


def test_the_torch_extra_is_pinned_exactly_and_locked():
    # An exact pin: a range would let pip fetch a multi-GB CUDA build instead of the CPU one.
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = pyproject["project"]["optional-dependencies"]["torch"]
    name, version = pin.split("==")
    constraints = dict(
        line.strip().split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert name == "torch" and constraints["torch"] == version
    makefile = (ROOT / "Makefile").read_text()
    assert "'.[torch]'" in makefile.split("\nlock:")[1].split("\n\n")[0]  # make lock pins it too
    assert "make torch" in (ROOT / ".ci" / "run").read_text()  # CI runs the tests that need it


def test_notebooks_are_committed_without_outputs(tmp_path):
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 4  # report, sweep, explore, bonus
    check = [sys.executable, str(ROOT / "tools" / "check_notebooks.py")]
    assert subprocess.run(check + notebooks).returncode == 0
    # and the check (pre-commit's hook) does catch an executed notebook
    nb = json.loads(Path(notebooks[0]).read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 1
    (tmp_path / "dirty.ipynb").write_text(json.dumps(nb))
    assert (
        subprocess.run(check + [str(tmp_path / "dirty.ipynb")], capture_output=True).returncode == 1
    )


def test_one_parameters_cell_with_typed_commented_literals():
    nb = json.loads((ROOT / "notebooks" / "report.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    lines = [l for l in "".join(tagged[0]["source"]).splitlines() if l and not l.startswith("#")]
    for line in lines:
        assert re.fullmatch(r"\w+: (int|float|str|bool) = \S.* +# .+", line), line


def test_papermill_documents_the_parameters():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "--help-notebook",
            str(ROOT / "notebooks" / "report.ipynb"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    nb = json.loads((ROOT / "notebooks" / "report.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    names = re.findall(r"^(\w+):", "".join(cell["source"]), flags=re.M)
    assert len(names) > 15
    for name in names:
        assert re.search(rf"^\s+{name}: ", out, flags=re.M), name
    assert "learning rate (None: the preset's" in out


def test_the_public_api_is_typed():
    import inspect

    import rnn

    for name in rnn.__all__:
        obj = getattr(rnn, name)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            untyped = [
                p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty
            ]
            assert not untyped and sig.return_annotation is not inspect.Signature.empty, name


MAX_PARAMETERS = 6  # of any public function outside the compiled kernels (self, cls not counted)


def public_functions():
    """(qualified name, function) for every public function of every module of rnn/ but the
    compiled kernels: module-level functions and the public methods of public classes, each
    where it is defined."""
    import importlib
    import inspect
    import pkgutil

    import rnn

    for info in pkgutil.walk_packages(rnn.__path__, "rnn."):
        if info.name == "rnn.engine.kernels" or info.name.startswith("rnn.engine.kernels."):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    member = getattr(member, "__func__", member)  # classmethod, staticmethod
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{module.__name__}.{name}.{attr}", member


def test_no_public_function_takes_more_than_six_parameters():
    import inspect

    found = dict(public_functions())
    assert (
        "rnn.runs.driver.run" in found and "rnn.report.heading.header_rows" in found
    )  # it looks everywhere
    assert not any(name.startswith("rnn.engine.kernels") for name in found)
    over = {}
    for name, function in found.items():
        params = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        if len(params) > MAX_PARAMETERS:
            over[name] = len(params)
    assert over == {}
