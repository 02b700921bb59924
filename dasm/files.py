"""Writing files so that a crash never leaves half of one: every checkpoint, set and cache goes through here."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save_atomic(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file renamed over it (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path
