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


def test_a_written_file_has_the_permissions_of_any_new_file(tmp_path, digits_store):
    # mkstemp makes 0600 files: a store on shared storage was unreadable to every other user (a
    # colleague, Dask workers that run as another account) although its folders were not
    import os
    import stat

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.json", "w") as fh:
            fh.write("{}")
        assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
        os.umask(0o077)
        with atomic_write(tmp_path / "b.json", "w") as fh:
            fh.write("{}")
        assert stat.S_IMODE(os.stat(tmp_path / "b.json").st_mode) == 0o600
    finally:
        os.umask(old)
    for name in ("manifest.json", "items.parquet"):
        assert stat.S_IMODE(os.stat(digits_store.path / name).st_mode) & 0o044 == 0o044 & ~old
