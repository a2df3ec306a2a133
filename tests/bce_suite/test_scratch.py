"""bce_suite.scratch: a run's scratch folder, and the removal of those a dead process left.
The processes are real: a child that has exited and been reaped, a child still running,
a child dead but not yet reaped (a zombie)."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from bce_suite.scratch import owner_pid, remove_orphans, running, scratch_folder


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


@pytest.fixture
def sleeper():
    """A child process that runs until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def folder_with_a_file(path):
    path.mkdir()
    (path / "kernel.log").write_text("left behind")
    return path


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        ("bce-run-4242-k2j_x9", 4242),
        ("bce-run-7-", 7),
        ("bce-run-31-x-y", 31),  # the id is the first field
        ("bce-run-4242", None),  # no dash after the id: not a name scratch_folder makes
        ("bce-run-abc-k2j", None),
        ("bce-run--k2j", None),
        ("other-4242-k2j", None),
        ("bce-runs-4242-k2j", None),
    ],
)
def test_owner_pid_reads_the_id_in_the_name(tmp_path, name, pid):
    assert owner_pid(tmp_path / name) == pid


def test_running_tells_live_dead_and_zombie_processes(dead_pid, sleeper):
    assert running(os.getpid())
    assert running(sleeper.pid)
    assert not running(dead_pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.02)
    assert psutil.pid_exists(zombie.pid), "not reaped yet"
    assert not running(zombie.pid)
    zombie.wait()


def test_a_process_the_system_hides_counts_as_running(monkeypatch):
    def hidden(pid):
        raise psutil.AccessDenied(pid)

    monkeypatch.setattr("bce_suite.scratch.psutil.Process", hidden)
    assert running(1)


def test_only_the_folders_of_dead_processes_are_removed(tmp_path, dead_pid, sleeper):
    orphan = folder_with_a_file(tmp_path / f"bce-run-{dead_pid}-abc")
    mine = folder_with_a_file(tmp_path / f"bce-run-{os.getpid()}-abc")
    live_child = folder_with_a_file(tmp_path / f"bce-run-{sleeper.pid}-abc")
    unnamed = folder_with_a_file(tmp_path / "bce-run-abc")
    a_file = tmp_path / f"bce-run-{dead_pid}-file"
    a_file.write_text("not a folder")
    target = folder_with_a_file(tmp_path / "elsewhere")
    link = tmp_path / f"bce-run-{dead_pid}-link"
    link.symlink_to(target, target_is_directory=True)

    assert remove_orphans(tmp_path) == [orphan]
    assert not orphan.exists()
    for kept in (mine, live_child, unnamed, target):
        assert (kept / "kernel.log").read_text() == "left behind"
    assert a_file.read_text() == "not a folder"
    assert link.is_symlink()
    assert remove_orphans(tmp_path) == []


def test_a_folder_that_cannot_be_removed_is_not_reported(tmp_path, dead_pid, monkeypatch):
    orphan = folder_with_a_file(tmp_path / f"bce-run-{dead_pid}-abc")

    def refused(path, ignore_errors=False):
        """shutil.rmtree on another user's folder in a shared temp directory."""
        if not ignore_errors:
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("bce_suite.scratch.shutil.rmtree", refused)
    assert remove_orphans(tmp_path) == []
    assert (orphan / "kernel.log").read_text() == "left behind"


def test_scratch_folder_is_named_after_this_process_and_clears_orphans_first(tmp_path, dead_pid):
    orphan = folder_with_a_file(tmp_path / f"bce-run-{dead_pid}-abc")
    with scratch_folder(tmp_path) as scratch:
        folder = tmp_path / os.path.basename(scratch)
        assert folder.is_dir() and owner_pid(folder) == os.getpid()
        assert not orphan.exists()
        (folder / "input.ipynb").write_text("{}")
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_scratch_folder_defaults_to_the_temp_directory(tmp_path, monkeypatch, dead_pid):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile reads TMPDIR again
    orphan = folder_with_a_file(tmp_path / f"bce-run-{dead_pid}-abc")
    with scratch_folder() as scratch:
        assert os.path.dirname(scratch) == str(tmp_path)
    assert not orphan.exists()
