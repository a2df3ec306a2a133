"""A run's scratch folder on a worker, named after the process that made it, and the
removal of those whose process is gone: a worker killed mid-run (a lost worker, a sweep
killed with its local cluster) cannot remove its own, so the next run on that machine does."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil

PREFIX = "bce-run-"


def scratch_folder(root: Path | None = None) -> tempfile.TemporaryDirectory:
    """A new scratch folder in `root` (default: the temp directory), `bce-run-<pid>-...`,
    removed when its `with` block ends; the folders left by dead processes go first."""
    remove_orphans(root)
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=root)


def owner_pid(folder: Path) -> int | None:
    """The process id in a scratch folder's name (`bce-run-<pid>-...`), or None if the name
    has none."""
    rest = folder.name.removeprefix(PREFIX)
    pid, dash, _ = rest.partition("-")
    if rest == folder.name or not dash or not pid.isdigit():
        return None
    return int(pid)


def running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's, where the system hides it: it exists
        return True


def remove_orphans(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders in `root` whose process no longer runs; return those
    removed. A folder of a live process, one named otherwise, or one this user may not
    remove (another user's, in a shared temp directory) stays."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        pid = owner_pid(folder)
        if pid is None or not folder.is_dir() or running(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)  # refuses a symbolic link: it stays
        if not folder.exists():
            removed.append(folder)
    return removed
