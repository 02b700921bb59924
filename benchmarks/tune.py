"""Choose a setting on a validation split, never on the test split.

Every variant (a set of overrides of the preset) is distilled with ``--val-fraction`` of each
class held out (the distiller never sees those images), then evaluated; the variants are ranked
by validation accuracy, and the choice is the best mean over the seeds. Test accuracy is printed
next to the ranking only as a report of the choice, never to make it.

    python benchmarks/tune.py --dataset fashion-mnist --method idc --ipc 50 \\
        --variants "lr_img=0.1;lr_img=0.5" --seeds 0,1

    python benchmarks/tune.py --dataset fashion-mnist --method dasm --ipc 50 \\
        --variants "joint=0;joint=0.4" --seeds 0

A variant is a set of overrides of the preset, so what it means changes when the preset does.
Every row therefore also records the variant's resolved settings: ``setting`` (one line:
factor, init, iterations, lr_img, ...) and ``config`` (a hash of every setting but the seed).
Resumable by ``config``: a (config, seed) already in the table is skipped whatever its label,
and the run folders (``data/runs/bench/<preset>/tune/``, named by their settings) keep the
distillation checkpoints.
Writes ``benchmarks/results/tune_<dataset>_<preset>.csv``: one row per variant x seed x metric. On a
GPU (``--device cuda``) the table and run folders take a ``_cuda`` suffix
(``tune_<dataset>_<preset>_cuda.csv``, ``<preset>_cuda/tune/``), like every suite's, so a
variant measured on one device never counts as measured on the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from benchmarks.cells import ROOT, RUNS, has_row, runs_root, table_path
from benchmarks.report import BLOCKS, to_markdown, write_block

from dasm.config import describe, resolve
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import append_results
from dasm.runs import Cell, run_cell

# 6,000 Fashion-MNIST images: one accuracy near 75% has a standard error of about 0.6 points, so two
# variants closer than about 1.5 points are not told apart by one seed.
VAL_FRACTION = 0.1


def parse_variants(text: str) -> list[dict[str, object]]:
    """``"lr_img=0.1,iterations=50;lr_img=0.5"`` -> ``[{"lr_img": 0.1, "iterations": 50}, {"lr_img": 0.5}]``."""
    variants = []
    for item in filter(None, (v.strip() for v in text.split(";"))):
        over = {}
        for pair in item.split(","):
            key, eq, value = pair.strip().partition("=")
            if not eq or not key.strip():
                raise ValueError(f"Variant {item!r}: {pair!r} is not key=value (e.g. lr_img=0.1).")
            try:
                over[key.strip()] = json.loads(value.strip())
            except json.JSONDecodeError:
                over[key.strip()] = value.strip()   # a plain string such as policy=grow
        variants.append(over)
    if not variants:
        raise ValueError("Give at least one variant, e.g. --variants 'lr_img=0.1;lr_img=0.5'.")
    return variants


def variant_name(over: dict[str, object]) -> str:
    """The variant's label in tables and run folders: its overrides as ``key=value`` pairs."""
    return ",".join(f"{k}={v}" for k, v in over.items()) or "preset"


def resolve_variant(dataset: str, method: str, ipc: int, preset: str, over: dict[str, object]) -> tuple[str, str]:
    """The variant's ``(config, setting)``: the key of its resolved settings (every one but the seed and the
    split, :meth:`dasm.config.RunConfig.key`) and a one-line description of them, so rows stay readable and
    comparable after the preset changes."""
    cfg = resolve(preset, dataset, method, ipc, **over)
    if cfg.distill is None:
        return cfg.key(), method
    text = describe(cfg.distill) if method == cfg.distill.method else f"{method} on {describe(cfg.distill)}"
    if cfg.sequential is not None:
        text += f" K{cfg.sequential.segments} {cfg.sequential.policy}/{cfg.sequential.score}"
    return cfg.key(), text


def rank_variants(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std validation accuracy per variant (and test accuracy beside it), best validation first.

    A variant is its resolved ``config`` where the table has one (its first label names it), else
    its label. ``chosen`` marks the variant with the highest mean validation accuracy per (dataset,
    method, IPC, validation fraction).
    """
    groups = [k for k in ("dataset", "method", "ipc", "val_fraction") if k in table.columns]
    unit = "config" if "config" in table.columns else "variant"
    acc = table[table.metric.isin(["val_acc", "test_acc"])]
    # groupby, not pivot_table: only the (IPC, variant) pairs that were run, not every combination
    stats = acc.groupby([*groups, unit, "metric"]).value.agg(["mean", "std", "count"]).unstack("metric")
    val = stats.xs("val_acc", axis=1, level="metric")
    ranked = pd.DataFrame({"val_mean": val["mean"], "val_std": val["std"].fillna(0.0),
                           "seeds": val["count"].fillna(0).astype(int),
                           "test_mean": stats[("mean", "test_acc")]}).reset_index()
    if unit == "config":
        names = acc.groupby([*groups, unit])[["variant", "setting"]].first().reset_index()
        ranked = ranked.merge(names, on=[*groups, unit])
    ranked = ranked.sort_values([*groups, "val_mean"], ascending=[True] * len(groups) + [False])
    ranked["chosen"] = ~ranked.duplicated(groups)
    return ranked.reset_index(drop=True)


def block_name(dataset: str, method: str, ipc: int) -> str:
    """The docs block that shows the ranking of ``method``'s variants at ``ipc`` on ``dataset`` (cpu tables)."""
    return f"tune-{dataset}-{method}-{ipc}"


def ranking(table: pd.DataFrame, method: str, ipc: int) -> pd.DataFrame:
    """``method``'s variants at ``ipc`` in ``table``, ranked by :func:`rank_variants`."""
    ranked = rank_variants(table)
    return ranked[(ranked.method == method) & (ranked.ipc == ipc)].reset_index(drop=True)


def shown_ranking(table: pd.DataFrame, method: str, ipc: int) -> pd.DataFrame:
    """The ranking a docs block shows: ``method``'s variants at ``ipc`` on the standard validation split."""
    return ranking(table[table.val_fraction == VAL_FRACTION], method, ipc)


def ranking_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """One (method, IPC)'s ranking as shown: variant, resolved setting, validation and test accuracy, seeds."""
    return pd.DataFrame({
        "variant": ranked.variant, "setting": ranked.setting,
        "validation (%)": [f"{m:.2f}" + (f" ± {s:.2f}" if n > 1 else "")
                           for m, s, n in zip(ranked.val_mean, ranked.val_std, ranked.seeds)],
        "test (%)": ranked.test_mean.map("{:.2f}".format), "seeds": ranked.seeds,
        "best on validation": ranked.chosen.map({True: "yes", False: ""})})


def _block(method: str, ipc: int, dataset: str = "fashion-mnist", preset: str = "cpu") -> str:
    return to_markdown(ranking_table(shown_ranking(pd.read_csv(table_path("tune", dataset, preset)), method, ipc)))


def idc1_block() -> str:
    """docs/presets.md: every IDC variant run at IPC 1 on the validation split, best first."""
    return _block("idc", 1)


def idc10_block() -> str:
    """docs/presets.md: every IDC variant run at IPC 10 on the validation split, best first."""
    return _block("idc", 10)


def idc50_block() -> str:
    """docs/presets.md: every IDC variant run at IPC 50 on the validation split, best first."""
    return _block("idc", 50)


def dasm50_block() -> str:
    """docs/presets.md: every DASM variant run at IPC 50 on the validation split, best first."""
    return _block("dasm", 50)


def tune_paths(results: str | Path, runs: str | Path, dataset: str, preset: str, device: str) -> tuple[Path, Path]:
    """The result table and the folder of run folders of ``dataset``'s tuning under ``preset`` on ``device``."""
    return table_path("tune", dataset, preset, device, results), runs_root(Path(runs), preset, device) / "tune"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the variants not yet in the table, print the ranking and return it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--method", required=True)
    p.add_argument("--ipc", type=int, required=True)
    p.add_argument("--variants", required=True, help="';'-separated variants of ','-separated key=value overrides")
    p.add_argument("--seeds", default="0")
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS))
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--results", default=str(ROOT / "results"), help="folder of tune_<dataset>_<preset>[_<device>].csv")
    args = p.parse_args(argv)
    progress = not args.no_progress
    data = load_dataset(args.dataset, device=resolve_device(args.device), val_fraction=args.val_fraction)
    path, runs = tune_paths(args.results, args.runs, data.name, args.preset, data.device.type)
    for over in parse_variants(args.variants):
        name = variant_name(over)
        key, setting = resolve_variant(data.name, args.method, args.ipc, args.preset, over)
        for seed in [int(s) for s in args.seeds.split(",")]:
            table = pd.read_csv(path) if path.exists() else pd.DataFrame()
            if "config" in table and has_row(table[(table.config == key) & (table.val_fraction == args.val_fraction)],
                                           args.method, args.ipc, seed):
                continue
            rows = run_cell(data, Cell(args.method, args.ipc, seed, tuple(over.items())), runs, preset=args.preset,
                            progress=progress)
            rows = rows[rows.protocol != "distill"].drop(columns="run")
            append_results(rows.assign(variant=name, preset=args.preset, config=key, setting=setting), path)
    table = pd.read_csv(path)
    ranked = ranking(table, args.method, args.ipc)
    committed = Path(args.results).resolve() == (ROOT / "results").resolve()
    block = block_name(data.name, args.method, args.ipc)
    # rankings the docs show are rewritten from the committed table; others have no block
    if committed and data.device.type == "cpu" and args.preset == "cpu" and block in {b.name for b in BLOCKS}:
        write_block(block)
    shown = [c for c in ("variant", "setting", "val_mean", "val_std", "seeds", "test_mean", "chosen") if c in ranked]
    print(ranked.round(2).to_string(index=False, columns=shown))
    print(f"\nrows in {path}; choose on val_mean, the test column only reports the choice")
    return ranked


if __name__ == "__main__":
    main()
