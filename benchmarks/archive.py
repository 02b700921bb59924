"""The committed, compact form of a benchmark cell: its set and its network's test predictions.

Run folders live under ``data/`` and are not committed; a figure drawn from a cell must still be
redrawable on a fresh clone without distilling or training. So every finished cell of the
diagnosis suites is archived in ``benchmarks/sets/<dataset>_<tag>/<method>-ipc<ipc>-seed<seed>.pt``:

- ``pred``: the evaluation network's predicted class of every test image (uint8), per split;
- a real-image set (a coreset, or a distiller's starts) as its training ``indices``, anything
  else as its stored ``images`` in float16 (a few hundred kB at IPC 50 on 28x28 data);
- the full-data networks (``method = full``) instead keep their test ``logits`` (float16, for
  the difficulty of every test image) and each training image's ``train_loss``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dasm.evaluate import load_predictions
from dasm.files import save_atomic
from dasm.synthetic import SyntheticSet, images_at

ROOT = Path(__file__).resolve().parent
SETS = ROOT / "sets"


def archive_dir(dataset: str, tag: str = "cpu") -> Path:
    """``benchmarks/sets/<dataset>_<tag>``: where a suite's cells are archived."""
    return SETS / f"{dataset}_{tag}"


def archive_cell(run: str | os.PathLike, predictions: str | os.PathLike, dest: str | os.PathLike,
                 y_train: torch.Tensor | None = None) -> Path:
    """Archive the evaluation in ``predictions`` (a file under ``run/predictions``) and ``run``'s set into ``dest``.

    For the full-data networks (no set) pass ``y_train`` to keep each training image's loss.
    """
    state = load_predictions(predictions)
    keep = {k: state[k] for k in ("method", "ipc", "seed", "arch", "protocol", "dataset") if k in state}
    keep["pred"] = {split: z.argmax(1).to(torch.uint8) for split, z in state["logits"].items() if split != "train"}
    if keep.get("method") == "full":
        keep["logits"] = {"test": state["logits"]["test"].half()}
        if y_train is not None and "train" in state["logits"]:
            keep["train_loss"] = torch.nn.functional.cross_entropy(state["logits"]["train"], y_train,
                                                                   reduction="none").half()
    else:
        syn = SyntheticSet.load(Path(run) / "synthetic.pt")
        keep["set"] = {"labels": syn.labels.to(torch.uint8), "num_classes": syn.num_classes, "factor": syn.factor,
                       "segments": syn.segments}
        if "indices" in syn.meta:
            keep["set"]["indices"] = torch.as_tensor(syn.meta["indices"]).to(torch.int32)
        else:
            keep["set"]["images"] = syn.images.half()
    return save_atomic(keep, dest)


def load_archive(folder: str | os.PathLike) -> list[dict]:
    """Every archived cell under ``folder``: dicts with ``method, ipc, seed, arch``, ``pred`` and the rest."""
    out = []
    for f in sorted(Path(folder).glob("*.pt")):
        rec = torch.load(f, map_location="cpu", weights_only=False)
        if "logits" in rec:
            rec["logits"] = {k: v.float() for k, v in rec["logits"].items()}
        out.append({**rec, "file": f})
    return out


def archived_set(rec: dict, data) -> SyntheticSet:
    """The set of an archived cell, rebuilt (real-image sets from ``data``'s training images)."""
    s = rec["set"]
    if "indices" in s:
        ipc = len(s["labels"]) // s["num_classes"]
        images, _ = images_at(data, s["indices"].long().to(data.y_train.device), ipc, s["factor"])
    else:
        images = s["images"].float()
    return SyntheticSet(images, s["labels"].long(), s["num_classes"], s["factor"], [tuple(t) for t in s["segments"]],
                        {"dataset": rec.get("dataset"), "method": rec["method"], "ipc": rec["ipc"], "seed": rec["seed"]})
