"""Run folders and the run grid: distill (or select) into a folder, evaluate from it, resume either.

A run folder holds ``synthetic.pt`` (+ ``synthetic.png``), ``config.json`` (the run's resolved
:class:`~dasm.config.RunConfig`), ``starts.pt`` (the set before matching), ``history.csv`` (the
matching loss per iteration), ``checkpoint.pt`` while a distillation is under way, ``results.csv``
(the tidy table every evaluation appends to) and ``predictions/`` (each evaluation network's
per-sample logits). Herding, k-center and k-means starts keep the embedding they work in under
``features/`` next to the run folder. :func:`grid` and :func:`run_grid` run many cells, each in a
folder named by its settings. The CLI, the notebooks, the widgets and the benchmarks all go
through these functions.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from torch import Tensor

from .config import RunConfig, applicable, preset_protocol, resolve
from .coreset import cached_features, select_coreset
from .data import Dataset, canonical_name
from .distill import distill, resumed_seconds
from .evaluate import REAL_RECIPES, Protocol, append_results, evaluate_set, predictions_file
from .methods import method as method_spec
from .published import import_published
from .pruning import static_prune
from .sequential import DEFAULT_SEGMENTS, dasm_distill
from .synthetic import (SyntheticSet, SyntheticSetError, check_matches, images_at, initial_indices, mark_split,
                        new_synthetic_set)
from .train import Recipe

PREDICTIONS = "predictions"   # a run folder's per-sample predictions of every network that evaluated it


def _timing_rows(cfg: RunConfig, device: str, **seconds: float) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": cfg.dataset, "method": cfg.method, "ipc": cfg.ipc, "seed": cfg.seed, "arch": "-",
                          "metric": metric, "value": value, "protocol": "distill", "device": device,
                          "preset": cfg.preset} for metric, value in seconds.items()])


def run_config(data: Dataset, method: str, ipc: int, *, preset: str = "cpu", seed: int = 0,
               **overrides: object) -> RunConfig:
    """The resolved configuration of a run of ``method`` on ``data`` (its validation split included)."""
    return resolve(preset, data.name, method, ipc, seed=seed, val_split=data.val_split, **overrides)


def distill_run(data: Dataset, method: str | RunConfig, ipc: int | None = None, out: str | os.PathLike = ".", *,
                preset: str = "cpu", seed: int = 0, progress: bool = True,
                callback: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                on_segment: Callable[[dict, SyntheticSet], None] | None = None,
                **overrides: object) -> SyntheticSet:
    """Make the ``ipc``-per-class set of ``method`` in ``out`` and return it (``method`` may also be a
    :class:`~dasm.config.RunConfig` from :func:`run_config`, then ``ipc`` and the settings come from it).

    A finished run with the same settings is loaded instead of recomputed; an interrupted one
    (or one ended by ``should_stop``, which leaves its set as ``partial.pt``) resumes from its
    checkpoint. The distillation's wall time (``seconds``; for DASM also ``probe_seconds``, the
    probes' share of it) is appended to ``results.csv``. ``callback(log)`` runs after every
    distillation iteration and ``should_stop()`` ends it early (see :func:`dasm.distill.distill_segment`);
    ``on_segment(log, syn)`` runs when a DASM segment finishes (see :func:`dasm.sequential.dasm_distill`).
    """
    cfg = method if isinstance(method, RunConfig) else run_config(data, method, ipc, preset=preset, seed=seed,
                                                                  **overrides)
    if (cfg.dataset, cfg.val_split) != (data.name, data.val_split):
        raise ValueError(f"the run's configuration is for {cfg.dataset} (split {cfg.val_split}), the data is "
                         f"{data.name} (split {data.val_split}): resolve it with dasm.runs.run_config(data, ...).")
    out = Path(out)
    done, stamp = out / "synthetic.pt", cfg.to_dict()
    if done.exists() and (out / "config.json").exists():
        if json.loads((out / "config.json").read_text()) == stamp:
            return SyntheticSet.load(done, device=data.device)
        raise ValueError(f"{out} already holds a different run; choose another --out or delete it.")
    t0 = time.perf_counter()
    hooks = {"progress": progress, "callback": callback, "should_stop": should_stop}
    make = {"coreset": _select, "starts": _starts, "distiller": _distill, "sequential": _sequential}[cfg.family]
    syn, earlier = make(data, cfg, out, stamp, on_segment=on_segment, **hooks)
    if not done.exists():   # stopped early: partial.pt + checkpoints; the next call resumes
        return syn
    timing = {"seconds": time.perf_counter() - t0 + earlier}
    if cfg.sequential is not None:   # summed over segments, so a resumed run counts them all
        logs = syn.meta.get("segment_logs", [])
        seconds = sum(float(log["seconds"]) for log in logs)
        timing = {"seconds": seconds, "probe_seconds": seconds - sum(float(log["distill_seconds"]) for log in logs)}
    append_results(_timing_rows(cfg, data.device.type, **timing), out / "results.csv")
    return syn


def _features(data: Dataset, cfg: RunConfig, out: Path, progress: bool) -> Tensor | None:
    """The cached embedding ``cfg`` selects in or starts its modes from (``features/`` next to the run folder)."""
    if cfg.features is None:
        return None
    return cached_features(data, out.parent / "features", width=cfg.features.feature_width,
                           epochs=cfg.features.feature_epochs, seed=cfg.seed, progress=progress)


def _finish(data: Dataset, syn: SyntheticSet, cfg: RunConfig, out: Path, stamp: dict) -> SyntheticSet:
    """Mark ``syn`` with the run's preset and split, save it and its ``config.json``: the run is done."""
    syn.meta["preset"] = cfg.preset
    mark_split(syn, data)
    syn.save(out / "synthetic.pt")
    (out / "config.json").write_text(json.dumps(stamp, indent=2))
    return syn


def _select(data: Dataset, cfg: RunConfig, out: Path, stamp: dict, *, progress: bool, **_: object
            ) -> tuple[SyntheticSet, float]:
    """A coreset: real images picked by ``cfg.method``."""
    idx = select_coreset(data, cfg.method, cfg.ipc, seed=cfg.seed, features=_features(data, cfg, out, progress))
    syn = SyntheticSet(data.x_train[idx].clone(), data.y_train[idx].clone(), data.num_classes,
                       meta={"dataset": data.name, "method": cfg.method, "ipc": cfg.ipc, "seed": cfg.seed,
                             "mean": data.mean, "std": data.std, "indices": idx.cpu()})
    return _finish(data, syn, cfg, out, stamp), 0.0


def _starts(data: Dataset, cfg: RunConfig, out: Path, stamp: dict, *, progress: bool, **_: object
            ) -> tuple[SyntheticSet, float]:
    """The base distiller's starting set, not distilled (its real images' ``indices`` recorded)."""
    d = cfg.distill
    features = _features(data, cfg, out, progress)
    idx = None if d.init == "noise" else initial_indices(data, d.ipc, d.factor, d.init, d.seed, features)
    start = None if idx is None else images_at(data, idx, d.ipc, d.factor)
    syn = new_synthetic_set(data, d.ipc, d.factor, d.init, d.seed, features, start=start, method=cfg.method,
                            config=asdict(d), **({} if idx is None else {"indices": idx.cpu()}))
    return _finish(data, syn, cfg, out, stamp), 0.0


def _distill(data: Dataset, cfg: RunConfig, out: Path, stamp: dict, *, progress: bool, callback, should_stop,
             **_: object) -> tuple[SyntheticSet, float]:
    """One pass of a distiller."""
    syn, hist = distill(data, cfg.distill, out=out, progress=progress, callback=callback, should_stop=should_stop,
                        features=_features(data, cfg, out, progress), stamp=stamp)
    if (out / "synthetic.pt").exists():
        _finish(data, syn, cfg, out, stamp)
    return syn, resumed_seconds(hist)


def _sequential(data: Dataset, cfg: RunConfig, out: Path, stamp: dict, *, progress: bool, callback, should_stop,
                on_segment=None) -> tuple[SyntheticSet, float]:
    """DASM or one of its ablations (segments without difficulty; static pruning)."""
    features = _features(data, cfg, out, progress)
    if cfg.sequential is not None:
        syn, _, _ = dasm_distill(data, cfg.sequential, out=out, progress=progress, callback=callback,
                                 should_stop=should_stop, on_segment=on_segment, features=features, stamp=stamp)
        earlier = 0.0
    else:
        p = cfg.prune
        syn, hist, _ = static_prune(data, cfg.distill, drop=p.drop, score=p.score, reference_epochs=p.reference_epochs,
                                    reference_width=p.reference_width, out=out, progress=progress, callback=callback,
                                    should_stop=should_stop, features=features, stamp=stamp)
        earlier = resumed_seconds(hist)
    if (out / "synthetic.pt").exists():
        _finish(data, syn, cfg, out, stamp)
    return syn, earlier


def split_columns(data: Dataset) -> dict[str, float]:
    """The result columns that tell rows measured with a held-out validation split (``val_fraction``) apart."""
    return {"val_fraction": data.val_split[0]} if data.val_split is not None else {}


def load_run_set(path: str | os.PathLike, *, import_format: str | None = None, dataset: str | None = None,
                 factor: int = 1) -> tuple[SyntheticSet, Path]:
    """The synthetic set of a run folder or ``.pt`` file (or a published set), and the folder for its results."""
    path = Path(path)
    if import_format is not None:
        if dataset is None:
            raise ValueError("a published set needs --dataset (its images are normalised with that dataset's stats).")
        return import_published(path, dataset, import_format, factor=factor), path.parent
    file = path / "synthetic.pt" if path.is_dir() else path
    if path.is_dir() and not file.exists():
        raise SyntheticSetError(f"{path} holds no synthetic.pt: distill into it first "
                                "(`dasm distill ... --out {path}`) or give a .pt file.")
    syn = SyntheticSet.load(file)
    if "dataset" not in syn.meta:
        raise SyntheticSetError(f"{file} does not say which dataset it was distilled from (meta['dataset']).")
    if dataset is not None and canonical_name(dataset) != syn.meta["dataset"]:
        raise SyntheticSetError(f"{file} was distilled from {syn.meta['dataset']!r}, but --dataset says {dataset!r}; "
                                "drop --dataset (a dasm set knows its dataset) or give the set of that dataset.")
    return syn, file.parent


def evaluate_run(path: str | os.PathLike, data: Dataset, *, preset: str = "cpu", seeds: list[int] = (0, 1, 2),
                 archs: list[str] | None = None, epochs: int | None = None, progress: bool = True,
                 syn: SyntheticSet | None = None, keep_train: bool = False) -> pd.DataFrame:
    """Evaluate the set of a run under ``preset``'s protocol, append to its ``results.csv``, return its rows.

    The returned rows are those of ``seeds`` x ``archs`` under this protocol, whether trained now or
    earlier: (seed, arch, protocol) combinations already in the table, with their per-sample predictions
    under ``predictions/``, are not trained again. ``keep_train`` keeps each network's predictions on the
    training images too (what the difficulty histograms split by), 1.2 MB an evaluation on Fashion-MNIST.
    """
    if syn is None:
        syn, folder = load_run_set(path)
    else:
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
    check_matches(syn, data)
    method = str(syn.meta.get("method", "unknown"))
    overrides = {"epochs": epochs} if epochs else {}
    protocol = preset_protocol(preset, data.name, method, **overrides)
    table_path = folder / "results.csv"
    done = pd.read_csv(table_path) if table_path.exists() else pd.DataFrame(columns=["seed", "arch", "protocol"])
    x, y = syn.decoded()
    for arch in archs or [protocol.arch]:
        proto = protocol.with_arch(arch)
        rows = set(done[(done["protocol"] == proto.id)]["seed"].astype(int)) if len(done) else set()
        kept = {s for s in rows if predictions_file(folder / PREDICTIONS, method, syn.ipc, proto, s).exists()}
        todo = [s for s in seeds if s not in kept]   # an older row without its predictions is trained again
        if not todo:
            continue
        df = evaluate_set(data, x.to(data.device), y.to(data.device), method=method, ipc=syn.ipc,
                          protocol=proto, seeds=todo, progress=progress,
                          checkpoint_dir=folder / "eval-checkpoints", predictions_dir=folder / PREDICTIONS,
                          keep_train=keep_train, preset=preset, factor=syn.factor, segments=len(syn.segments), **split_columns(data))
        append_results(df[~df["seed"].isin(rows)], table_path)
    done = pd.read_csv(table_path) if table_path.exists() else done
    ids = [protocol.with_arch(a).id for a in archs or [protocol.arch]]
    sel = done[done["protocol"].isin(ids) & done["seed"].astype(int).isin(list(seeds))]
    return sel.reset_index(drop=True)


def full_data_run(data: Dataset, out: str | os.PathLike, *, seeds: list[int] = (0,), arch: str = "convnet",
                  recipe: Recipe | None = None, progress: bool = True) -> pd.DataFrame:
    """The full-data reference: train ``arch`` on all of ``data``'s training set, rows appended to ``out/results.csv``.

    ``recipe`` defaults to the dataset's :data:`~dasm.evaluate.REAL_RECIPES` entry. Seeds already
    in the table under the same protocol are not trained again (per-epoch checkpoints under
    ``out/checkpoints`` resume an interrupted one); returns the rows of ``seeds``.
    """
    out = Path(out)
    protocol = Protocol(arch=arch, recipe=recipe or REAL_RECIPES[data.name])
    table_path = out / "results.csv"
    done = pd.read_csv(table_path) if table_path.exists() else pd.DataFrame(columns=["seed", "protocol"])
    rows = set(done[done["protocol"] == protocol.id]["seed"].astype(int))
    n = round(len(data.y_train) / data.num_classes)
    todo = [s for s in seeds if s not in rows or not predictions_file(out / PREDICTIONS, "full", n, protocol, s).exists()]
    if todo:
        df = evaluate_set(data, data.x_train, data.y_train, method="full", ipc=n, protocol=protocol, seeds=todo,
                          progress=progress, checkpoint_dir=out / "checkpoints", predictions_dir=out / PREDICTIONS,
                          keep_train=True, keep_net=True)
        done = append_results(df[~df["seed"].isin(rows)], table_path)
    return done[(done["protocol"] == protocol.id) & done["seed"].astype(int).isin(list(seeds))].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# The run grid: every "distill, then evaluate, for these methods x IPCs x seeds" goes through here
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One run of a grid: ``method`` at ``ipc`` distilled with ``seed``, with ``overrides`` of the preset."""

    method: str
    ipc: int
    seed: int = 0
    overrides: tuple[tuple[str, object], ...] = ()

    def settings(self) -> dict:
        """The overrides as keyword arguments."""
        return dict(self.overrides)


def grid(methods: list[str], ipcs: list[int], seeds: list[int] = (0,), **overrides: object) -> list[Cell]:
    """Every (method, IPC, seed) cell, each with the ``overrides`` its method takes (``None`` dropped).

    A segmented method gets at most one segment per image per class (``segments``, given or
    :data:`~dasm.sequential.DEFAULT_SEGMENTS`, capped at the IPC).
    """
    cells = []
    for ipc in ipcs:
        for name in methods:
            over = applicable(name, overrides)
            if method_spec(name).segments:   # the given number, or DasmConfig's default, at most the IPC
                over["segments"] = min(int(over.get("segments", DEFAULT_SEGMENTS)), ipc)
            cells += [Cell(method_spec(name).name, ipc, seed, tuple(sorted(over.items()))) for seed in seeds]
    return cells


def cell_folder(root: str | os.PathLike, data: Dataset, cell: Cell, preset: str = "cpu") -> Path:
    """``root/<dataset>-<method>-ipc<ipc>-seed<seed>-<key>``: one folder per setting, so runs never collide."""
    return Path(root) / run_config(data, cell.method, cell.ipc, preset=preset, seed=cell.seed, **cell.settings()).name()


def run_cell(data: Dataset, cell: Cell, root: str | os.PathLike, *, preset: str = "cpu",
             eval_seeds: list[int] | None = None, archs: list[str] | None = None, epochs: int | None = None,
             progress: bool = True, should_stop: Callable[[], bool] | None = None,
             keep_train: bool = False) -> pd.DataFrame:
    """Distill (or select) one cell into its folder under ``root`` and evaluate it (``eval_seeds``, default
    the cell's own seed); return its rows: the distillation time and every evaluation asked for.
    Done work is skipped; a cell stopped by ``should_stop`` returns no rows (its checkpoint waits)."""
    cfg = run_config(data, cell.method, cell.ipc, preset=preset, seed=cell.seed, **cell.settings())
    out = Path(root) / cfg.name()
    distill_run(data, cfg, out=out, progress=progress, should_stop=should_stop)
    if not (out / "synthetic.pt").exists():
        return pd.DataFrame()
    rows = evaluate_run(out, data, preset=preset, seeds=eval_seeds or [cell.seed], archs=archs, epochs=epochs,
                        progress=progress, keep_train=keep_train)
    table = pd.read_csv(out / "results.csv")
    timing = table[(table.protocol == "distill") & (table.seed == cell.seed)].groupby("metric").tail(1)
    return pd.concat([timing, rows], ignore_index=True).assign(run=str(out))


def run_grid(data: Dataset, cells: list[Cell], root: str | os.PathLike, *, preset: str = "cpu",
             eval_seeds: list[int] | None = None, archs: list[str] | None = None, epochs: int | None = None,
             progress: bool = True) -> pd.DataFrame:
    """:func:`run_cell` for every cell (resumable: finished distillations and evaluations are reused); all rows."""
    frames = [run_cell(data, c, root, preset=preset, eval_seeds=eval_seeds, archs=archs, epochs=epochs,
                       progress=progress) for c in cells]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_results(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """All ``results.csv`` tables under ``paths`` (folders searched recursively) as one table."""
    frames = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(p.rglob("results.csv"))
        frames += [pd.read_csv(f).assign(run=str(f.parent)) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["Cell", "grid", "cell_folder", "run_cell", "run_grid", "run_config", "distill_run", "evaluate_run",
           "full_data_run", "load_run_set", "read_results"]
