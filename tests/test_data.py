import numpy as np
import pytest

import rnn


def test_load_text_reads_utf8(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo, wörld\n", encoding="utf-8")
    assert rnn.load_text(path) == "héllo, wörld\n"


def test_load_text_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffabc".encode("utf-8"))
    assert rnn.load_text(path) == "abc"


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"abc \xff\xfe def"), "not UTF-8"),
        (lambda p: p.write_bytes(b"abc\x00def"), "NUL"),
    ],
)
def test_load_text_bad_files_name_file_and_problem(tmp_path, make, problem):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(rnn.DataError) as info:
        rnn.load_text(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_vocab_is_sorted_and_round_trips(text):
    vocab = rnn.Vocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text)))
    assert len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.uint8 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.encode("T")[0] == vocab.chars.index("T")


def test_vocab_round_trips_non_ascii():
    text = "Ægir — naïve 東京 🙂 text\n"
    vocab = rnn.Vocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_vocab_refuses_unknown_character(vocab):
    with pytest.raises(rnn.DataError, match="'Z' is not in the vocabulary"):
        vocab.encode("toZ")


def test_split_keeps_a_suffix(ids):
    train_ids, val_ids = rnn.split_train_val(ids, 0.1)
    assert len(train_ids) + len(val_ids) == len(ids)
    assert len(val_ids) == round(0.1 * len(ids))
    np.testing.assert_array_equal(np.concatenate([train_ids, val_ids]), ids)
    assert len(rnn.split_train_val(ids, 0.0)[1]) == 0
