"""Run folders: distill (or select a coreset) into a folder, evaluate from it, resume either.

A run folder holds ``synthetic.pt`` (+ ``synthetic.png``), ``config.json``, ``history.csv``
(the matching loss per iteration), ``checkpoint.pt`` while a distillation is under way, and
``results.csv``: the tidy table every evaluation appends to. Herding and k-center keep the
embedding they select in under ``features/`` next to the run folder (one file per dataset,
network and seed). The CLI, the notebooks and the widgets all go through these functions.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import pandas as pd

from .config import dasm_preset_config, preset_config, preset_protocol, reference_size
from .coreset import CORESET_METHODS, cached_features, select_coreset
from .data import Dataset
from .distill import METHODS, DistillConfig, distill, resumed_seconds
from .evaluate import REAL_RECIPES, Protocol, append_results, evaluate_set, predictions_file
from .published import import_published
from .pruning import static_prune
from .sequential import DasmConfig, config_dict, dasm_distill
from .synthetic import (SyntheticSet, SyntheticSetError, check_matches, images_at, initial_indices, mark_split,
                        new_synthetic_set)
from .train import Recipe

DASM_METHODS = ("dasm", "dasm-nodifficulty", "static-prune")
STARTS_METHODS = ("idc-starts",)   # the images a distiller starts from, before any matching: its control
PREDICTIONS = "predictions"   # a run folder's per-sample predictions of every network that evaluated it
ALL_METHODS = CORESET_METHODS + METHODS + DASM_METHODS + STARTS_METHODS


def _timing_rows(data: Dataset, method: str, ipc: int, seed: int, preset: str, **seconds: float) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": data.name, "method": method, "ipc": ipc, "seed": seed, "arch": "-",
                          "metric": metric, "value": value, "protocol": "distill", "device": data.device.type,
                          "preset": preset} for metric, value in seconds.items()])


def run_config(dataset: str, method: str, ipc: int, *, preset: str = "cpu", seed: int = 0,
               **overrides: object) -> tuple[DistillConfig | DasmConfig | None, dict]:
    """The config :func:`distill_run` would use (``None`` for a coreset) and the settings it records.

    ``base`` picks the base distiller of DASM and static pruning (default IDC); ``drop`` is static
    pruning's fraction. Panels use this to size their progress bars without running anything.
    """
    overrides = dict(overrides)
    drop = overrides.pop("drop", None)
    drop = 0.3 if drop is None else float(drop)
    base_method = str(overrides.pop("base", None) or "idc")
    if method in CORESET_METHODS:
        features = {}
        if method != "random":   # the embedding herding and k-center select in (see dasm.coreset.cached_features)
            ref = reference_size(preset, dataset)
            features = {"feature_width": int(overrides.pop("feature_width", None) or ref["width"]),
                        "feature_epochs": int(overrides.pop("feature_epochs", None) or ref["epochs"])}
        return None, {"method": method, "ipc": ipc, "seed": seed, **features}
    if method in ("dasm", "dasm-nodifficulty"):
        if method == "dasm-nodifficulty":
            overrides["policy"] = "none"
        cfg = dasm_preset_config(preset, dataset, ipc, base_method, seed=seed, **overrides)
        return cfg, config_dict(cfg)
    if method in STARTS_METHODS:   # the base distiller's config: its init is the set
        cfg = preset_config(preset, dataset, method.removesuffix("-starts"), ipc, seed=seed, **overrides)
        return cfg, {**json.loads(json.dumps(cfg.__dict__)), "starts_of": cfg.method}
    prune = {}
    if method == "static-prune":   # its full-data reference network is sized like DASM's in the same preset
        ref = reference_size(preset, dataset)
        prune = {"drop": drop, "reference_epochs": int(overrides.pop("reference_epochs", None) or ref["epochs"]),
                 "reference_width": int(overrides.pop("probe_width", None) or ref["width"])}
    cfg = preset_config(preset, dataset, base_method if method == "static-prune" else method, ipc,
                        seed=seed, **overrides)
    settings = json.loads(json.dumps(cfg.__dict__))
    return cfg, {**settings, **prune}


def distill_run(data: Dataset, method: str, ipc: int, out: str | os.PathLike, *, preset: str = "cpu",
                seed: int = 0, progress: bool = True, callback: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                on_segment: Callable[[dict, SyntheticSet], None] | None = None,
                **overrides: object) -> SyntheticSet:
    """Make the ``ipc``-per-class set of ``method`` in ``out`` and return it.

    A finished run with the same settings is loaded instead of recomputed; an interrupted one
    (or one ended by ``should_stop``, which leaves its set as ``partial.pt``) resumes from its
    checkpoint. The distillation's wall time (``seconds``; for DASM also ``probe_seconds``, the
    probes' share of it) is appended to ``results.csv``.
    ``callback(log)`` runs after every distillation iteration and ``should_stop()`` ends it early
    (see :func:`dasm.distill.distill_segment`; every distilling method, static pruning included);
    ``on_segment(log, syn)`` runs when a DASM segment
    finishes (``dasm`` and ``dasm-nodifficulty`` only; see :func:`dasm.sequential.dasm_distill`).
    """
    method = method.lower()
    if method not in ALL_METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(ALL_METHODS)}.")
    out = Path(out)
    done = out / "synthetic.pt"
    cfg, settings = run_config(data.name, method, ipc, preset=preset, seed=seed, **overrides)
    if data.val_split is not None:   # a run on a training split is a different run from one on all of it
        settings = {**settings, "val_split": list(data.val_split)}
    if done.exists() and (out / "config.json").exists():
        if json.loads((out / "config.json").read_text()) == settings:
            return SyntheticSet.load(done, device=data.device)
        raise ValueError(f"{out} already holds a different run; choose another --out or delete it.")
    t0 = time.perf_counter()
    earlier = 0.0   # what interrupted calls before this one spent on the run's iterations
    if method in CORESET_METHODS:
        features = None if method == "random" else cached_features(
            data, out.parent / "features", width=settings["feature_width"], epochs=settings["feature_epochs"],
            seed=seed, progress=progress)
        idx = select_coreset(data, method, ipc, seed=seed, features=features)
        syn = SyntheticSet(data.x_train[idx].clone(), data.y_train[idx].clone(), data.num_classes,
                           meta={"dataset": data.name, "method": method, "ipc": ipc, "seed": seed,
                                 "mean": data.mean, "std": data.std, "indices": idx.cpu()})
        mark_split(syn, data)
        syn.save(done)
        (out / "config.json").write_text(json.dumps(settings, indent=2))
    else:
        base = getattr(cfg, "base", cfg)
        features = None
        if base.init == "modes":   # k-means modes in the embedding of the preset's full-data network (cached)
            size = ({"width": cfg.probe_width, "epochs": cfg.reference_epochs} if base is not cfg
                    else reference_size(preset, data.name))
            features = cached_features(data, out.parent / "features", width=size["width"], epochs=size["epochs"],
                                       seed=seed, progress=progress)
        if method in STARTS_METHODS:   # no matching: the set is written as it starts
            idx = None if cfg.init == "noise" else initial_indices(data, cfg.ipc, cfg.factor, cfg.init, cfg.seed,
                                                                    features)
            start = None if idx is None else images_at(data, idx, cfg.ipc, cfg.factor)
            syn = new_synthetic_set(data, cfg.ipc, cfg.factor, cfg.init, cfg.seed, features, start=start,
                                    method=method, config=asdict(cfg),
                                    **({} if idx is None else {"indices": idx.cpu()}))
            syn.save(done)
        elif method in ("dasm", "dasm-nodifficulty"):
            syn, _, _ = dasm_distill(data, cfg, out=out, progress=progress, callback=callback,
                                     should_stop=should_stop, on_segment=on_segment, features=features)
        else:
            if method == "static-prune":
                syn, hist, _ = static_prune(data, cfg, drop=settings["drop"],
                                            reference_epochs=settings["reference_epochs"],
                                            reference_width=settings["reference_width"], out=out, progress=progress,
                                            callback=callback, should_stop=should_stop, features=features)
            else:
                syn, hist = distill(data, cfg, out=out, progress=progress, callback=callback,
                                    should_stop=should_stop, features=features)
            earlier = resumed_seconds(hist)
        if not done.exists():   # stopped early: partial.pt + checkpoints; the next call resumes
            return syn
        syn.meta["preset"] = preset
        mark_split(syn, data)
        syn.save(done)
        if method in ("static-prune", *STARTS_METHODS) or data.val_split is not None:  # beyond the base config
            (out / "config.json").write_text(json.dumps(settings, indent=2))
    timing = {"seconds": time.perf_counter() - t0 + earlier}
    if method in ("dasm", "dasm-nodifficulty"):   # summed over segments, so a resumed run counts them all
        logs = syn.meta.get("segment_logs", [])
        seconds = sum(float(log["seconds"]) for log in logs)
        timing = {"seconds": seconds, "probe_seconds": seconds - sum(float(log["distill_seconds"]) for log in logs)}
    append_results(_timing_rows(data, method, ipc, seed, preset, **timing), out / "results.csv")
    return syn


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
    return syn, file.parent


def evaluate_run(path: str | os.PathLike, data: Dataset, *, preset: str = "cpu", seeds: list[int] = (0, 1, 2),
                 archs: list[str] | None = None, epochs: int | None = None, progress: bool = True,
                 syn: SyntheticSet | None = None) -> pd.DataFrame:
    """Evaluate the set of a run under ``preset``'s protocol, append to its ``results.csv``, return its rows.

    The returned rows are those of ``seeds`` x ``archs`` under this protocol, whether trained now or
    earlier: (seed, arch, protocol) combinations already in the table, with their per-sample predictions
    under ``predictions/``, are not trained again.
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
                          preset=preset, factor=syn.factor, segments=len(syn.segments), **split_columns(data))
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
                          keep_train=True)
        done = append_results(df[~df["seed"].isin(rows)], table_path)
    return done[(done["protocol"] == protocol.id) & done["seed"].astype(int).isin(list(seeds))].reset_index(drop=True)


def read_results(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """All ``results.csv`` tables under ``paths`` (folders searched recursively) as one table."""
    frames = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(p.rglob("results.csv"))
        frames += [pd.read_csv(f).assign(run=str(f.parent)) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["ALL_METHODS", "DASM_METHODS", "distill_run", "evaluate_run", "load_run_set", "read_results"]
