"""The committed, compact form of a benchmark cell: its set and its network's test predictions.

Run folders live under ``data/`` and are not committed; a figure drawn from a cell must still be
redrawable on a fresh clone without distilling or training. So every finished cell of the
diagnosis suites is archived in ``benchmarks/sets/<dataset>_<tag>/<method>-ipc<ipc>-seed<seed>.pt``:

- ``pred``: the evaluation network's predicted class of every image (uint8), per split (``test``,
  ``val`` with a validation split, ``train`` when the evaluation kept it);
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


def _same(a: object, b: object) -> bool:
    """Whether two archive records hold the same values (tensors compared by dtype, shape and content)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _keep(record: dict, dest: str | os.PathLike) -> Path:
    """Write ``record`` to ``dest`` unless ``dest`` already holds the same values (pickling is not
    byte-stable, so rewriting an unchanged record would still change the committed file)."""
    dest = Path(dest)
    if dest.exists() and _same(record, torch.load(dest, map_location="cpu", weights_only=False)):
        return dest
    return save_atomic(record, dest)


def archive_dir(dataset: str, tag: str = "cpu") -> Path:
    """``benchmarks/sets/<dataset>_<tag>``: where a suite's cells are archived."""
    return SETS / f"{dataset}_{tag}"


def archive_cell(run: str | os.PathLike, predictions: str | os.PathLike, dest: str | os.PathLike,
                 y_train: torch.Tensor | None = None) -> Path:
    """Archive the evaluation in ``predictions`` (a file under ``run/predictions``) and ``run``'s set into ``dest``.

    For the full-data networks (no set) pass ``y_train`` to keep each training image's loss.
    """
    state = load_predictions(predictions)
    keep = {k: state[k] for k in ("method", "ipc", "seed", "arch", "protocol", "dataset", "environment") if k in state}
    keep["pred"] = {split: z.argmax(1).to(torch.uint8) for split, z in state["logits"].items()}
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
    return _keep(keep, dest)


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


# ---------------------------------------------------------------------------------------
# The full-data network's weights: the feature space of the embedding figure
# ---------------------------------------------------------------------------------------

NETS = "nets"   # a sub-folder, so load_archive (which reads the folder's own *.pt) never takes it for a cell


def reference_net_path(folder: str | os.PathLike, seed: int = 0) -> Path:
    """``<folder>/nets/full-seed<seed>.pt``: where an archive keeps a full-data network's weights."""
    return Path(folder) / NETS / f"full-seed{seed}.pt"


def archive_reference_net(predictions: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Keep the weights of the full-data network whose predictions file is ``predictions`` (written with the
    training logits, so it holds ``net``: :func:`dasm.runs.full_data_run` does) as a float16 state dict in
    ``dest`` (about 0.6 MB for the width-128 ConvNet)."""
    state = load_predictions(predictions)
    if state.get("net") is None:
        raise ValueError(f"{predictions} holds no network weights: only a full-data run (keep_train) keeps them.")
    keep = {k: state[k] for k in ("method", "ipc", "seed", "arch", "protocol", "dataset") if k in state}
    keep["net"] = {k: v.half() if v.is_floating_point() else v for k, v in state["net"].items()}
    return _keep(keep, dest)


def load_reference_net(folder: str | os.PathLike, data, seed: int = 0) -> torch.nn.Module | None:
    """The archived full-data network of ``seed`` (float32, on ``data``'s device, eval mode), or None if not kept."""
    from dasm.nets import get_network

    file = reference_net_path(folder, seed)
    if not file.exists():
        return None
    rec = torch.load(file, map_location="cpu", weights_only=False)
    net = get_network(rec.get("arch", "convnet"), data.channels, data.num_classes, data.im_size)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in rec["net"].items()})
    return net.to(data.device).eval()
