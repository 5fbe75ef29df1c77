import pytest

from modeldx._atomic import atomic_write


def test_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with atomic_write(target, "w") as fh:
        fh.write("new")
        assert target.read_text() == "old"  # readers see the old file until the rename
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no .part left behind
