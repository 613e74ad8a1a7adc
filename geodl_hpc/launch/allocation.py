"""Inside a Slurm allocation: one Ray cluster over the allocated nodes, and one Horovod (gloo) ring over the tasks.

Every task of the job (one per GPU, or one per worker on CPU nodes) calls the same code. The first task on each
node runs ``ray start --block`` (the head on the first node, workers on the rest); every task then connects as a
driver. Rank 0 runs Horovod's HTTP rendezvous server and every task joins the gloo ring through Horovod's own
environment (``HOROVOD_GLOO_RENDEZVOUS_ADDR/PORT``, ``HOROVOD_RANK`` ...), as ``horovodrun --gloo`` would set it.
:func:`allocation_collective` gives a job its data-parallel :class:`~geodl_hpc.collective.Collective` over all the
tasks (the Horovod ring, or torch.distributed with ``MASTER_ADDR/PORT``, ``RANK``, ``WORLD_SIZE`` from Slurm).

Jobs sharing a node never collide: ports come from a 100-port block chosen by ``SLURM_JOB_ID`` (ids 220 apart
share a block; set ``GEODL_PORT_BASE`` to move it) and Ray's temp dir is ``/tmp/geodl-ray-<job id>``. Teardown
runs on normal exit, exceptions, ``sys.exit`` (submitit's requeue), ``atexit`` and SIGTERM: tasks meet at a file
barrier in a shared folder, then each node's Ray processes are killed as one process group.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodl_hpc.errors import ConfigError, GeodlError, MissingDependencyError

if TYPE_CHECKING:
    from geodl_hpc.collective import Backend, Collective

PORT_BLOCK = 100
PORT_FIRST = 10_000
PORT_SLOTS = 220  # blocks 10000..31999, below Linux's ephemeral range (32768+)


class AllocationError(GeodlError):
    """The allocation's engines could not start (names the engine, host and port)."""


@dataclasses.dataclass(frozen=True)
class Ports:
    """One job's ports on every node (the same numbers on each node)."""

    ray_gcs: int
    node_manager: int
    object_manager: int
    torch_master: int  # torch.distributed's MASTER_PORT on the first node
    dashboard_agent_listen: int
    dashboard_agent_grpc: int
    runtime_env_agent: int
    metrics_export: int
    horovod_rendezvous: int
    min_worker: int
    max_worker: int


def ports_for(job_id: str, base: int | None = None) -> Ports:
    """The port block of ``job_id``: pure, so every task of the job computes the same numbers."""
    if base is None:
        env_base = os.environ.get("GEODL_PORT_BASE")
        digits = int(re.sub(r"\D", "", job_id) or "0")
        base = int(env_base) if env_base else PORT_FIRST + (digits % PORT_SLOTS) * PORT_BLOCK
    return Ports(
        ray_gcs=base,
        node_manager=base + 1,
        object_manager=base + 2,
        torch_master=base + 3,
        dashboard_agent_listen=base + 4,
        dashboard_agent_grpc=base + 5,
        runtime_env_agent=base + 6,
        metrics_export=base + 7,
        horovod_rendezvous=base + 8,
        min_worker=base + 20,
        max_worker=base + PORT_BLOCK - 1,
    )


def _expand_counts(text: str) -> list[int]:
    """SLURM_TASKS_PER_NODE ``2(x3),1`` -> ``[2, 2, 2, 1]``."""
    counts: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match:
            counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def _hostnames(nodelist: str) -> list[str]:
    from submitit.slurm.slurm import _parse_node_list

    hosts: list[str] = _parse_node_list(nodelist)
    return hosts


@dataclasses.dataclass(frozen=True)
class Allocation:
    """This task's place in the job: ranks, nodes and resources, from Slurm's environment."""

    job_id: str
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    node_index: int = 0
    hosts: tuple[str, ...] = ("localhost",)
    tasks_per_node: tuple[int, ...] = (1,)
    cpus_on_node: int = 1
    gpus_on_node: int = 0
    mem_per_node_mb: int | None = None
    restart: int = 0  # SLURM_RESTART_COUNT: a requeued job must not meet its previous run's barriers

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Allocation:
        """Read ``SLURM_*`` variables; outside Slurm, a one-task allocation on this host."""
        env = os.environ if env is None else env
        if "SLURM_JOB_ID" not in env or "SLURM_PROCID" not in env:
            return cls(job_id=f"local{os.getpid()}", hosts=(socket.gethostname(),), cpus_on_node=os.cpu_count() or 1)
        hosts = tuple(_hostnames(env.get("SLURM_JOB_NODELIST", socket.gethostname())))
        node_index = int(env.get("SLURM_NODEID", "0"))
        counts = tuple(_expand_counts(env.get("SLURM_TASKS_PER_NODE", "")) or [int(env.get("SLURM_NTASKS", "1"))])
        visible = env.get("CUDA_VISIBLE_DEVICES", "")
        gpus = env.get("SLURM_GPUS_ON_NODE", "")
        n_gpus = int(gpus) if gpus.isdigit() else len([d for d in visible.split(",") if d.strip()])
        mem = env.get("SLURM_MEM_PER_NODE")
        return cls(
            job_id=env["SLURM_JOB_ID"],
            restart=int(env.get("SLURM_RESTART_COUNT", "0") or 0),
            rank=int(env["SLURM_PROCID"]),
            size=int(env.get("SLURM_NTASKS", "1")),
            local_rank=int(env.get("SLURM_LOCALID", "0")),
            local_size=counts[node_index] if node_index < len(counts) else counts[-1],
            node_index=node_index,
            hosts=hosts,
            tasks_per_node=counts,
            cpus_on_node=int(env.get("SLURM_CPUS_ON_NODE", "1")),
            gpus_on_node=n_gpus,
            mem_per_node_mb=int(mem) if mem and mem.isdigit() else None,
        )

    @property
    def head_host(self) -> str:
        return self.hosts[0]

    @property
    def is_node_leader(self) -> bool:
        return self.local_rank == 0

    @property
    def ports(self) -> Ports:
        return ports_for(self.job_id)

    @property
    def ray_temp_dir(self) -> str:
        return f"/tmp/geodl-ray-{self.job_id}"


def host_ip(host: str) -> str:
    """IPv4 address of ``host`` (a Slurm node name)."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise AllocationError(f"cannot resolve node {host}; check the node names in SLURM_JOB_NODELIST") from None


def ray_start_command(alloc: Allocation, head_ip: str) -> list[str]:
    """``ray start`` for this node: the head on the first node, a worker joining it elsewhere (pure)."""
    p = alloc.ports
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
        f"--num-cpus={alloc.cpus_on_node}", f"--num-gpus={alloc.gpus_on_node}",
        f"--node-ip-address={host_ip(alloc.hosts[alloc.node_index])}",
        f"--node-manager-port={p.node_manager}", f"--object-manager-port={p.object_manager}",
        f"--min-worker-port={p.min_worker}", f"--max-worker-port={p.max_worker}",
        f"--dashboard-agent-listen-port={p.dashboard_agent_listen}",
        f"--dashboard-agent-grpc-port={p.dashboard_agent_grpc}",
        f"--runtime-env-agent-port={p.runtime_env_agent}", f"--metrics-export-port={p.metrics_export}",
        f"--temp-dir={alloc.ray_temp_dir}",
    ]  # fmt: skip
    if alloc.mem_per_node_mb:
        cmd.append(f"--object-store-memory={alloc.mem_per_node_mb * 1024 * 1024 * 3 // 10}")
    if alloc.node_index == 0:
        cmd += ["--head", f"--port={p.ray_gcs}", "--include-dashboard=false"]
    else:
        cmd.append(f"--address={head_ip}:{p.ray_gcs}")
    return cmd


def wait_for_port(
    host: str, port: int, timeout_s: float, what: str, proc: subprocess.Popen[bytes] | None = None, log: str = ""
) -> None:
    """Block until something listens on ``host:port``; one-line error after ``timeout_s`` or if ``proc`` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AllocationError(f"{what} exited with status {proc.returncode} before listening; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise AllocationError(f"{what} at {host}:{port} not reachable after {timeout_s:.0f} s; see the rank logs")


def barrier(folder: Path, alloc: Allocation, name: str, timeout_s: float = 120) -> None:
    """Wait until every task wrote ``name-<rank>`` in the shared ``folder`` (a file barrier, no engine needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{alloc.rank}").touch()
    deadline = time.monotonic() + timeout_s
    while any(not (folder / f"{name}-{r}").exists() for r in range(alloc.size)):
        if time.monotonic() > deadline:
            missing = [r for r in range(alloc.size) if not (folder / f"{name}-{r}").exists()]
            raise AllocationError(f"barrier {name}: ranks {missing} did not arrive within {timeout_s:.0f} s")
        time.sleep(0.1)


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the task that started us dies, even by SIGKILL (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with its own session, and everything it started."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
            return


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``finally`` blocks run, unless someone (submitit) already handles it."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def ray_cluster(alloc: Allocation, shared: Path, start_timeout_s: float = 120) -> Iterator[str]:
    """Start (node leaders) and join (every task) one Ray cluster over the allocation; yield its address.

    ``ray.init(address=...)`` has been called in this task when the block starts; on exit every task
    disconnects, the tasks meet at a barrier in ``shared``, and node leaders stop their Ray processes.
    """
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("Ray is needed for ray_cluster; pip install 'ray[data]'") from None
    head_ip = host_ip(alloc.head_host)
    address = f"{head_ip}:{alloc.ports.ray_gcs}"
    proc: subprocess.Popen[bytes] | None = None
    folder = Path(shared) / f".geodl-{alloc.job_id}-{alloc.restart}"
    where = "the log of the node's first task"
    with _terminate_on_sigterm():
        try:
            _share_ray_token(alloc, folder, start_timeout_s)
            if alloc.is_node_leader:
                if alloc.node_index != 0:
                    wait_for_port(head_ip, alloc.ports.ray_gcs, start_timeout_s, "Ray head")
                folder.mkdir(parents=True, exist_ok=True)
                log_path = folder.parent / f"ray-node{alloc.node_index}-{alloc.job_id}.log"
                with log_path.open("ab") as log:
                    proc = subprocess.Popen(
                        ray_start_command(alloc, head_ip),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=_die_with_parent,
                    )
                atexit.register(_kill_group, proc)
                where = str(log_path)
            wait_for_port(head_ip, alloc.ports.ray_gcs, start_timeout_s, "Ray head", proc, where)
            ray.init(address=address, log_to_driver=False)
            _wait_for_nodes(ray, len(alloc.hosts), start_timeout_s)
            yield address
        finally:
            with contextlib.suppress(Exception):
                ray.shutdown()
            try:
                barrier(folder, alloc, "ray-done", timeout_s=60)
            finally:
                if proc is not None:
                    _kill_group(proc)
                    atexit.unregister(_kill_group)
                    shutil.rmtree(alloc.ray_temp_dir, ignore_errors=True)


def _share_ray_token(alloc: Allocation, folder: Path, timeout_s: float) -> None:
    """One secret Ray auth token per job run (Ray 2.5x+ refuses clients without it), readable by the user only."""
    import secrets

    path = folder / "ray-auth-token"
    folder.mkdir(parents=True, exist_ok=True)
    if alloc.rank == 0:
        tmp = folder / f".ray-auth-token.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.replace(tmp, path)
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise AllocationError(f"{path}: rank 0 did not share the Ray auth token within {timeout_s:.0f} s")
        time.sleep(0.1)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    # Ray caches its config at import; reload it so this process (a driver) sees token mode, as ray.init does.
    with contextlib.suppress(ImportError, AttributeError):
        import ray._raylet

        ray._raylet.Config.initialize("")  # type: ignore[attr-defined]


def _wait_for_nodes(ray: Any, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(1 for n in ray.nodes() if n.get("Alive")) < count:
        if time.monotonic() > deadline:
            raise AllocationError(f"only some of the {count} Ray nodes joined within {timeout_s:.0f} s")
        time.sleep(0.5)


def _iface_for(ip: str) -> str:
    """The network interface this host uses to reach ``ip`` (gloo needs its name)."""
    override = os.environ.get("GEODL_GLOO_IFACE")
    if override:
        return override
    import psutil

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        local_ip = s.getsockname()[0]
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == local_ip for a in addrs):
            return str(name)
    raise AllocationError(f"no network interface has address {local_ip}; set GEODL_GLOO_IFACE")


def horovod_env(alloc: Allocation, rendezvous_ip: str, iface: str) -> dict[str, str]:
    """Horovod's gloo environment for this task, as ``horovodrun --gloo`` would set it (pure)."""
    return {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": rendezvous_ip,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(alloc.ports.horovod_rendezvous),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        "HOROVOD_GLOO_IFACE": iface,
        "HOROVOD_HOSTNAME": alloc.hosts[alloc.node_index],
        "HOROVOD_RANK": str(alloc.rank),
        "HOROVOD_SIZE": str(alloc.size),
        "HOROVOD_LOCAL_RANK": str(alloc.local_rank),
        "HOROVOD_LOCAL_SIZE": str(alloc.local_size),
        "HOROVOD_CROSS_RANK": str(alloc.node_index),
        "HOROVOD_CROSS_SIZE": str(len(alloc.hosts)),
    }


def _slot_plan(alloc: Allocation) -> list[Any]:
    """Horovod's host allocation plan for Slurm's block distribution (ranks fill node 0, then node 1, ...)."""
    from horovod.runner.common.util.hosts import SlotInfo

    slots = []
    rank = 0
    for node, (host, count) in enumerate(zip(alloc.hosts, alloc.tasks_per_node, strict=False)):
        for local in range(count):
            slots.append(SlotInfo(host, rank, local, node, alloc.size, count, len(alloc.hosts)))
            rank += 1
    return slots


@contextlib.contextmanager
def horovod_ring(alloc: Allocation, shared: Path, start_timeout_s: float = 120) -> Iterator[Any]:
    """Join every task into one Horovod gloo ring (rank 0 serves the rendezvous); yield ``horovod.torch``."""
    try:
        import horovod.torch as hvd
        from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
    except ImportError:
        raise MissingDependencyError(
            "Horovod is needed for horovod_ring; build it with tools/build_horovod.sh"
        ) from None
    import threading

    rendezvous_ip = host_ip(alloc.head_host)
    port = alloc.ports.horovod_rendezvous
    server: Any = None
    folder = Path(shared) / f".geodl-{alloc.job_id}-{alloc.restart}"
    with _terminate_on_sigterm():
        try:
            if alloc.rank == 0:
                try:
                    server = RendezvousHTTPServer(("", port), RendezvousHandler, 0)
                except OSError as exc:
                    raise AllocationError(f"Horovod rendezvous: cannot listen on port {port}: {exc.strerror}") from None
                server.init(_slot_plan(alloc))
                threading.Thread(target=server.serve_forever, daemon=True).start()
            wait_for_port(rendezvous_ip, port, start_timeout_s, "Horovod rendezvous")
            os.environ.update(horovod_env(alloc, rendezvous_ip, _iface_for(rendezvous_ip)))
            hvd.init()
            yield hvd
        finally:
            with contextlib.suppress(Exception):
                hvd.shutdown()
            try:
                barrier(folder, alloc, "horovod-done", timeout_s=60)
            finally:
                if server is not None:
                    server.shutdown()
                    server.server_close()


def torch_dist_env(alloc: Allocation, master_ip: str) -> dict[str, str]:
    """torch.distributed's ``env://`` rendezvous for this task, as ``torchrun`` would set it (pure)."""
    return {
        "MASTER_ADDR": master_ip,
        "MASTER_PORT": str(alloc.ports.torch_master),
        "RANK": str(alloc.rank),
        "WORLD_SIZE": str(alloc.size),
        "LOCAL_RANK": str(alloc.local_rank),
        "LOCAL_WORLD_SIZE": str(alloc.local_size),
    }


@contextlib.contextmanager
def allocation_collective(backend: Backend, device: str, shared: Path) -> Iterator[Collective]:
    """The job's collective over every task of the allocation; released on exit.

    In a multi-task Slurm job (``SLURM_NTASKS`` > 1) that no launcher set up already (``horovodrun`` sets
    ``HOROVOD_RANK``, ``torchrun`` sets ``RANK``): ``horovod`` joins :func:`horovod_ring` (barrier files in
    ``shared``), ``torch`` gets its rendezvous from :func:`torch_dist_env`, and ``none`` is an error (every task
    would train alone). Anywhere else this is ``make_collective(backend, device)``.
    """
    from geodl_hpc.collective import make_collective

    alloc = Allocation.from_env()
    launched = "HOROVOD_RANK" in os.environ if backend == "horovod" else "RANK" in os.environ
    if alloc.size <= 1 or launched:
        yield make_collective(backend, device)
        return
    if backend == "none":
        raise ConfigError(
            f"backend='none' in a {alloc.size}-task allocation: every task would train alone; "
            "set train.backend=horovod or torch, or cluster.ntasks_per_node=1"
        )
    if backend == "horovod":
        with horovod_ring(alloc, shared):
            yield make_collective("horovod", device)
        return
    os.environ.update(torch_dist_env(alloc, host_ip(alloc.head_host)))
    coll = make_collective(backend, device)
    try:
        yield coll
    finally:
        coll.shutdown()
