"""Campaigns: many independent work items, fanned out in-process, as Ray tasks or as Slurm array tasks.

A campaign folder ``RUN`` holds:

- ``campaign.json``: the settings the items were made from and their fingerprint (written first; a run with
  other settings refuses to mix with the pieces and names the keys that changed) and, last of all, the
  completion flag ``complete: true``;
- ``pieces/KEY.parquet``: one table per finished item, written to a temporary name, fsynced and renamed, so a
  piece is there whole or not at all. The set of pieces IS the ledger: an item is done when its piece exists,
  and re-running an item replaces its piece, so rows can never be duplicated;
- ``results.parquet`` and ``results.csv``: every piece concatenated in item order, written only once all items
  are done, before the completion flag.

Resume = run again: only items without a piece are computed, by whichever executor. Each Slurm array task
takes a stride of the missing items and skips any whose piece appeared meanwhile (a requeued task, a rerun).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from geodl_hpc.errors import ConfigError, GeodlError
from geodl_hpc.osutil import atomic_write_text, fsync_dir

if TYPE_CHECKING:
    import pandas as pd

SETTINGS_FILE = "campaign.json"
PIECES = "pieces"
RESULTS = "results"
PIECE_META_KEY = b"geodl_campaign"
KILL_ENV = "GEODL_CAMPAIGN_KILL_AFTER"  # tests only: "N" = SIGKILL after the Nth piece, "N:mid" = before writing it
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")


class CampaignError(GeodlError):
    """A campaign folder is inconsistent with the settings, or a work item failed."""


class WorkItem(Protocol):
    """A unit of work: a frozen dataclass whose ``key`` names its piece (unique, file-name safe, stable)."""

    @property
    def key(self) -> str: ...


Item = TypeVar("Item", bound=WorkItem)
Compute = Callable[[Any], "pd.DataFrame"]


@dataclasses.dataclass(frozen=True)
class CampaignConfig:
    """How a campaign's items are run: here (``local``), as Ray tasks, or as Slurm array tasks."""

    executor: Literal["local", "ray", "slurm"] = "local"
    ray_cpus: int = 0  # 0: every CPU of this machine (ignored when RAY_ADDRESS names a running cluster)
    items_per_task: int = 0  # Ray: items per task; 0: about four tasks per CPU
    cluster: str = "localslurm"  # slurm: the cluster profile of the array tasks (configs/clusters/NAME.yaml)
    cluster_overrides: list[str] = dataclasses.field(default_factory=list)  # e.g. ["time_min=30", "mem=2G"]
    array_tasks: int = 4  # slurm: array size (each task takes a stride of the missing items)
    timeout_s: float = 0.0  # slurm: give up waiting after this long (0: wait for ever)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("ray_cpus", "items_per_task"):
            if getattr(self, name) < 0:
                raise ConfigError(f"campaign.{name}: must be 0 (automatic) or positive, got {getattr(self, name)}")
        if self.array_tasks < 1:
            raise ConfigError(f"campaign.array_tasks: must be at least 1, got {self.array_tasks}")
        from geodl_hpc.launch.profiles import check_overrides

        check_overrides(self.cluster_overrides, where="campaign.cluster_overrides: ")


# ------------------------------------------------------------------------------------------------ settings
def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [{"d": 2}]}`` -> ``{"a.b": 1, "c[0].d": 2}``: changed settings named by path."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path) if value else {path: {}})
        elif isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            for i, v in enumerate(value):
                out.update(flatten(v, f"{path}[{i}]") if isinstance(v, Mapping) else {f"{path}[{i}]": v})
        else:
            out[path] = list(value) if isinstance(value, tuple) else value
    return out


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Short sha256 of the settings' canonical JSON."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted paths whose values differ between two settings mappings."""
    a, b = flatten(_plain(old)), flatten(_plain(new))
    return sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(settings, default=str))
    return result


# ------------------------------------------------------------------------------------------------ pieces
def write_piece(path: Path, table: pd.DataFrame, meta: Mapping[str, Any]) -> None:
    """Write ``table`` to ``path`` as Parquet: temporary sibling, fsync, rename (replaces an older piece)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), PIECE_META_KEY: json.dumps(dict(meta))})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(arrow, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def piece_meta(path: Path) -> dict[str, Any]:
    """The campaign record (key, fingerprint) stored in a piece's Parquet metadata."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(PIECE_META_KEY)
    result: dict[str, Any] = json.loads(raw) if raw else {}
    return result


@dataclasses.dataclass(frozen=True)
class PieceWorker:
    """The picklable callable an executor runs: compute each item that has no piece yet, write its piece.

    Returns the keys it computed. Submitit may requeue it after a timeout or preemption (``checkpoint``): the
    rerun skips the items finished before, so none is computed twice by a requeue."""

    pieces: Path
    compute: Compute
    fingerprint: str
    items: tuple[Any, ...] = ()

    def __call__(self, items: Sequence[Any] | None = None) -> list[str]:
        todo = self.items if items is None else items
        computed = []
        for item in todo:
            if (self.pieces / f"{item.key}.parquet").exists():
                continue
            self.run_one(item)
            computed.append(item.key)
        return computed

    def run_one(self, item: Any) -> None:
        """Compute ``item`` and write its piece (the test hook may kill the process around the write)."""
        table = self.compute(item)
        _kill_hook(mid=True)
        write_piece(self.pieces / f"{item.key}.parquet", table, {"key": item.key, "fingerprint": self.fingerprint})
        _kill_hook(mid=False)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


_written = 0


def _kill_hook(*, mid: bool) -> None:
    """Test hook: ``GEODL_CAMPAIGN_KILL_AFTER=N`` SIGKILLs this process once its Nth piece is written,
    ``N:mid`` after computing its Nth item but before writing the piece (that item is lost and recomputed)."""
    global _written
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    count, _, where = spec.partition(":")
    if mid:
        if where == "mid" and _written + 1 == int(count):
            os.kill(os.getpid(), signal.SIGKILL)
        return
    _written += 1
    if where != "mid" and _written == int(count):
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ campaign
class Campaign(Generic[Item]):
    """Work items, the function that turns one into a table, and the folder that records what is done.

    ``compute`` (item -> DataFrame) must be picklable for Ray and Slurm (a module-level function or a frozen
    dataclass with ``__call__``) and deterministic; ``finalize`` (table -> table) runs once on the concatenated
    table, before it is written."""

    def __init__(
        self,
        folder: Path,
        items: Sequence[Item],
        compute: Compute,
        settings: Mapping[str, Any],
        *,
        sort_by: Sequence[str] = (),
        finalize: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.finalize = finalize
        self.items = list(items)
        self.compute = compute
        self.sort_by = list(sort_by)
        keys = [item.key for item in self.items]
        bad = next((k for k in keys if not _KEY.fullmatch(k)), None)
        if bad is not None:
            raise ConfigError(f"work item key {bad!r}: use letters, digits and . _ = + - only (it names a file)")
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ConfigError(f"work item key {dup!r}: appears twice; every item needs its own key")
        # The item keys are part of the settings: another set of items is another campaign.
        self.settings = {**_plain(settings), "items": {"n": len(keys), "sha": fingerprint({"keys": keys})}}
        self.fingerprint = fingerprint(self.settings)

    @property
    def pieces(self) -> Path:
        return self.folder / PIECES

    @property
    def results(self) -> Path:
        return self.folder / f"{RESULTS}.parquet"

    def worker(self, items: Sequence[Item] = ()) -> PieceWorker:
        return PieceWorker(self.pieces, self.compute, self.fingerprint, tuple(items))

    def record(self) -> dict[str, Any]:
        """``campaign.json`` as it stands (empty when the campaign was never started)."""
        path = self.folder / SETTINGS_FILE
        if not path.is_file():
            return {}
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CampaignError(f"{path}: unreadable ({exc}); remove the folder or set overwrite=true") from None
        return data

    def open(self) -> None:
        """Create the folder and ``campaign.json``, or check that an existing one has the same settings."""
        old = self.record()
        if old:
            if old.get("fingerprint") != self.fingerprint:
                changed = changed_keys(old.get("settings", {}), self.settings)
                raise CampaignError(
                    f"{self.folder / SETTINGS_FILE}: settings changed since this campaign started "
                    f"({', '.join(changed[:6]) or 'fingerprint'}); its pieces cannot be mixed with new ones: "
                    "use another output folder or set overwrite=true"
                )
            return
        self.pieces.mkdir(parents=True, exist_ok=True)
        record = {
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "complete": False,
        }
        atomic_write_text(self.folder / SETTINGS_FILE, json.dumps(record, indent=2, default=str) + "\n")

    def done(self) -> set[str]:
        """Keys of the items with a piece."""
        if not self.pieces.is_dir():
            return set()
        return {p.name[: -len(".parquet")] for p in self.pieces.iterdir() if _is_piece(p.name)}

    def missing(self) -> list[Item]:
        """Items without a piece, in item order."""
        done = self.done()
        return [item for item in self.items if item.key not in done]

    def is_complete(self) -> bool:
        return bool(self.record().get("complete")) and self.results.is_file()

    def aggregate(self) -> pd.DataFrame:
        """Concatenate every piece (item order, then ``sort_by``) into ``results.parquet``/``.csv``; flag complete.

        Refuses while items are missing and when a piece belongs to other settings."""
        import pandas as pd

        missing = self.missing()
        if missing:
            raise CampaignError(
                f"{self.folder}: {len(missing)} of {len(self.items)} items have no result yet "
                f"(first: {missing[0].key}); run the campaign again to compute them"
            )
        tables = []
        for item in self.items:
            path = self.pieces / f"{item.key}.parquet"
            meta = piece_meta(path)
            if meta.get("fingerprint") != self.fingerprint or meta.get("key") != item.key:
                raise CampaignError(f"{path}: piece of another campaign (settings differ); remove it and run again")
            tables.append(pd.read_parquet(path))
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
        if self.sort_by:
            table = table.sort_values(self.sort_by, kind="stable").reset_index(drop=True)
        if self.finalize is not None:  # columns that need every piece (e.g. gains against a reference)
            table = self.finalize(table)
        write_piece(self.results, table, {"key": RESULTS, "fingerprint": self.fingerprint})
        atomic_write_text(self.folder / f"{RESULTS}.csv", table.to_csv(index=False))
        for stale in self.pieces.glob(".*.tmp"):  # left by killed writers; nobody writes once all are done
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        record = {
            **self.record(),
            "complete": True,
            "rows": len(table),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        atomic_write_text(self.folder / SETTINGS_FILE, json.dumps(record, indent=2, default=str) + "\n")
        return table


def _is_piece(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith(".")


# ------------------------------------------------------------------------------------------------ executors
def run_local(campaign: Campaign[Any], items: Sequence[Any], *, progress: bool = True) -> int:
    """Compute ``items`` one after another in this process, with a progress bar."""
    from geodl_hpc.progress import progress_bar

    worker = campaign.worker()
    for item in progress_bar(items, desc="campaign", unit="item", enabled=progress):
        worker.run_one(item)
    return len(items)


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_ray(
    campaign: Campaign[Any], items: Sequence[Any], *, num_cpus: int = 0, items_per_task: int = 0, progress: bool = True
) -> int:
    """Compute ``items`` as Ray tasks (``RAY_ADDRESS`` or a local Ray); each task writes its items' pieces."""
    from geodl_hpc.pipeline.loader import ensure_ray
    from geodl_hpc.progress import progress_bar

    if not items:
        return 0
    ray = ensure_ray(num_cpus or os.cpu_count() or 1)
    cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
    size = items_per_task or max(1, -(-len(items) // (4 * cpus)))
    task = ray.remote(num_cpus=1, max_retries=0)(_run_worker)
    worker_ref = ray.put(campaign.worker())
    pending = [task.remote(worker_ref, chunk) for chunk in _chunks(items, size)]
    done = 0
    with progress_bar((), desc="campaign (ray)", unit="item", enabled=progress, total=len(items)) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                keys = ray.get(ready[0])
            except Exception as exc:  # RayTaskError wraps the item's own error
                _drain(ray, pending)  # no task may still write pieces once this call has returned
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, GeodlError) else exc) from None
            done += len(keys)
            bar.update(len(keys))
    return done


def _drain(ray: Any, pending: list[Any]) -> None:
    """Let the other tasks finish (their pieces are kept for the rerun) and wait until each has ended.

    Cancelling instead would race: a cancelled task's worker can still write a piece after ``ray.get`` says it
    was cancelled, while the caller already reruns the campaign."""
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.get(ref)


def _run_worker(worker: PieceWorker, items: list[Any]) -> list[str]:
    return worker(items)


@dataclasses.dataclass(frozen=True)
class _ArrayTask:
    """What ``launch.submit.plan`` sees of one array task (it wants a config with an ``output``)."""

    output: str
    task: int
    n_tasks: int


def run_slurm(
    campaign: Campaign[Any],
    items: Sequence[Any],
    *,
    cluster: str,
    overrides: Sequence[str] = (),
    array_tasks: int = 4,
    timeout_s: float | None = None,
) -> int:
    """Compute ``items`` as one array through the launch layer; task ``i`` takes ``items[i::n]``.

    The array's run folder is ``RUN/slurm`` (``geodl status RUN/slurm`` follows it); the profile's
    ``array_parallelism`` caps how many tasks run at once."""
    from geodl_hpc.launch import runs
    from geodl_hpc.launch.profiles import load_profile
    from geodl_hpc.launch.submit import ensure_free, make_executor, plan, status_record, submit_calls, wait

    if not items:
        return 0
    profile = load_profile(cluster, overrides)
    n = min(array_tasks, len(items))
    run_dir = campaign.folder / "slurm"
    configs = [_ArrayTask(str(campaign.folder), i, n) for i in range(n)]
    plan_ = plan("campaign", configs, profile, run_dir=run_dir)
    ensure_free(run_dir)
    plan_.logs.mkdir(parents=True, exist_ok=True)
    if profile.is_slurm:
        (run_dir / "job.sbatch").write_text(plan_.script)
    executor = make_executor(plan_)
    workers = [campaign.worker(items[i::n]) for i in range(n)]
    jobs = submit_calls(executor, workers, detach=not profile.is_slurm)
    status = {**status_record(plan_, jobs), "campaign": str(campaign.folder)}
    runs.write_status(run_dir, status)
    results = wait(jobs, status, timeout_s=timeout_s)
    return sum(len(keys) for keys in results)


# ------------------------------------------------------------------------------------------------ driver
@dataclasses.dataclass(frozen=True)
class CampaignResult:
    """What a campaign run did: items in all, already done before, computed now, and the results table."""

    folder: Path
    n_items: int
    skipped: int
    computed: int
    seconds: float
    status: Literal["complete", "noop"]

    @property
    def results(self) -> Path:
        return self.folder / f"{RESULTS}.parquet"

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "n_items": self.n_items,
            "skipped": self.skipped,
            "computed": self.computed,
            "seconds": round(self.seconds, 3),
            "items_per_s": round(self.computed / self.seconds, 3) if self.seconds > 0 else None,
            "status": self.status,
            "results": str(self.results),
        }


def run_campaign(campaign: Campaign[Any], config: CampaignConfig | None = None) -> CampaignResult:
    """Open (or resume) the campaign, compute the missing items with the configured executor, aggregate."""
    config = config or CampaignConfig()
    campaign.open()
    if campaign.is_complete():
        return CampaignResult(campaign.folder, len(campaign.items), len(campaign.items), 0, 0.0, "noop")
    todo = campaign.missing()
    skipped = len(campaign.items) - len(todo)
    start = time.perf_counter()
    if config.executor == "local":
        run_local(campaign, todo, progress=config.progress)
    elif config.executor == "ray":
        run_ray(
            campaign, todo, num_cpus=config.ray_cpus, items_per_task=config.items_per_task, progress=config.progress
        )
    else:
        run_slurm(
            campaign,
            todo,
            cluster=config.cluster,
            overrides=config.cluster_overrides,
            array_tasks=config.array_tasks,
            timeout_s=config.timeout_s or None,
        )
    seconds = time.perf_counter() - start
    campaign.aggregate()
    return CampaignResult(campaign.folder, len(campaign.items), skipped, len(todo), seconds, "complete")
