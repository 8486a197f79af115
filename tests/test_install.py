"""An installed (non-editable) copy of the package builds a report, and serves as a sweep's
worker that cannot see the project folder."""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from rnn.sweep import execute, grid

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"
TINY = {
    "n_updates": 100,
    "m": 8,
    "sample_every": 50,
    "eval_every": 50,
    "passage_length": 40,
    "compare_length": 20,
    "check_m": 2,
    "analysis": False,
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel of this tree installed into a folder of its own (its dependencies are the
    test environment's); returns the environment that imports it instead of the tree."""
    tmp = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # Built from a copy: setuptools writes its build/ folder beside the sources.
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "data", "reports", "build", "__pycache__", "*.egg-info"
        ),
    )
    subprocess.run(pip + ["wheel", "--no-deps", "-w", str(tmp / "wheel"), str(src)], check=True)
    wheel = next((tmp / "wheel").glob("rnn-*.whl"))
    subprocess.run(
        pip + ["install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True
    )
    env = dict(os.environ, PYTHONPATH=str(tmp / "site"))
    return tmp, wheel, env


def test_the_wheel_holds_every_module_notebook_and_template(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    tree = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "rnn").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert tree <= names
    assert {"rnn/notebooks/report.ipynb", "rnn/notebooks/sweep.ipynb"} <= names


def test_an_installed_copy_builds_a_report_from_any_folder(installed):
    tmp, _, env = installed
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import rnn, rnn.report.execution as b; print(rnn.__file__, b.NOTEBOOK)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module, notebook = where.stdout.split()
    assert module.startswith(str(tmp / "site")) and notebook.startswith(str(tmp / "site"))
    args = [sys.executable, "-m", "rnn", "report", "--data", str(CORPUS), "--out", "out"]
    for name, value in TINY.items():
        args += ["-p", name, str(value)]
    done = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Gradient check" in (elsewhere / "out" / "report.html").read_text()


def test_a_sweep_point_runs_on_a_worker_that_cannot_see_the_project(installed, tmp_path):
    tmp, _, env = installed
    worker_home = tmp_path / "worker"
    worker_home.mkdir()
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen(
        dask
        + [
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        ],
        cwd=worker_home,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        for _ in range(100):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(worker_home),
            ],
            cwd=worker_home,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
            (where,) = client.run(lambda: (__import__("rnn").__file__, os.getcwd())).values()
        assert where[0].startswith(str(tmp / "site")) and where[1] == str(worker_home)

        spec_file = tmp_path / "remote.yaml"
        spec_file.write_text(
            yaml.safe_dump(
                {"name": "remote", "data": str(CORPUS), "fixed": TINY, "grid": {"eta": [0.05, 0.1]}}
            )
        )
        spec = grid.load_spec(spec_file)
        records = execute.run_sweep(
            spec, tmp_path / "remote", scheduler=address, log=lambda _: None
        )
        assert [r["status"] for r in records] == ["done", "done"]
        for name in ("eta-0.05", "eta-0.1"):
            point = tmp_path / "remote" / "points" / name
            assert {"report.html", "metrics.json", "checkpoint.npz", "point.json"} <= {
                p.name for p in point.iterdir()
            }
        assert not list(worker_home.rglob("report.html"))  # built in the worker's own temp
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
