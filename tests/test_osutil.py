"""Process liveness (zombies count as exited) and atomic writes shared by every step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from geodl_hpc.osutil import atomic_write_text, pid_alive


def test_pid_alive_sees_running_exited_and_zombie_processes() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # not reaped yet: a zombie once it has exited
        try:
            state = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)


def test_atomic_write_text_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    target.write_text("old")
    atomic_write_text(target, '{"state": "done"}')
    assert target.read_text() == '{"state": "done"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
