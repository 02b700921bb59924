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
and the run folders (``data/runs/bench/<dataset>/<preset>-tune/``, named by label and config)
keep the distillation checkpoints.
Writes ``benchmarks/results/tune_<dataset>_<preset>.csv``: one row per variant x seed x metric. On a
GPU (``--device cuda``) the table and run folders take a ``_cuda`` suffix
(``tune_<dataset>_<preset>_cuda.csv``, ``<preset>_cuda-tune/``), like every suite's, so a
variant measured on one device never counts as measured on the other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import pandas as pd
from cells import ROOT, RUNS, device_tag, has_row, table_path
from readme import has_block, write_block

from dasm.config import describe
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import append_results
from dasm.runs import distill_run, evaluate_run, run_config

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


def _without_seeds(settings: object) -> object:
    """``settings`` without its seeds and validation split, at any depth (DASM nests its base config)."""
    if isinstance(settings, dict):
        return {k: _without_seeds(v) for k, v in settings.items() if k not in ("seed", "val_split")}
    return settings


def resolve_variant(dataset: str, method: str, ipc: int, preset: str, over: dict[str, object]) -> tuple[str, str]:
    """The variant's ``(config, setting)``: a hash of its resolved settings (all but the seed) and a
    one-line description of them, so rows stay readable and comparable after the preset changes."""
    cfg, settings = run_config(dataset, method, ipc, preset=preset, **over)
    key = hashlib.sha1(json.dumps(_without_seeds(settings), sort_keys=True).encode()).hexdigest()[:10]
    if cfg is None:
        return key, method
    base = getattr(cfg, "base", cfg)
    text = describe(base) if method == base.method else f"{method} on {describe(base)}"
    if base is not cfg:
        text += f" K{cfg.segments} {cfg.policy}/{cfg.score}"
    return key, text


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
    """The README block that shows the ranking of ``method``'s variants at ``ipc`` on ``dataset`` (cpu tables)."""
    return f"tune-{dataset}-{method}-{ipc}"


def ranking(table: pd.DataFrame, method: str, ipc: int) -> pd.DataFrame:
    """``method``'s variants at ``ipc`` in ``table``, ranked by :func:`rank_variants`."""
    ranked = rank_variants(table)
    return ranked[(ranked.method == method) & (ranked.ipc == ipc)].reset_index(drop=True)


def readme_ranking(table: pd.DataFrame, method: str, ipc: int) -> pd.DataFrame:
    """The ranking a README block shows: ``method``'s variants at ``ipc`` on the standard validation split."""
    return ranking(table[table.val_fraction == VAL_FRACTION], method, ipc)


def readme_table(ranked: pd.DataFrame) -> str:
    """Markdown of one (method, IPC)'s ranking: variant, resolved setting, validation and test accuracy, seeds."""
    lines = ["| variant | setting | validation (%) | test (%) | seeds | best on validation |",
             "|---|---|---|---|---|---|"]
    for r in ranked.itertuples():
        spread = f" ± {r.val_std:.2f}" if r.seeds > 1 else ""
        lines.append(f"| {r.variant} | {r.setting} | {r.val_mean:.2f}{spread} | {r.test_mean:.2f} | {r.seeds} | "
                     f"{'yes' if r.chosen else ''} |")
    return "\n".join(lines)


def tune_paths(results: str | Path, runs: str | Path, dataset: str, preset: str, device: str) -> tuple[Path, Path]:
    """The result table and the folder of run folders of ``dataset``'s tuning under ``preset`` on ``device``."""
    runs_dir = Path(runs) / dataset / f"{device_tag(preset, device)}-tune"
    return table_path("tune", dataset, preset, device, results), runs_dir


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
            slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)
            folder = f"{args.method}-ipc{args.ipc}-{slug}-{key}-val{args.val_fraction:g}-seed{seed}"
            out = runs / folder
            distill_run(data, args.method, args.ipc, out, preset=args.preset, seed=seed, progress=progress, **over)
            rows = evaluate_run(out, data, preset=args.preset, seeds=[seed], progress=progress)
            append_results(rows.assign(variant=name, preset=args.preset, config=key, setting=setting), path)
    table = pd.read_csv(path)
    ranked = ranking(table, args.method, args.ipc)
    committed = Path(args.results).resolve() == (ROOT / "results").resolve()
    block = block_name(data.name, args.method, args.ipc)
    # rankings the README shows are rewritten from the committed table; others have no block
    if committed and data.device.type == "cpu" and args.preset == "cpu" and has_block(block):
        write_block(block, readme_table(readme_ranking(table, args.method, args.ipc)))
    shown = [c for c in ("variant", "setting", "val_mean", "val_std", "seeds", "test_mean", "chosen") if c in ranked]
    print(ranked.round(2).to_string(index=False, columns=shown))
    print(f"\nrows in {path}; choose on val_mean, the test column only reports the choice")
    return ranked


if __name__ == "__main__":
    main()
