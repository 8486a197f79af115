"""Fail if a notebook carries outputs or execution counts: notebooks are committed clean.

    python3 tools/check_notebooks.py notebooks/*.ipynb

Plain json, so that it runs with any Python, as pre-commit's hook and in the tests.
"""

import json
import sys


def dirty_cells(path: str) -> list[int]:
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    return [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)
    ]


def main(paths: list[str]) -> int:
    bad = [(p, dirty_cells(p)) for p in paths]
    bad = [(p, cells) for p, cells in bad if cells]
    for path, cells in bad:
        print(f"{path}: outputs in cells {cells}; clear them (Jupyter: Edit > Clear All Outputs)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
