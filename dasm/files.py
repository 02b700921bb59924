"""Writing files so that a crash never leaves half of one: every checkpoint, set and cache goes through here."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch

T = TypeVar("T")


def save_atomic(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file renamed over it (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")   # per process: two writers never share one
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_or_compute(path: str | os.PathLike | None, compute: Callable[[], T], device: torch.device | str = "cpu",
                    valid: Callable[[T], bool] = lambda _: True) -> T:
    """What ``path`` holds (tensors on ``device``) if it exists and is ``valid``; else ``compute()``, saved
    there with :func:`save_atomic`. ``path=None`` only computes."""
    if path is not None and Path(path).exists():
        obj = torch.load(path, map_location=device, weights_only=True)
        if valid(obj):
            return obj
    obj = compute()
    if path is not None:
        save_atomic(obj, path)
    return obj


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` + ``.lock`` (waiting for it): several processes (benchmark
    suites run side by side) can then read-modify-write one results table without losing rows."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
