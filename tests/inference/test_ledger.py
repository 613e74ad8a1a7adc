"""Resumable, concurrent map writing: the ledger, kill-and-resume, re-run no-op, two writers on one map."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

from geodl_hpc.archive.store import archive_kind
from geodl_hpc.inference.runner import WRITE_QUEUE, infer
from geodl_hpc.inference.writer import Ledger, ledger_folder, map_id

from .conftest import config, tiny_cnn, write_checkpoint


class Crash(Exception):
    pass


def maps(out: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(out), mode="r")
    return {n: np.asarray(group[n][:]) for n in ("probability",)}  # type: ignore[index]


@pytest.fixture(scope="module")
def uninterrupted(stack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full") / "m.zarr"
    infer(stack, tiny_cnn(), out, config())
    return out


def test_kill_and_resume_computes_only_missing_regions(stack: Path, tmp_path: Path, uninterrupted: Path) -> None:
    out = tmp_path / "m.zarr"
    seen: list[int] = []

    def crash_after_3(index: int) -> None:
        seen.append(index)
        if len(seen) == 3:
            raise Crash

    with pytest.raises(Crash):
        infer(stack, tiny_cnn(), out, config(), on_region=crash_after_3)
    done = Ledger(ledger_folder(out), map_id(out)).done()
    # Writes already running in the writer thread at the crash finish whole; queued ones are dropped.
    assert set(seen) <= done and len(done - set(seen)) <= WRITE_QUEUE and done == set(range(len(done)))
    assert archive_kind(out) == ("raster", False)  # not marked complete

    computed: list[int] = []
    result = infer(stack, tiny_cnn(), out, config(), on_region=computed.append)
    n = result["regions_total"]
    assert computed == sorted(set(range(n)) - done) and result["regions_skipped"] == len(done)
    assert result["complete"] and archive_kind(out) == ("raster", True)
    assert not ledger_folder(out).exists()
    np.testing.assert_array_equal(maps(out)["probability"], maps(uninterrupted)["probability"])
    a = zarr.open_group(str(out), mode="r")["probability"].attrs["statistics"]
    b = zarr.open_group(str(uninterrupted), mode="r")["probability"].attrs["statistics"]
    assert a == pytest.approx(b)


def test_rerun_of_a_finished_map_is_a_noop(stack: Path, uninterrupted: Path) -> None:
    stamp = (uninterrupted / "probability" / "zarr.json").stat().st_mtime_ns
    calls: list[int] = []
    result = infer(stack, tiny_cnn(), uninterrupted, config(batch_size=2), on_region=calls.append)
    assert result["status"] == "noop" and calls == []
    assert (uninterrupted / "probability" / "zarr.json").stat().st_mtime_ns == stamp


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from geodl_hpc.inference.config import InferJobConfig
    from geodl_hpc.inference.runner import WRITE_QUEUE, infer
    stack, ckpt, out, rank = sys.argv[1:5]
    cfg = InferJobConfig(checkpoint=ckpt, tile=12, region_chunks=1, batch_size=4, progress=False, threads=1,
                         rank=int(rank), n_ranks=2)
    r = infer(Path(stack), None, Path(out), cfg)
    print(r["regions_computed"], r["complete"])
    """
)


def test_two_concurrent_writers_match_one(stack: Path, tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "best.pt", ["synthetic_0", "synthetic_1", "synthetic_2"])
    single = tmp_path / "one.zarr"
    infer(stack, ckpt, single, config(checkpoint=str(ckpt)))
    out = tmp_path / "two.zarr"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(stack), str(ckpt), str(out), str(r)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    counts = [int(o.split()[0]) for o, _ in outputs]
    total = infer(stack, ckpt, single, config(checkpoint=str(ckpt)))["regions_total"]
    assert sum(counts) == total and min(counts) > 0  # disjoint work, nothing done twice
    assert archive_kind(out) == ("raster", True)
    np.testing.assert_array_equal(maps(out)["probability"], maps(single)["probability"])


def test_other_rank_finalises_only_when_all_regions_are_done(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"
    r0 = infer(stack, tiny_cnn(), out, config(rank=0, n_ranks=2))
    assert r0["status"] == "partial" and archive_kind(out) == ("raster", False)
    r1 = infer(stack, tiny_cnn(), out, config(rank=1, n_ranks=2))
    assert r1["complete"] and archive_kind(out) == ("raster", True)


def test_ledger_entries_of_other_settings_never_count(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"

    def crash(index: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        infer(stack, tiny_cnn(), out, config(), on_region=crash)
    import shutil

    shutil.rmtree(out)  # the user deleted the map but not its hidden ledger
    computed: list[int] = []
    result = infer(stack, tiny_cnn(), out, config(), on_region=computed.append)
    assert len(computed) == result["regions_total"] and result["complete"]
