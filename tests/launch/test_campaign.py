"""Campaigns: pieces as the ledger, settings fingerprint, kill-and-resume, and the same table from every executor.

The work items here are a deterministic toy (each item's rows are a function of its key); every compute call
appends the item's key to a side log, so "computed exactly once" is counted, not assumed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.launch import runs
from geodl_hpc.launch.campaign import (
    KILL_ENV,
    Campaign,
    CampaignConfig,
    CampaignError,
    changed_keys,
    run_campaign,
)
from tests.launch.conftest import Cluster

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One toy work item: a model and a block of windows."""

    model: str
    block: int

    @property
    def key(self) -> str:
        return f"{self.model}-b{self.block:03d}"


@dataclasses.dataclass(frozen=True)
class Toy:
    """Rows that depend only on the item; logs every call to ``log`` (O_APPEND: safe across processes)."""

    log: str
    fail_on: str = ""  # an item key whose computation raises (a bad input, say)

    def __call__(self, item: Cell) -> pd.DataFrame:
        if item.key == self.fail_on:
            raise InputDataError(f"{item.key}: unusable input")
        with open(self.log, "a") as handle:
            handle.write(item.key + "\n")
        window = np.arange(3) + 3 * item.block
        scale = 1.0 + 0.5 * ("ab".index(item.model))
        return pd.DataFrame({"model": item.model, "window": window, "value": scale * np.sqrt(window + 1.0)})


def toy_campaign(folder: Path, log: Path, *, blocks: int = 6, models: tuple[str, ...] = ("a", "b")) -> Campaign[Cell]:
    items = [Cell(m, b) for m in models for b in range(blocks)]
    settings = {"models": [{"name": m} for m in models], "blocks": blocks}
    return Campaign(folder, items, Toy(str(log)), settings, sort_by=["model", "window"])


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The uninterrupted in-process result."""
    folder = tmp_path_factory.mktemp("reference")
    run_campaign(toy_campaign(folder / "run", folder / "calls.log"), CampaignConfig(progress=False))
    return pd.read_parquet(folder / "run" / "results.parquet")


def test_one_piece_per_item_then_one_sorted_table_and_rerun_is_noop(tmp_path: Path) -> None:
    campaign = toy_campaign(tmp_path / "run", tmp_path / "calls.log")
    result = run_campaign(campaign, CampaignConfig(progress=False))
    assert (result.status, result.computed, result.skipped) == ("complete", 12, 0)
    assert sorted(p.name for p in campaign.pieces.iterdir()) == sorted(f"{i.key}.parquet" for i in campaign.items)
    table = pd.read_parquet(campaign.results)
    assert len(table) == 12 * 3 and not table.duplicated(["model", "window"]).any()
    assert table.equals(table.sort_values(["model", "window"]).reset_index(drop=True))
    assert table.equals(pd.read_csv(tmp_path / "run" / "results.csv"))
    assert json.loads((tmp_path / "run" / "campaign.json").read_text())["complete"] is True
    again = run_campaign(toy_campaign(tmp_path / "run", tmp_path / "calls.log"), CampaignConfig(progress=False))
    assert again.status == "noop" and len(calls(tmp_path / "calls.log")) == 12


def test_changed_settings_refuse_to_mix_and_name_the_key(tmp_path: Path) -> None:
    run_campaign(toy_campaign(tmp_path / "run", tmp_path / "log", blocks=2), CampaignConfig(progress=False))
    with pytest.raises(CampaignError, match=r"settings changed.*blocks.*items\.n"):
        run_campaign(toy_campaign(tmp_path / "run", tmp_path / "log", blocks=3), CampaignConfig(progress=False))
    assert changed_keys({"m": [{"o": {"s": 1}}]}, {"m": [{"o": {"s": 2}}]}) == ["m[0].o.s"]


def test_aggregate_refuses_while_items_are_missing(tmp_path: Path) -> None:
    campaign = toy_campaign(tmp_path / "run", tmp_path / "log")
    campaign.open()
    campaign.worker()(campaign.items[:5])
    assert len(campaign.done()) == 5 and len(campaign.missing()) == 7
    with pytest.raises(CampaignError, match="7 of 12 items have no result"):
        campaign.aggregate()
    assert not campaign.is_complete()


def test_bad_or_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        Campaign(tmp_path, [Cell("a", 1), Cell("a", 1)], Toy("x"), {})
    with pytest.raises(ConfigError, match="names a file"):
        Campaign(tmp_path, [Cell("a/b", 1)], Toy("x"), {})


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_failing_item_keeps_the_others_and_a_rerun_computes_only_the_rest(
    tmp_path: Path, reference: pd.DataFrame, executor: str
) -> None:
    if executor == "ray":
        pytest.importorskip("ray")
    log = tmp_path / "calls.log"
    failing = toy_campaign(tmp_path / "run", log)
    failing.compute = Toy(str(log), fail_on="a-b004")
    config = CampaignConfig(executor=executor, ray_cpus=2, items_per_task=1, progress=False)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="a-b004: unusable input"):  # the item's own one-line error
        run_campaign(failing, config)
    done = failing.done()  # the other items' pieces are kept (with Ray: every other task ran to its end)
    assert "a-b004" not in done and not failing.is_complete()
    if executor == "ray":
        assert len(done) == 11
    result = run_campaign(toy_campaign(tmp_path / "run", log), CampaignConfig(progress=False))
    assert result.computed == 12 - len(done) and sorted(calls(log)) == sorted(i.key for i in failing.items)
    pd.testing.assert_frame_equal(pd.read_parquet(failing.results), reference)


KILLED = """
import sys
from pathlib import Path
from geodl_hpc.launch.campaign import CampaignConfig, run_campaign
from tests.launch.test_campaign import toy_campaign
run_campaign(toy_campaign(Path(sys.argv[1]), Path(sys.argv[2])), CampaignConfig(progress=False))
"""


def run_killed(folder: Path, log: Path, kill: str) -> int:
    env = {**os.environ, KILL_ENV: kill}
    done = subprocess.run([sys.executable, "-c", KILLED, str(folder), str(log)], cwd=REPO, env=env, timeout=120)
    return done.returncode


@pytest.mark.parametrize("kill", ["5", "4:mid"])
def test_killed_campaign_resumes_with_no_item_lost_recomputed_or_duplicated(
    tmp_path: Path, reference: pd.DataFrame, kill: str
) -> None:
    folder, log = tmp_path / "run", tmp_path / "calls.log"
    assert run_killed(folder, log, kill) == -9  # SIGKILL: no cleanup ran
    campaign = toy_campaign(folder, log)
    before = calls(log)
    finished = campaign.done()
    k = int(kill.split(":")[0])
    assert len(finished) == (k if ":" not in kill else k - 1) and not campaign.is_complete()
    assert len(before) == k  # with ":mid" the k-th item was computed but its piece never written

    result = run_campaign(campaign, CampaignConfig(progress=False))
    resumed = calls(log)[len(before) :]
    assert sorted(resumed) == sorted(i.key for i in campaign.items if i.key not in finished)
    assert result.skipped == len(finished) and result.computed == len(resumed)
    every = calls(log)
    lost = [key for key in before if key not in finished]  # computed, killed before its piece: computed again
    assert all(every.count(i.key) == 1 + lost.count(i.key) for i in campaign.items)
    pd.testing.assert_frame_equal(pd.read_parquet(campaign.results), reference)


def test_ray_tasks_give_the_in_process_table(tmp_path: Path, reference: pd.DataFrame) -> None:
    pytest.importorskip("ray")
    campaign = toy_campaign(tmp_path / "run", tmp_path / "calls.log")
    campaign.open()
    campaign.worker()(campaign.items[:3])  # a partly done campaign: Ray computes only the rest
    result = run_campaign(campaign, CampaignConfig(executor="ray", ray_cpus=2, items_per_task=2, progress=False))
    assert result.computed == 9 and sorted(calls(tmp_path / "calls.log")) == sorted(i.key for i in campaign.items)
    pd.testing.assert_frame_equal(pd.read_parquet(campaign.results), reference)


def test_array_tasks_through_submitits_local_executor(
    tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Slurm executor's code path (plan, batch submission, run.json, wait) on the ``local`` profile."""
    monkeypatch.chdir(REPO)  # the tasks unpickle the toy from this test module
    campaign = toy_campaign(tmp_path / "run", tmp_path / "calls.log")
    campaign.open()
    campaign.worker()(campaign.items[-2:])
    config = CampaignConfig(executor="slurm", cluster="local", array_tasks=2, timeout_s=300, progress=False)
    result = run_campaign(campaign, config)
    assert result.computed == 10 and sorted(calls(tmp_path / "calls.log")) == sorted(i.key for i in campaign.items)
    status = json.loads((tmp_path / "run" / "slurm" / "run.json").read_text())
    assert status["array"] is True and len(status["tasks"]) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(campaign.results), reference)


@pytest.mark.slurm
def test_slurm_array_tasks_give_the_in_process_table(
    slurm_cluster: Cluster, tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three array tasks, two at a time, on the local Slurm; each takes a stride of the missing items."""
    monkeypatch.chdir(REPO)
    campaign = toy_campaign(tmp_path / "run", tmp_path / "calls.log")
    campaign.open()
    campaign.worker()(campaign.items[::4])  # 3 items done before: the array computes the other 9 once each
    config = CampaignConfig(
        executor="slurm", cluster="localslurm", cluster_overrides=["array_parallelism=2"], array_tasks=3, timeout_s=300
    )
    result = run_campaign(campaign, config)
    assert (result.skipped, result.computed) == (3, 9)
    assert sorted(calls(tmp_path / "calls.log")) == sorted(i.key for i in campaign.items)
    assert "#SBATCH --array=0-2%2" in (tmp_path / "run" / "slurm" / "job.sbatch").read_text()
    _, states = runs.run_states(tmp_path / "run" / "slurm")
    assert len(states) == 3 and {s.state for s in states.values()} == {"done"}, states
    pd.testing.assert_frame_equal(pd.read_parquet(campaign.results), reference)
