"""Kernels for executed notebooks: encrypted where ZeroMQ can, tracked per run, stopped
through jupyter_client's own kernel manager."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import Any

from jupyter_client import AsyncKernelManager

_LOCK = threading.Lock()
_RUNNING: dict[str, list[AsyncKernelManager]] = {}  # run token -> its started kernels
_STOPPED: set[str] = set()  # tokens asked to stop: a kernel starting late stops at once


def threads_per_process(sharing: int) -> int:
    """Each process's share of this host's cores when `sharing` processes run at once, at
    least 1: with a thread per core in every one, OpenMP's spinning threads crowd each other
    and small ops get many times slower."""
    return max(1, (os.cpu_count() or 1) // sharing)


def _curve_available() -> bool:
    import zmq

    traits = AsyncKernelManager.class_trait_names()
    return "transport_encryption" in traits and bool(zmq.has("curve"))


class RunKernelManager(AsyncKernelManager):
    """A kernel manager that encrypts the kernel's sockets (CurveZMQ) where it can, so the
    kernel does not warn about plain TCP, and registers itself under its run's token."""

    run_token: str = ""
    threads: int | None = None  # OMP_NUM_THREADS for the kernel, or the environment's
    stderr_log: str | None = None  # a file for the kernel's own stderr (its log, not the cells')

    def __init__(self, **kwargs: Any) -> None:
        if _curve_available():
            kwargs.setdefault("transport_encryption", "required")
        super().__init__(**kwargs)

    async def start_kernel(self, **kw: Any) -> None:
        """Start the kernel (with its thread count), then register it under the token."""
        if self.threads is not None:
            kw["env"] = {**kw.get("env", os.environ), "OMP_NUM_THREADS": str(self.threads)}
        if self.stderr_log is None:
            await super().start_kernel(**kw)
        else:  # the kernel's log lines stay out of the terminal and its progress bar
            with open(self.stderr_log, "ab") as log:
                await super().start_kernel(**kw, stderr=log)
        with _LOCK:
            _RUNNING.setdefault(self.run_token, []).append(self)
            stop_now = self.run_token in _STOPPED
        if stop_now:
            await self.shutdown_kernel(now=True)


def manager_class(
    token: str, threads: int | None = None, log: str | None = None
) -> type[RunKernelManager]:
    """A RunKernelManager class whose kernels register under `token`."""
    attrs = {"run_token": token, "threads": threads, "stderr_log": log}
    return type("RunKernelManager", (RunKernelManager,), attrs)


def forget(token: str) -> None:
    """Drop a finished run's kernels from the registry."""
    with _LOCK:
        _RUNNING.pop(token, None)
        _STOPPED.discard(token)


def stop_kernels(tokens: list[str]) -> int:
    """Shut down the kernels of these runs now (their cells stop); return how many."""
    with _LOCK:
        _STOPPED.update(tokens)
        managers = [km for t in tokens for km in _RUNNING.get(t, [])]
    for km in managers:
        # The manager's own loop is busy in the run's thread: shut down from a fresh one.
        worker = threading.Thread(target=_shutdown, args=(km,), daemon=True)
        worker.start()
        worker.join(timeout=30)
    return len(managers)


def _shutdown(km: AsyncKernelManager) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(km.shutdown_kernel(now=True))
