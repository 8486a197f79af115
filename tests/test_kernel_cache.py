"""numba's on-disk cache is keyed on every kernel source (rnn.engine.kernels.stale): an edit to a
kernel that another kernel calls removes the compiled callers too."""

import subprocess
import sys
from pathlib import Path

from rnn.engine.kernels import stale

KERNELS = Path(stale.__file__).resolve().parent


def fake_kernels(folder: Path) -> Path:
    """A kernels folder: two sources, and a cache of compiled code and bytecode."""
    (folder / "blocks.py").write_text("def callee(): return 1\n")
    (folder / "vanilla.py").write_text("def caller(): return callee()\n")
    cache = folder / "__pycache__"
    cache.mkdir()
    for name in ("vanilla.caller-1.py311.nbi", "vanilla.caller-1.py311.1.nbc", "vanilla.pyc"):
        (cache / name).write_bytes(b"compiled")
    return cache


def test_a_changed_callee_clears_the_compiled_callers(tmp_path):
    cache = fake_kernels(tmp_path)
    # A cache made before the key existed is not trusted.
    assert {p.name for p in stale.clear_if_stale(tmp_path)} == {
        "vanilla.caller-1.py311.nbi",
        "vanilla.caller-1.py311.1.nbc",
    }
    assert (cache / stale.STAMP).read_text().strip() == stale.sources_digest(tmp_path)
    (cache / "vanilla.caller-1.py311.nbi").write_bytes(b"compiled again")
    assert stale.clear_if_stale(tmp_path) == []  # the same sources: kept
    (tmp_path / "blocks.py").write_text("def callee(): return 2\n")  # the callee's file only
    assert [p.name for p in stale.clear_if_stale(tmp_path)] == ["vanilla.caller-1.py311.nbi"]
    assert (cache / "vanilla.pyc").exists()  # Python's own bytecode is Python's business


def test_a_fresh_cache_is_stamped_so_its_first_compilation_is_kept(tmp_path):
    (tmp_path / "blocks.py").write_text("x = 1\n")
    assert stale.clear_if_stale(tmp_path) == []
    assert (tmp_path / "__pycache__" / stale.STAMP).exists()


def test_the_package_stamps_its_cache_at_import():
    subprocess.run([sys.executable, "-c", "import rnn.engine.kernels"], check=True)
    stamp = stale.cache_folders(KERNELS)[0] / stale.STAMP
    assert stamp.read_text().strip() == stale.sources_digest(KERNELS)
