"""The `geodl` command as users run it: teaching help, one-line errors, ingest -> inspect end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from geodl_hpc.archive.inspect import CONTRACT_KEYS
from geodl_hpc.cli import build_parser
from tests.conftest import REPO, RunGeodl


def _one_line_error(result: object) -> str:
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("geodl: error: ")
    return stderr


@pytest.mark.parametrize(
    "verb",
    [
        ["ingest"],
        ["ingest", "raster"],
        ["ingest", "waveforms"],
        ["ingest", "catalog"],
        ["ingest", "murchison"],
        ["inspect"],
        ["run"],
        ["train"],
        ["infer"],
        ["evaluate"],
        ["submit"],
        ["status"],
    ],
)
def test_every_help_text_has_examples(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*verb, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"geodl {' '.join(verb)}" in text or verb == ["ingest"]


def test_top_level_help_names_the_verbs(geodl: RunGeodl) -> None:
    result = geodl("--help")
    assert result.returncode == 0
    for verb in ("ingest", "inspect", "run"):
        assert verb in result.stdout


def test_murchison_ingest_then_inspect_json(geodl: RunGeodl, tmp_path: Path) -> None:
    result = geodl("ingest", "murchison", "m.zarr", "--res", "2000", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "raster archive, complete" in result.stdout
    info = json.loads(geodl("inspect", "m.zarr", "--json").stdout)
    assert set(CONTRACT_KEYS) <= set(info)
    assert info["kind"] == "raster" and info["complete"] is True
    assert info["crs_epsg"] == 32750
    assert info["resolution"] == [2000.0, 2000.0]
    assert {"greenstone", "dist_greenstone", "dist_fault", "fault_density", "deposits"} <= set(info["variables"])
    assert info["statistics"]["deposits"]["max"] >= 1
    assert any(s["path"].endswith("gold_deposits.csv") for s in info["provenance"]["sources"])
    assert info["provenance"]["command"].split()[1:3] == ["ingest", "murchison"]


def test_run_stores_resolved_config_and_skips_when_done(geodl: RunGeodl, tmp_path: Path) -> None:
    config = REPO / "configs" / "demo.yaml"
    first = geodl("run", config, "murchison.resolution=4000", "output=out")
    assert first.returncode == 0, first.stderr
    resolved = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())
    assert resolved["murchison"]["resolution"] == 4000.0
    assert resolved["storage"]["chunk"] == 256
    second = geodl("run", config, "murchison.resolution=4000", "output=out", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["skipped"] is True
    changed = geodl("run", config, "murchison.resolution=5000", "output=out")
    assert "exists and was built with other options" in _one_line_error(changed)
    rebuilt = geodl("run", config, "murchison.resolution=5000", "output=out", "overwrite=true", "--json")
    assert json.loads(rebuilt.stdout)["resolution"] == [5000.0, 5000.0]


def test_catalog_ingest_from_real_comcat(geodl: RunGeodl, comcat_csv: Path) -> None:
    result = geodl("ingest", "catalog", "ridgecrest.parquet", comcat_csv)
    assert result.returncode == 0, result.stderr
    info = json.loads(geodl("inspect", "ridgecrest.parquet", "--json").stdout)
    assert info["kind"] == "catalog" and info["n_events"] == 829 and info["complete"] is True


def test_waveform_ingest_from_real_obspy_example(geodl: RunGeodl, obspy_rjob: Path) -> None:
    result = geodl("ingest", "waveforms", "rjob.zarr", obspy_rjob, "--no-progress")
    assert result.returncode == 0, result.stderr
    info = json.loads(geodl("inspect", "rjob.zarr", "--json").stdout)
    assert info["kind"] == "waveforms" and info["sampling_rate"] == 100.0
    assert info["dims"]["channel"] == 3 and info["dims"]["time"] == 3000


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["inspect", "missing.zarr"], "missing.zarr: no such archive"),
        (["ingest", "raster", "o.zarr", "nope.tif"], "nope.tif: no such file"),
        (["ingest", "catalog", "o.parquet", "nope.csv"], "nope.csv"),
        (["ingest", "waveforms", "o.zarr", "nope.mseed"], "nope.mseed"),
        (["run", "nope.yaml"], "nope.yaml: config file not found"),
        (["run", str(REPO / "configs" / "demo.yaml"), "storage.chunk=big"], "storage.chunk: expected an integer"),
        (["ingest", "raster", "o.zarr", "x.tif", "--crs", "32750"], "needs all of --crs, --res and --bounds"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(
    geodl: RunGeodl, tmp_path: Path, args: list[str], fragment: str
) -> None:
    assert fragment in _one_line_error(geodl(*args))
    assert not (tmp_path / "o.zarr").exists() and not (tmp_path / "o.parquet").exists()


def test_garbage_source_files_are_refused_by_every_ingest(geodl: RunGeodl, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01not a raster, waveform or catalog" * 10)
    for kind, out in (("raster", "r.zarr"), ("waveforms", "w.zarr"), ("catalog", "c.parquet")):
        assert "junk.bin" in _one_line_error(geodl("ingest", kind, out, junk))
        assert not (tmp_path / out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bin"]


# ------------------------------------------------------------------------------------------- launch verbs
def test_submit_dry_run_prints_script_and_plan_and_writes_nothing(geodl: RunGeodl, tmp_path: Path) -> None:
    config = REPO / "configs" / "demo.yaml"
    result = geodl("submit", "ingest_murchison", config, "--cluster", "slurm-example", "--dry-run", "cluster.nodes=2")
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --nodes=2" in result.stdout and "#SBATCH --partition=gpu" in result.stdout
    assert "module load cuda/12.4" in result.stdout and "exec srun" in result.stdout
    assert "2 node(s) x 4 GPUs (8 GPUs)" in result.stdout and "at most 96 GPU-hours" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--cluster", "nope"], "--cluster nope: unknown cluster profile; available: local, localslurm, slurm-example"),
        (
            ["--cluster", "slurm-example", "cluster.nodes=99"],
            "cluster.nodes=99: profile slurm-example can give at most",
        ),
        (
            ["--cluster", "local", "cluster.gpus_per_node=2"],
            "cluster.gpus_per_node=2: profile local can give at most 0",
        ),
    ],
)
def test_submit_bad_cluster_requests_are_one_line(
    geodl: RunGeodl, tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = geodl("submit", "ingest_murchison", REPO / "configs" / "demo.yaml", *args, "--dry-run")
    assert fragment in _one_line_error(result)


def test_submit_to_slurm_without_sbatch_says_what_to_do(tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.conftest import GEODL

    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [str(GEODL), "submit", "ingest_murchison", str(REPO / "configs" / "demo.yaml"), "--cluster", "localslurm"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": str(empty)},
    )  # fmt: skip
    message = _one_line_error(result)
    assert "no sbatch is on PATH; install Slurm" in message and "--cluster local" in message
    assert not (tmp_path / "runs").exists()


def test_resubmitting_into_a_live_run_folder_is_refused(geodl: RunGeodl, tmp_path: Path) -> None:
    import os
    import signal

    config = REPO / "configs" / "resume_check.yaml"
    first = geodl("submit", "resume_check", config, "output=busy", "steps=60", "step_seconds=0.5")
    assert first.returncode == 0, first.stderr
    try:
        status = geodl("status", "busy")
        assert status.returncode == 0 and "running" in status.stdout and "local run" in status.stdout
        again = geodl("submit", "resume_check", config, "output=busy")
        assert "busy: run folder in use by live job" in _one_line_error(again)
    finally:
        pid = int(json.loads((tmp_path / "busy" / "run.json").read_text())["job_ids"][0])
        os.kill(pid, signal.SIGTERM)


def test_status_of_a_folder_that_is_no_run(geodl: RunGeodl, tmp_path: Path) -> None:
    assert "nothing: not a run folder (no run.json)" in _one_line_error(geodl("status", "nothing"))


def test_infer_verb_maps_an_archive_and_is_a_no_op_when_rerun(geodl: RunGeodl, tmp_path: Path) -> None:
    assert geodl("ingest", "murchison", "m.zarr", "--res", "4000", "--chunk", "32", "--no-progress").returncode == 0
    config = tmp_path / "infer.yaml"
    config.write_text(
        "job: infer\narchive: m.zarr\noutput: out/map.zarr\nmodel: {width: 4, depth: 2}\ntile: 40\nprogress: false\n"
    )
    first = geodl("infer", config)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["complete"] is True and (tmp_path / "out" / "map.tif").exists()
    info = json.loads(geodl("inspect", "out/map.zarr", "--json").stdout)
    assert info["kind"] == "raster" and info["complete"] and info["crs_epsg"] == 32750
    again = json.loads(geodl("infer", config).stdout)
    assert again["status"] == "noop" and again["regions_computed"] == 0 and again["regions_skipped"] >= 1
