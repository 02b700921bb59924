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
from .config import PRESETS, knobs
from .data import DatasetNotFoundError, load_dataset
from .device import resolve_device
from .distill import DistillationDivergedError
from .evaluate import REAL_RECIPES, summarize
from .methods import REGISTRY
from .nets import list_networks
from .runs import distill_run, evaluate_run, full_data_run, grid, load_run_set, run_grid
from .synthetic import SyntheticSetError
from .train import SCHEDULES, Recipe, TrainingDivergedError


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [s.strip().lower() for s in text.split(",") if s.strip()]


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


_SCOPES = {"distill": "the distiller (every method but the coresets; default: the preset's)",
           "run": "the distiller", "sequential": "DASM (--method dasm, dasm-nodifficulty; default: the preset's)",
           "prune": "static pruning (--method static-prune)", "features": "herding and k-center's embedding"}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _knob_args(p: argparse.ArgumentParser) -> None:
    """One ``--name`` flag per overridable setting (:func:`dasm.config.knobs`), grouped by what it sets."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for knob in knobs().values():
        scope = "distill" if knob.scope == "run" else knob.scope
        g = groups.setdefault(scope, p.add_argument_group(f"settings of {_SCOPES[scope]}"))
        flag, kind = f"--{knob.name.replace('_', '-')}", str(knob.type)
        if "bool" in kind:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=knob.help)
        elif "tuple" in kind:
            g.add_argument(flag, type=_sizes, metavar="N,N,..", help=knob.help)
        else:
            typ = int if "int" in kind else float if "float" in kind else str
            g.add_argument(flag, type=typ, choices=knob.choices, help=knob.help)


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
    out = Path(args.out)
    df = full_data_run(data, out, seeds=args.seeds, arch=args.arch, recipe=_recipe(args, REAL_RECIPES[data.name]),
                       progress=not args.no_progress)
    print(summarize(df).to_string(index=False))
    print(f"\nrows in {out / 'results.csv'} (seeds already there were not trained again)")
    return 0


def _print_table(df: pd.DataFrame, title: str) -> None:
    """Mean ± std per method/IPC/arch: validation accuracy first when the run held a split out."""
    metrics = [m for m in ("val_acc", "test_acc") if (df["metric"] == m).any()]
    table = None
    for metric in metrics:
        part = summarize(df, metric)
        part[metric] = part["mean"].map("{:.1f}".format) + " ± " + part["std"].map("{:.1f}".format)
        part = part.drop(columns=["mean", "std"])
        table = part if table is None else table.merge(part)
    print(f"\n{title}")
    print(table[["method", "ipc", "arch", *metrics, "count", "protocol"]].to_string(index=False))


def cmd_distill(args: argparse.Namespace) -> int:
    """Distill (or select a coreset), save the set under --out, then evaluate it unless --no-eval."""
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, device=device, val_fraction=args.val_fraction,
                        seed=args.split_seed)
    overrides = {name: getattr(args, name) for name in knobs() if getattr(args, name) is not None}
    out = Path(args.out)
    syn = distill_run(data, args.method, args.ipc, out, preset=args.preset, seed=args.seed,
                      progress=not args.no_progress, **overrides)
    print(f"saved {out / 'synthetic.pt'} ({len(syn.labels)} stored images, factor {syn.factor}) "
          f"and {out / 'synthetic.png'}")
    if not args.no_eval:
        df = evaluate_run(out, data, preset=args.preset, seeds=args.eval_seeds, archs=args.archs,
                          epochs=args.eval_epochs, progress=not args.no_progress)
        _print_table(df, f"Accuracy on {data.name} (%):")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved run folder or .pt file under the preset's protocol; append to its results.csv."""
    device = resolve_device(args.device)
    syn, folder = load_run_set(args.path, import_format=args.import_format, dataset=args.dataset,
                               factor=args.factor)
    fraction, split_seed = syn.meta.get("val_split") or (0.0, 0)   # the split the set was distilled on
    data = load_dataset(syn.meta["dataset"], args.data_dir, device=device, val_fraction=fraction, seed=split_seed)
    df = evaluate_run(args.path, data, preset=args.preset, seeds=args.seeds, archs=args.archs,
                      epochs=args.epochs, progress=not args.no_progress, syn=syn)
    _print_table(df, f"Accuracy on {data.name} (%), appended to {folder / 'results.csv'}:")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded digits data: distilled sets against coresets and the full data."""
    device = resolve_device(args.device)
    data = load_dataset("digits", device=device)
    out = Path(args.out)
    progress = not args.no_progress
    full = full_data_run(data, out / "full", seeds=args.seeds,
                         recipe=replace(REAL_RECIPES["digits"], epochs=args.real_epochs), progress=progress)
    cells = grid(args.methods, args.ipcs, [0], iterations=args.iterations, segments=args.segments)
    runs = run_grid(data, cells, out, eval_seeds=args.seeds, epochs=args.epochs, progress=progress)
    df = pd.concat([full, runs[runs.protocol != "distill"].drop(columns="run")], ignore_index=True)
    df.to_csv(out / "demo.csv", index=False)  # this demo's rows; each run folder keeps its own results.csv
    _print_table(df, "Test accuracy on digits (%, mean ± std over seeds " + ",".join(map(str, args.seeds)) + "):")
    print(f"\nresults: {out / 'demo.csv'}; synthetic images: {out}/*/synthetic.png")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """Regenerate every diagnosis figure (PNG + PDF + CSV) with its controls, headless: from saved runs, or from a
    benchmark archive (``--archive``, drawn by the checkout's ``benchmarks/figures.py``)."""
    import matplotlib

    matplotlib.use("Agg")
    from .analysis.figures import fast_runs, find_runs, make_figures

    device = resolve_device(args.device)
    out = Path(args.out)
    if args.archive:
        try:   # the archive's format belongs to the benchmarks, which the package never imports
            from benchmarks.figures import FIGURES, draw_and_record
        except ImportError:
            raise ValueError("--archive needs the project checkout's benchmarks/ package "
                             "(run `python benchmarks/figures.py` from the checkout).") from None
        dataset, _, preset = Path(args.archive).resolve().name.rpartition("_")
        data = load_dataset(dataset, args.data_dir, device=device)
        files = draw_and_record(data, args.ipc, args.seeds, [f for f in args.only or FIGURES if f in FIGURES],
                                folder=Path(args.archive), out=out, preset=preset, progress=not args.no_progress)
    else:
        if args.fast:
            data = load_dataset("digits", device=device)
            runs = fast_runs(data, args.runs[0] if args.runs else out / "runs", ipc=args.ipc,
                             progress=not args.no_progress)
        else:
            if not args.runs:
                raise ValueError("give the run folders to draw (--runs DIR [DIR ...]), an archive (--archive DIR) "
                                 "or use --fast.")
            runs = find_runs(args.runs)
            names = {_run_dataset(folder) for folder in runs.values()}
            if len(names) != 1:
                raise ValueError(f"the runs come from several datasets ({', '.join(sorted(names))}); "
                                 "draw one at a time.")
            data = load_dataset(names.pop(), args.data_dir, device=device)
        files = make_figures(data, runs, out, fast=args.fast, reference_epochs=args.reference_epochs,
                             reference_width=args.reference_width, set_epochs=args.set_epochs,
                             results=args.results or [], only=args.only, progress=not args.no_progress)
    print(f"{len(files)} files written to {out}:")
    for f in files:
        if f.suffix == ".png":
            print(f"  {f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Distill and evaluate every method x IPC x seed (resumable), then draw the saturation curve."""
    import matplotlib

    matplotlib.use("Agg")
    from .analysis.figures import save_figure
    from .analysis.saturation import plot_saturation, saturation_table

    device = resolve_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, device=device)
    out = Path(args.out)
    cells = grid(args.methods, args.ipcs, args.seeds, iterations=args.iterations, segments=args.segments)
    results = run_grid(data, cells, out, preset=args.preset, epochs=args.epochs, progress=not args.no_progress)
    table = saturation_table(results)
    save_figure(plot_saturation(table), table, out, "saturation")
    print(table[["method", "ipc", "mean", "std", "count"]].to_string(index=False))
    print(f"\nsaturation curve: {out / 'saturation.png'} (table: {out / 'saturation.csv'})")
    return 0


def _run_dataset(folder: Path) -> str:
    """The dataset a run folder's set was distilled from."""
    from .synthetic import SyntheticSet

    return str(SyntheticSet.load(folder / "synthetic.pt").meta.get("dataset"))


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    """The ``dasm datasets`` subcommand."""
    p = sub.add_parser("datasets", help="list datasets and whether each is available here")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_datasets)


def _add_train_real(sub: argparse._SubParsersAction) -> None:
    """The ``dasm train-real`` subcommand."""
    p = sub.add_parser("train-real", help="full-data reference accuracy, appended to a results table")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(data_mod.list_datasets())}")
    p.add_argument("--arch", default="convnet", help=f"one of {', '.join(list_networks())}")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="data/runs/real", help="output folder (results.csv, checkpoints)")
    _recipe_args(p)
    _common(p)
    p.set_defaults(func=cmd_train_real)


def _add_distill(sub: argparse._SubParsersAction) -> None:
    """The ``dasm distill`` subcommand."""
    methods = ", ".join(REGISTRY)
    p = sub.add_parser("distill", help="distill a synthetic set (or pick a coreset) and evaluate it")
    p.add_argument("--method", required=True, type=str.lower, help=f"one of {methods}")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(data_mod.list_datasets())}")
    p.add_argument("--ipc", type=int, required=True, help="images per class")
    p.add_argument("--preset", choices=PRESETS, default="cpu", help="hyperparameter preset (default: cpu)")
    p.add_argument("--out", required=True, help="run folder: synthetic.pt/.png, history.csv, results.csv; "
                   "rerunning resumes from its checkpoint")
    p.add_argument("--seed", type=int, default=0)
    _knob_args(p)
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of each class as a validation split: the distiller never sees "
                        "it and evaluation reports val_acc on it (choose settings on val_acc, not test_acc)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the --val-fraction split (default: 0)")
    p.add_argument("--no-eval", action="store_true", help="only distill; run `dasm evaluate OUT` later")
    p.add_argument("--eval-seeds", type=_seeds, default=[0, 1, 2])
    p.add_argument("--eval-epochs", type=int, help="override the protocol's training epochs")
    p.add_argument("--archs", type=_names, default=None, help="comma-separated evaluation nets (default: convnet)")
    _common(p)
    p.set_defaults(func=cmd_distill)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    """The ``dasm evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="evaluate a saved synthetic set (run folder or .pt)")
    p.add_argument("path", help="run folder holding synthetic.pt, a .pt file, or a published set")
    p.add_argument("--preset", choices=PRESETS, default="cpu", help="protocol preset (default: cpu)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, help="override the protocol's training epochs")
    p.add_argument("--archs", type=_names, default=None, help="comma-separated evaluation nets (default: convnet)")
    p.add_argument("--import-format", choices=("dc", "mtt", "idc"), help="the file is a published set in this format")
    p.add_argument("--dataset", help="dataset of a published set (with --import-format)")
    p.add_argument("--factor", type=int, default=1, help="multi-formation factor of a published IDC set")
    _common(p)
    p.set_defaults(func=cmd_evaluate)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    """The ``dasm sweep`` subcommand."""
    p = sub.add_parser("sweep", help="accuracy over IPC for several methods, and the saturation curve")
    p.add_argument("--dataset", required=True)
    p.add_argument("--ipcs", type=_seeds, default=[1, 10, 50], help="comma-separated IPCs (default: 1,10,50)")
    p.add_argument("--methods", type=_names, default=["random", "idc", "dasm"])
    p.add_argument("--seeds", type=_seeds, default=[0], help="distillation seeds (each evaluated once)")
    p.add_argument("--preset", choices=PRESETS, default="cpu")
    p.add_argument("--iterations", type=int, help="override the preset's distillation iterations")
    p.add_argument("--segments", type=int, default=5, help="DASM segments (at most the IPC; default: 5)")
    p.add_argument("--epochs", type=int, help="override the evaluation epochs")
    p.add_argument("--out", default="data/runs/sweep", help="run folders and saturation.{png,pdf,csv}")
    _common(p)
    p.set_defaults(func=cmd_sweep)


def _add_figures(sub: argparse._SubParsersAction) -> None:
    """The ``dasm figures`` subcommand."""
    p = sub.add_parser("figures", help="regenerate every diagnosis figure, each set with its controls (random, "
                       "the starts, the full data), from saved runs or a benchmark archive (PNG, PDF, CSV)")
    p.add_argument("--runs", nargs="*", help="run folders (searched for synthetic.pt); sets are known by their "
                   "method: include the random and idc-starts runs of the same IPC as controls")
    p.add_argument("--archive", help="a benchmark archive instead (e.g. benchmarks/sets/fashion-mnist_cpu): "
                   "draws with benchmarks/figures.py at --ipc over --seeds")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="seeds of the archived sets (default: 0,1,2)")
    p.add_argument("--out", default="data/figures", help="output folder (default: data/figures)")
    p.add_argument("--fast", action="store_true", help="make small digits runs (random, idc-starts, idc, dasm) "
                   "and a quick figure set")
    p.add_argument("--ipc", type=int, default=10, help="IPC of the --fast runs or of the archived sets (default: 10)")
    p.add_argument("--reference-epochs", type=int, default=20,
                   help="epochs of the full-data networks behind the difficulty scores (default: 20)")
    p.add_argument("--reference-width", type=int, default=128,
                   help="ConvNet width of those networks (default: 128; 32 is ~4x cheaper on a CPU)")
    p.add_argument("--results", nargs="*", help="more results tables (CSV) for the saturation curve, "
                   "e.g. benchmarks/results/dasm_fashion-mnist_cpu.csv")
    p.add_argument("--only", type=_names, help="draw only these, comma-separated: "
                   "histograms,alignment,embeddings,saturation,redundancy (default: all)")
    p.add_argument("--set-epochs", type=int, default=300,
                   help="epochs of the networks trained on each set and its halves (default: 300)")
    _common(p)
    p.set_defaults(func=cmd_figures)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    """The ``dasm demo`` subcommand."""
    p = sub.add_parser("demo", help="the main job on digits: distilled sets vs coresets vs full data")
    p.add_argument("--out", default="data/runs/demo")
    p.add_argument("--ipcs", type=_seeds, default=[10, 30], help="IPCs to distill (default: 10,30)")
    p.add_argument("--methods", type=_names, default=["random", "idc", "dasm"])
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="evaluation seeds")
    p.add_argument("--iterations", type=int, help="override the cpu preset's distillation iterations")
    p.add_argument("--segments", type=int, default=5, help="DASM segments (at most the IPC)")
    p.add_argument("--epochs", type=int, help="override the evaluation epochs (cpu preset: 300)")
    p.add_argument("--real-epochs", type=int, default=REAL_RECIPES["digits"].epochs,
                   help="epochs of the full-data reference training")
    _common(p)
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dasm`` command."""
    parser = argparse.ArgumentParser(prog="dasm", description="Dataset distillation with DASM.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_datasets, _add_train_real, _add_distill, _add_evaluate, _add_sweep, _add_figures, _add_demo):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dasm`` command; known user errors print one clear message and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, DatasetNotFoundError, TrainingDivergedError, DistillationDivergedError,
            SyntheticSetError) as err:
        print(f"dasm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
