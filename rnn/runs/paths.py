"""Where things are: the package's folder, the checkout around it, the default corpus, the
notebooks, the report's template and the named configurations."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # rnn/
ROOT = PACKAGE.parent  # the checkout (site-packages for an installed copy)
DEFAULT_DATA = ROOT / "data" / "shakespeare.txt"
REPORTS = ROOT / "reports"
DEFAULT_CONFIG = ROOT / "configs" / "ten-minutes.yaml"  # what `make race` trains
TEMPLATES = PACKAGE / "report" / "templates"


def notebook_path(name: str) -> Path:
    """A notebook shipped in the package (an installed wheel), else the source tree's."""
    packaged = PACKAGE / "notebooks" / name
    return packaged if packaged.exists() else ROOT / "notebooks" / name
