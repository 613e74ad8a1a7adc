"""The data cache lookup: fetched data sets are found by name, a missing one is a one-line error saying what to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodl_hpc.archive.sources import data_file, data_root
from geodl_hpc.errors import InputDataError


def test_data_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEODL_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("GEODL_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "geodl_hpc" / "data"


def test_a_complete_data_set_is_found_and_an_incomplete_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEODL_DATA_DIR", str(tmp_path))
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "a.csv").write_text("x\n")
    with pytest.raises(InputDataError, match=r"tools/fetch_data.sh demo"):
        data_file("demo", "a.csv")  # no .complete stamp: a fetch that was interrupted
    (tmp_path / "demo" / ".complete").write_text("stamp\n")
    assert data_file("demo", "a.csv") == tmp_path / "demo" / "a.csv"
    with pytest.raises(InputDataError, match=r"b.csv: data set 'demo'"):
        data_file("demo", "b.csv")
