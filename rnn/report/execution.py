"""The report's notebooks executed and rendered: their parameters as on disk, the effective
ones, papermill in the project's own kernel, nbconvert with the report's template."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rnn.errors import RNNError
from rnn.runs import lock
from rnn.runs.config import Config
from rnn.runs.paths import TEMPLATES, notebook_path

# The notebook's path parameters (rnn.runs.config.PATH_PARAMETERS) are the build's to set.
SET_BY_BUILD = {
    "data_path": "give the corpus as DATA=... (--data)",
    "out_dir": "give the folder as OUT=... (--out)",
    "run_dir": "the run's checkpoints live in OUT",
    "run_checkpoint": "the build names the run it trained",
    "build_id": "the build sets it",
    "train_if_missing": "the build trains before the notebook reads",
}


NOTEBOOK = notebook_path("report.ipynb")


def notebook_defaults(notebook: Path) -> dict:
    """The values of the notebook's `parameters` cell as it is on disk: literals only."""
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    except FileNotFoundError:
        raise RNNError(f"{notebook}: the report notebook is missing (git checkout it)") from None
    except OSError as err:
        raise RNNError(f"{notebook}: cannot be read ({err.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError):  # truncated or not a notebook
        raise RNNError(
            f"{notebook}: not a readable notebook (truncated or edited?); restore it with "
            f"git checkout"
        ) from None
    if len(cells) != 1:
        raise RNNError(f"{notebook}: needs exactly one cell tagged 'parameters'")
    try:
        body = ast.parse("".join(cells[0]["source"])).body
    except SyntaxError as err:
        raise RNNError(
            f"{notebook}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})"
        ) from None
    values = {}
    for node in body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if not all(isinstance(t, ast.Name) for t in targets) or node.value is None:
                raise RNNError(
                    f"{notebook}: line {node.lineno} of the parameters cell must be one "
                    f"'name: type = value' (got {ast.unparse(node)!r})"
                )
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise RNNError(
                    f"{notebook}: parameter {targets[0].id} must be a literal in the parameters "
                    f"cell"
                ) from None
            values |= {t.id: value for t in targets}
    return values


def effective_parameters(notebook: Path, given: dict) -> tuple[Config, dict]:
    """The run's Config, from the notebook's defaults with `given` over them; refuses the
    path parameters, which the build sets, and any name it does not know."""
    for name in given:
        if name in SET_BY_BUILD:
            raise RNNError(f"parameter {name} is set by make report: {SET_BY_BUILD[name]}")
    values = {k: v for k, v in notebook_defaults(notebook).items() if k not in SET_BY_BUILD}
    cfg = Config.from_dict(values | given)
    # As given, None where the preset decides: the notebook resolves them as Config did here.
    return cfg, cfg.given()


def kernel_manager_class():
    """Kernels that talk over Unix sockets in a private folder rather than TCP ports.

    Parallel runs (sweeps) start kernels at the same moment; with TCP each picks free ports
    and may lose them to another before binding ("Address already in use", "Kernel didn't
    respond"). Socket files in a folder of their own cannot collide. TCP where there are none.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    if os.name != "posix":
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return os.path.join(tempfile.mkdtemp(prefix=lock.temp_prefix(lock.KERNEL_PREFIX)), "k")

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # The kernel's own log (start-up, shutdown) is not the user's business: cell
            # output and errors reach papermill through the kernel's messages instead.
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(kernel_cmd, **kw)

        @property
        def kernel_spec(self):
            # This very interpreter, whatever kernelspecs the user has on JUPYTER_PATH.
            return project_kernel_spec()

        async def cleanup_resources(self, restart=False):
            await super().cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    return IPCKernelManager


def project_kernel_spec():
    from jupyter_client.kernelspec import KernelSpec

    return KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python (rnn)",
        language="python",
    )


def execute(notebook: Path, output: Path, params: dict, cwd: Path, progress: bool = False) -> None:
    """papermill executes `notebook` into `output`; progress: its bar of cells, on stderr, when
    that is a terminal (in a log, the stage lines say enough)."""
    import papermill as pm

    bar = progress and sys.stderr.isatty()
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=params,
        kernel_name="python3",  # the kernel manager runs this interpreter whatever the name
        cwd=str(cwd),
        log_output=False,
        progress_bar={"dynamic_ncols": True, "ascii": True, "leave": False} if bar else False,
        kernel_manager_class=kernel_manager_class(),
    )


def render(executed: Path, html_out: Path, drop=()) -> None:
    """HTML with code hidden, set-up cells (and cells tagged with any of `drop`) removed,
    images embedded, no network scripts."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config as TConfig

    c = TConfig()
    c.TemplateExporter.extra_template_basedirs = [str(TEMPLATES)]
    c.HTMLExporter.template_name = "report"
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"} | set(drop)
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    html_out.write_text(body, encoding="utf-8")
