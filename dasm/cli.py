"""The ``dasm`` command: a thin face over the package's public functions.

Every subcommand parses its arguments, calls the same functions a notebook would, and
writes tidy tables under ``--out``. ``python -m dasm`` works too.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from . import data as data_mod
from .coreset import random_indices
from .data import DatasetNotFoundError, load_dataset
from .device import resolve_device
from .evaluate import PROTOCOLS, REAL_RECIPES, Protocol, append_results, evaluate_set, summarize
from .nets import list_networks
from .train import SCHEDULES, TrainingDivergedError



def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $DASM_DATA or data/)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="training epochs (default: the dataset's, see REAL_RECIPES)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", choices=SCHEDULES, help="lr schedule: dc = x0.1 at half, idc = x0.2 at 2/3 and 5/6")
    p.add_argument("--augment", help="dsa (dataset default), none, or a DSA strategy string")


def _recipe(args: argparse.Namespace, default: Recipe) -> Recipe:
    """``default`` with every option the user gave on the command line replaced."""
    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "schedule", "augment")
             if getattr(args, k) is not None}
    return replace(default, **given)


def cmd_datasets(args: argparse.Namespace) -> int:
    """Print every dataset and whether it can be loaded here without a download."""
    rows = []
    for name in data_mod.list_datasets():
        spec = data_mod.DATASETS[name]
        ok, where = data_mod.is_available(name, args.data_dir)
        rows.append({"dataset": name, "shape": f"{spec.channels}x{spec.im_size[0]}x{spec.im_size[1]}",
                     "classes": spec.num_classes, "available": "yes" if ok else "no", "where": where})
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"\ndata root: {data_mod.data_root(args.data_dir)}")
    return 0


def cmd_train_real(args: argparse.Namespace) -> int:
    """Train on the full training set: the reference accuracy every distilled set is compared to."""
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, device=device)
    recipe = _recipe(args, REAL_RECIPES[data.name])
    out = Path(args.out)
    n_per_class = round(len(data.y_train) / data.num_classes)
    df = evaluate_set(data, data.x_train, data.y_train, method="full", ipc=n_per_class,
                      protocol=Protocol(arch=args.arch, recipe=recipe), seeds=args.seeds,
                      progress=not args.no_progress, checkpoint_dir=out / "checkpoints")
    table = append_results(df, out / "results.csv")
    print(summarize(df).to_string(index=False))
    print(f"\n{len(df)} rows appended to {out / 'results.csv'} ({len(table)} rows in all)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded digits data: full-data and random-coreset accuracy side by side."""
    device = resolve_device(args.device)
    data = load_dataset("digits", device=device)
    out = Path(args.out)
    seeds = args.seeds
    progress = not args.no_progress
    real = Protocol(recipe=replace(REAL_RECIPES["digits"], epochs=args.real_epochs))
    frames = [evaluate_set(data, data.x_train, data.y_train, method="full",
                           ipc=round(len(data.y_train) / data.num_classes), protocol=real, seeds=seeds,
                           progress=progress)]
    proto = Protocol(recipe=replace(PROTOCOLS["dc"].recipe, epochs=args.epochs))
    for ipc in args.ipcs:
        for seed in seeds:
            idx = random_indices(data, ipc, seed)
            frames.append(evaluate_set(data, data.x_train[idx], data.y_train[idx], method="random",
                                       ipc=ipc, protocol=proto, seeds=[seed], progress=progress))
    df = pd.concat(frames, ignore_index=True)
    append_results(df, out / "results.csv")
    table = summarize(df)
    table["test_acc"] = table["mean"].map("{:.1f}".format) + " ± " + table["std"].map("{:.1f}".format)
    print("\nTest accuracy on digits (%, mean ± std over seeds " + ",".join(map(str, seeds)) + "):")
    print(table[["method", "ipc", "arch", "test_acc", "protocol"]].to_string(index=False))
    print(f"\nresults: {out / 'results.csv'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dasm`` command."""
    parser = argparse.ArgumentParser(prog="dasm", description="Dataset distillation with DASM.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list datasets and whether each is available here")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("train-real", help="full-data reference accuracy, appended to a results table")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(data_mod.list_datasets())}")
    p.add_argument("--arch", default="convnet", help=f"one of {', '.join(list_networks())}")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="data/runs/real", help="output folder (results.csv, checkpoints)")
    _recipe_args(p)
    _common(p)
    p.set_defaults(func=cmd_train_real)

    p = sub.add_parser("demo", help="the main job on digits: full data vs random coresets")
    p.add_argument("--out", default="data/runs/demo")
    p.add_argument("--ipcs", type=_seeds, default=[1, 10, 50], help="IPCs of the coresets")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=300, help="evaluation epochs on each coreset")
    p.add_argument("--real-epochs", type=int, default=REAL_RECIPES["digits"].epochs,
                   help="epochs of the full-data reference training")
    _common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dasm`` command; known user errors print one clear message and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, DatasetNotFoundError, TrainingDivergedError) as err:
        print(f"dasm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
