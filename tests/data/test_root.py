from pathlib import Path

from modeldx.data import data_root


def test_explicit_then_env_then_local(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELDX_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("MODELDX_DATA")
    assert data_root() == Path("data")
