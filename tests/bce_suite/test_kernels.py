"""Kernels per run (bce_suite.kernels): a manager class per run token, its kernel started
with the run's thread count, registered under the token and stopped by it, even when the
stop comes before the kernel is up."""

import asyncio
import os

import psutil
import pytest

from bce_suite import kernels


def test_each_run_gets_its_own_manager_class():
    one = kernels.manager_class("run-1", 2, "/tmp/k.log")
    other = kernels.manager_class("run-2")
    assert issubclass(one, kernels.RunKernelManager) and one is not other
    assert (one.run_token, one.threads, one.stderr_log) == ("run-1", 2, "/tmp/k.log")
    assert (other.run_token, other.threads, other.stderr_log) == ("run-2", None, None)
    assert kernels.RunKernelManager.run_token == "", "the base class is left as it is"


def test_stopping_runs_with_no_kernel_stops_none():
    assert kernels.stop_kernels(["never-started"]) == 0
    kernels.forget("never-started")


def start(token: str, **attrs) -> kernels.RunKernelManager:
    manager = kernels.manager_class(token, **attrs)(kernel_name="python3")
    asyncio.run(manager.start_kernel())
    return manager


@pytest.mark.notebook
def test_a_kernel_runs_with_its_threads_and_log_and_stops_by_its_token(tmp_path):
    log = tmp_path / "kernel.log"
    manager = start("run-a", threads=1, log=str(log))
    try:
        process = psutil.Process(manager.provisioner.process.pid)
        assert process.environ()["OMP_NUM_THREADS"] == "1"
        assert log.exists(), "the kernel's own stderr goes to the log"
        assert kernels.stop_kernels(["run-b"]) == 0, "another run's token stops nothing"
        assert process.is_running()
        assert kernels.stop_kernels(["run-a"]) == 1
        process.wait(timeout=30)
        assert not process.is_running()
    finally:
        kernels.forget("run-a")
        kernels.forget("run-b")
    assert kernels.stop_kernels(["run-a"]) == 0, "forgotten once finished"
    kernels.forget("run-a")


@pytest.mark.notebook
def test_a_kernel_that_starts_after_its_run_was_stopped_stops_at_once():
    assert kernels.stop_kernels(["run-late"]) == 0  # Ctrl-C before the kernel is up
    try:
        manager = start("run-late")
        assert not manager.has_kernel, "shut down as it registered"
        assert not asyncio.run(manager.is_alive())
    finally:
        kernels.forget("run-late")


def test_threads_per_process_shares_the_cores_and_never_gives_none():
    cores = os.cpu_count() or 1
    assert kernels.threads_per_process(1) == cores
    assert kernels.threads_per_process(cores) == 1
    assert kernels.threads_per_process(4 * cores) == 1
