"""The controls every diagnosis figure shows its sets next to, and what the figures share about them.

A diagnosis is a comparison: a synthetic set is read against ``random`` (random real images, same
IPC: the baseline every difference is taken from), the images it started from (a ``starts``
method such as ``idc-starts``) and ``full`` (the full real data, or networks trained on it).
Sets are named by their method; :func:`paired_gap` takes each set's value minus the baseline's on
the same seed, so differences are paired. :func:`content_key` names caches by what they hold, so a
set that changes never reuses the numbers of the one it replaced.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .style import method_color

BASELINE = "random"   # the control every difference is taken from
FULL = "full"         # the full real data (or networks trained on all of it)
REAL = "real"         # the set name of real points in an embedding table


def is_starts(name: str) -> bool:
    """Whether ``name`` is a distiller's starting images (``idc-starts``), not distilled."""
    return str(name).split("-ipc")[0].endswith("-starts")


def is_control(name: str) -> bool:
    """``random``, a ``*-starts`` set or ``full``."""
    base = str(name).split("-ipc")[0]
    return base in (BASELINE, FULL) or is_starts(base)


def set_order(names) -> list[str]:
    """Distinct ``names`` with the controls first (full, random, starts), the others in their given order."""
    names = list(dict.fromkeys(map(str, names)))

    def rank(n: str) -> int:
        base = n.split("-ipc")[0]
        return 0 if base == FULL else 1 if base == BASELINE else 2 if is_starts(base) else 3
    return sorted(names, key=lambda n: (rank(n), names.index(n)))


def line_style(name: str) -> dict:
    """Matplotlib keywords of a set's line: its method's colour; controls dashed (full dotted, black)."""
    base = str(name).split("-ipc")[0]
    style = {"color": method_color(base), "linestyle": "-"}
    if base == FULL:
        style["linestyle"] = ":"
    elif is_control(base):
        style["linestyle"] = "--"
    return style


def paired_gap(frame: pd.DataFrame, value: str, keys: list[str], baseline: str = BASELINE,
               by: str = "set") -> pd.Series:
    """``frame[value]`` minus the ``baseline`` row's with the same ``keys`` (e.g. seed and bin): NaN where the
    baseline has no such row. The baseline's own rows get 0."""
    base = frame[frame[by] == baseline][keys + [value]].drop_duplicates(keys)
    merged = frame[keys].merge(base.rename(columns={value: "_base"}), on=keys, how="left")
    return pd.Series(frame[value].to_numpy(dtype=float) - merged["_base"].to_numpy(dtype=float), index=frame.index)


def numbers_frame(rows: list[dict]) -> pd.DataFrame:
    """The long table every numbers function returns: figure, set, seed, metric, baseline, value."""
    columns = ["figure", "set", "seed", "metric", "baseline", "value"]
    out = pd.DataFrame(rows, columns=columns)
    out["baseline"] = out["baseline"].fillna("")
    return out


def content_key(*parts: object) -> str:
    """A short hash of ``parts`` (tensors by dtype, shape and bytes; anything else by ``repr``)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Tensor):
            t = p.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                t = t.float()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(np.ascontiguousarray(t.numpy()).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:20]


__all__ = ["BASELINE", "FULL", "REAL", "is_starts", "is_control", "set_order", "line_style", "paired_gap",
           "numbers_frame", "content_key"]
