"""DASM's run folder: the marker that claims it for one configuration, each finished stage (a segment or the
joint pass) saved and loaded for resume, and the files of a finished or stopped run.

    out/dasm.json               the DasmConfig the folder holds (a rerun with other settings is refused)
    out/segment<k>/, out/joint/ one finished stage: synthetic.pt, history.csv, config.json, selection.pt
                                (segments), done.json (its log, written last: only complete stages resume)
    out/history.csv, segments.csv, synthetic.pt, starts.pt, config.json   the finished run (a stopped one
                                leaves the partial set instead, which the next run resumes from)
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch

from .distill import PARTIAL, save_run, save_starts
from .synthetic import SyntheticSet


def config_dict(cfg) -> dict:
    """A dataclass config as plain JSON values (what ``config.json`` stores and resumed runs are compared with)."""
    return json.loads(json.dumps(asdict(cfg), default=str))


def claim_folder(out: Path | None, settings: dict) -> None:
    """Mark ``out`` as holding the segments of ``settings``; segments saved with other settings must not be
    resumed into it."""
    if out is None:
        return
    marker = out / "dasm.json"
    if marker.exists() and json.loads(marker.read_text()) != settings:
        raise ValueError(f"{out} holds DASM segments distilled with other settings ({marker}); "
                         "choose another --out or delete the folder.")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, indent=2))


def load_stage(stage_dir: Path | None, device: torch.device) -> tuple[SyntheticSet, pd.DataFrame, dict] | None:
    """The set, history and log of a finished stage (a segment or the joint pass), or None if not finished."""
    if stage_dir is None or not (stage_dir / "done.json").exists():
        return None
    return (SyntheticSet.load(stage_dir / "synthetic.pt", device=device), pd.read_csv(stage_dir / "history.csv"),
            json.loads((stage_dir / "done.json").read_text()))


def save_stage(stage_dir: Path, syn: SyntheticSet, hist: pd.DataFrame, cfg, log: dict,
               selection: dict | None = None) -> None:
    """Save a finished stage distilled with ``cfg`` (a DistillConfig); ``done.json`` is written last, so only
    complete stages are resumed from."""
    save_run(stage_dir, syn, hist, asdict(cfg))
    if selection is not None:
        torch.save(selection, stage_dir / "selection.pt")
    (stage_dir / "done.json").write_text(json.dumps(log, indent=2))


def write_run(out: Path, syn: SyntheticSet, history: pd.DataFrame, seg_table: pd.DataFrame, *, finished: bool,
              starts: list[torch.Tensor | None], stamp: dict) -> None:
    """The files of a run in ``out``: the finished set with its starts (``starts``: each segment's start
    images) and ``config.json`` (``stamp``), or the partial set that the next run resumes from."""
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / "history.csv", index=False)
    seg_table.to_csv(out / "segments.csv", index=False)
    if not finished:   # the next run resumes from the segment checkpoints
        syn.save(out / PARTIAL)
        return
    if all(s is not None for s in starts):   # a segment saved without its start images has none to join
        save_starts(out, replace(syn, images=torch.cat(starts).to(syn.device), meta=dict(syn.meta)))
    syn.save(out / "synthetic.pt")
    (out / "config.json").write_text(json.dumps(stamp, indent=2))
    for stale in (out / PARTIAL, (out / PARTIAL).with_suffix(".png")):
        stale.unlink(missing_ok=True)
