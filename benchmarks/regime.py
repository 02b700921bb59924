"""The regime map: how far matching moves the images, and what that does, on the validation split.

For IDC, DASM and sequential matching without difficulty at IPC 10 and 50, the strength of matching
is varied around the cpu preset: the image learning rate (x0.25, x1, x4), the outer iterations
(x1, x3) and, as the limit where matching does all the work, starts from noise instead of real
images. Each point records, on the validation split (10% of every class held out, as tune.py):

  val_acc         the evaluation network's validation accuracy on the distilled set
  starts_val_acc  the same for the set's own starts (starts.pt), not distilled
  moved           mean per-image L2 distance between the set and its starts (dasm.analysis.regime)
  diversity       mean within-class pairwise distance of the full-data reference network's features
                  (the width-128 ConvNet of benchmarks/diagnosis.py, seed 0); starts_diversity likewise

A base distiller's run is a prefix of a longer one (the fresh network of iteration i and every random
draw before it do not depend on the budget), so IDC's x1 and x3 points come from one x3 run, its set
kept when it passes x1 (tests/test_regime.py checks the identity).

    python benchmarks/regime.py                        # every point, seed 0, in order of priority
    python benchmarks/regime.py --only idc:50 --seeds 1,2
    python benchmarks/regime.py --decisive --seeds 1,2   # the points the question turns on, more seeds
    python benchmarks/regime.py --report               # only the figure and the diversity rows

Resumable point by point (a point with its rows is skipped; run folders keep their checkpoints).
Writes benchmarks/results/regime_<dataset>_cpu.csv and docs/figures/regime.{png,pdf,csv}.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from benchmarks.archive import archive_dir
from benchmarks.cells import ROOT, RUNS, folder_of, runs_root, table_path
from benchmarks.figures import reference_net
from benchmarks.report import from_csv, interval_words, mean_std, signed, to_markdown, write_block
from benchmarks.tune import VAL_FRACTION
from dasm.analysis.regime import moved, plot_regime, regime_points, set_diversity
from dasm.config import resolve
from dasm.data import Dataset, load_dataset
from dasm.device import resolve_device
from dasm.distill import STARTS
from dasm.evaluate import append_results
from dasm.methods import REGISTRY
from dasm.methods import method as method_spec
from dasm.methods import starts_method
from dasm.runs import distill_run, evaluate_run, full_data_run, run_config
from dasm.synthetic import SyntheticSet, mark_split

FIGURE = ROOT.parent / "docs" / "figures" / "regime"


@dataclass(frozen=True)
class Point:
    """One run of the map: the preset's lr_img and iterations times ``lr`` and ``it``; ``noise`` starts.
    ``at``: the iteration multiples at which the set is evaluated (a base distiller's x1 inside its x3 run)."""

    method: str
    ipc: int
    lr: float = 1.0
    it: int = 1
    init: str = "preset"
    at: tuple[int, ...] = ()

    @property
    def evaluated_at(self) -> tuple[int, ...]:
        return self.at or (self.it,)


# In order of priority: how IDC's gain over its starts changes with the budget at IPC 50, what moving further
# does (lr x4), whether DASM gains over the same starts where IDC does not, the same at IPC 10, then the limits
# (noise starts, a small lr, more iterations) and the ablation. IDC's x3 at IPC 10 (its x1 is the run's
# prefix) comes after the cheaper IPC-10 points: at one thread it takes two hours.
POINTS = (
    Point("idc", 50, 1, 3, at=(1, 3)), Point("idc", 50, 4), Point("dasm", 50, 1), Point("dasm", 50, 4),
    Point("dasm", 10, 1), Point("idc", 10, 4), Point("idc", 50, 4, init="noise"), Point("idc", 10, 1, 3, at=(1, 3)),
    Point("idc", 50, 0.25), Point("idc", 10, 0.25), Point("dasm", 10, 4), Point("idc", 10, 4, init="noise"),
    Point("dasm", 50, 1, 3), Point("dasm", 50, 0.25), Point("dasm", 10, 0.25), Point("dasm", 10, 1, 3),
    Point("dasm-nodifficulty", 50, 1), Point("dasm-nodifficulty", 50, 4),
    Point("dasm-nodifficulty", 10, 1), Point("dasm-nodifficulty", 10, 4),
)
# The points the map's question turns on, repeated over seeds (--decisive): the preset's IDC at IPC 50 and 10
# (flat there, a gain here?) and DASM at IPC 50 (does it gain over its starts where IDC does not?); the
# hour-long DASM run last, so that a short session still lands IDC's pair.
DECISIVE = (Point("idc", 50), Point("idc", 10), Point("dasm", 50))


def point_settings(data: Dataset, p: Point, preset: str) -> tuple[float, int, dict]:
    """The point's base lr_img and iterations, and the overrides that ask for them."""
    base = resolve(preset, data.name, p.method, p.ipc).distill
    lr, iterations = base.lr_img * p.lr, base.iterations * p.it
    over = {"lr_img": lr, "iterations": iterations, **({"init": "noise"} if p.init == "noise" else {})}
    return lr, base.iterations, over


def folder(runs: Path, data: Dataset, preset: str, p: Point, over: dict, seed: int) -> Path:
    """``<runs>/<preset>[_<device>]/regime/<run config's name>``: the point's run folder."""
    name = run_config(data, p.method, p.ipc, preset=preset, seed=seed, **over).name()
    return runs_root(runs, preset, data.device.type) / "regime" / name


def snapshot_saver(out: Path, data: Dataset, keep: set[int], record) -> callable:
    """A distillation callback that saves the set as it stands after each of the ``keep`` iterations
    into ``out/at-it<N>/synthetic.pt`` (a run folder of its own) and then calls ``record(N, folder, set)``,
    so a snapshot's rows land while the distillation goes on."""
    def save(log: dict) -> None:
        n = log["iteration"] + 1
        if n in keep:
            dest = out / f"at-it{n}"
            if not (dest / "synthetic.pt").exists():
                syn = log["snapshot"]()
                mark_split(syn, data)
                syn.save(dest / "synthetic.pt")
            record(n, dest, SyntheticSet.load(dest / "synthetic.pt"))
    return save


def starts_accuracy(data: Dataset, run: Path, method: str, preset: str, seed: int) -> float:
    """Validation accuracy of the run's starts, evaluated once per distinct starting set (cached by content)."""
    starts = SyntheticSet.load(run / STARTS)
    key = hashlib.sha1(starts.images.numpy().tobytes()).hexdigest()[:12]
    dest = run.parent / "starts" / f"{method}-{key}"
    if not (dest / "synthetic.pt").exists():
        starts.meta["method"] = starts_method(method)
        mark_split(starts, data)
        starts.save(dest / "synthetic.pt")
    rows = evaluate_run(dest, data, preset=preset, seeds=[seed])
    return float(rows[rows.metric == "val_acc"].value.iloc[0])


def reference_net_of(data: Dataset, runs: Path, preset: str) -> torch.nn.Module | None:
    """The full-data reference ConvNet (seed 0) of the diagnosis archive, archived from its run folder the
    first time it is found there; None until it is trained."""
    return reference_net(data, archive_dir(data.name, preset), preset, runs)


def done(table: pd.DataFrame, data: Dataset, p: Point, lr: float, iterations: int, seed: int, metric: str) -> bool:
    """Whether ``table`` has ``metric`` of this point after ``iterations``."""
    return not table.empty and ((table.method == p.method) & (table.ipc == p.ipc) & (table.seed == seed)
                                & (table.init == p.init) & (table.lr_img.round(8) == round(lr, 8))
                                & (table.iterations == iterations) & (table.metric == metric)).any()


def run_point(data: Dataset, p: Point, seed: int, path: Path, *, preset: str, runs: Path,
              net: torch.nn.Module | None) -> None:
    """Distill the point (once, with its snapshots), evaluate each on validation, append its rows to ``path``
    (a snapshot's as soon as it is saved)."""
    lr, base_iterations, over = point_settings(data, p, preset)
    wanted = [m * base_iterations for m in p.evaluated_at]
    metrics = ["val_acc", "starts_val_acc", "moved"] + (["diversity", "starts_diversity"] if net is not None else [])

    def missing(n: int) -> list[str]:
        table = pd.read_csv(path) if path.exists() else pd.DataFrame()
        return [m for m in metrics if not done(table, data, p, lr, n, seed, m)]

    if not any(missing(n) for n in wanted):
        return
    out = folder(runs, data, preset, p, over, seed)
    if p.at and method_spec(p.method).family != "distiller":
        raise ValueError(f"{p.method} is not a single-pass distiller: its x{p.at} points need runs of their own.")

    def record(n: int, where: Path, at: SyntheticSet) -> None:
        todo = missing(n)
        if not todo:
            return
        starts = SyntheticSet.load(out / STARTS)
        rows = evaluate_run(where, data, preset=preset, seeds=[seed])
        values = {"val_acc": float(rows[rows.metric == "val_acc"].value.iloc[0]),
                  "starts_val_acc": starts_accuracy(data, out, resolve(preset, data.name, p.method, p.ipc).distill.method,
                                                    preset, seed),
                  "moved": moved(at.to("cpu"), starts)}
        if net is not None:
            values.update(diversity=set_diversity(at, net, data.normalize),
                          starts_diversity=set_diversity(starts, net, data.normalize))
        new = [{"dataset": data.name, "method": p.method, "ipc": p.ipc, "seed": seed, "init": p.init, "lr_img": lr,
                "iterations": n, "lr_mult": p.lr, "it_mult": n // base_iterations, "metric": m, "value": values[m],
                "preset": preset, "val_fraction": VAL_FRACTION} for m in todo]
        append_results(pd.DataFrame(new), path)

    keep = {n for n in wanted if n != over["iterations"]}
    syn = distill_run(data, p.method, p.ipc, out, preset=preset, seed=seed,
                      callback=snapshot_saver(out, data, keep, record) if keep else None, **over)
    for n in sorted(keep):   # snapshots a resumed run had saved before this call
        record(n, out / f"at-it{n}", SyntheticSet.load(out / f"at-it{n}" / "synthetic.pt"))
    record(over["iterations"], out, syn)


def report(path: Path) -> None:
    """Redraw docs/figures/regime from the table."""
    if not path.exists():
        return
    from dasm.analysis.figures import save_figure

    table = pd.read_csv(path)
    try:
        fig = plot_regime(table)
    except ValueError as err:
        print(f"regime figure waits: {err}")
        return
    save_figure(fig, table, FIGURE.parent, FIGURE.name)
    if table.dataset.iloc[0] == "fashion-mnist" and path == table_path("regime", "fashion-mnist"):
        write_block("regime")


def regime_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point, over its seeds (mean ± std): validation accuracy, the starts', the gain, distance
    moved and diversity (set, starts)."""
    pts = regime_points(table)
    pts = pts.assign(order=pts.method.map(list(REGISTRY).index))   # IDC before DASM, as in the reading
    rows = []
    for (ipc, _, method, init, lr, it), part in pts.groupby(["ipc", "order", "method", "init", "lr_img", "iterations"]):
        row = {"method": method, "IPC": ipc, "starts": "noise" if init == "noise" else "real", "lr_img": f"{lr:g}",
               "iterations": it, "seeds": len(part), "val (%)": mean_std(part.val_acc, 2),
               "starts' val (%)": mean_std(part.starts_val_acc, 2),
               "gain": signed(part.gain.mean()) + (f" ± {part.gain.std():.2f}" if len(part) > 1 else ""),
               "moved": mean_std(part.moved, 2)}
        if "diversity" in part:
            d = part.diversity.dropna()
            row["diversity (starts)"] = f"{d.mean():.2f} ({part.starts_diversity.dropna().mean():.2f})" if len(d) else ""
        rows.append(row)
    return pd.DataFrame(rows)


FLAT = 0.5   # a gain over the starts within ±FLAT validation points is read as matching adding nothing


def by_method_in_registry_order(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``frame`` grouped by method, the methods in the registry's order (IDC before DASM)."""
    order = list(REGISTRY)
    return sorted(frame.groupby("method"), key=lambda group: order.index(group[0]))


def preset_gain_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Each method's validation gain over its own starts at the preset's lr_img from real starts: one row per
    (method, IPC, iterations, seed)."""
    pts = regime_points(table)
    if "gain" not in pts or "lr_mult" not in pts:
        return pd.DataFrame(columns=["method", "ipc", "iterations", "seed", "gain"])
    pts = pts[(pts.init == "preset") & (pts.lr_mult == 1.0)].dropna(subset=["gain"])
    return pts[["method", "ipc", "iterations", "seed", "gain"]].reset_index(drop=True)


def _gain_words(gains: pd.Series, iterations: int) -> str:
    """A budget's gain (one value per seed): the mean, with the seeds' interval where there are several."""
    text = f"{signed(gains.mean())} after {int(iterations)} iterations"
    return text + (f" ({interval_words(gains)})" if len(gains) > 1 else "")


def regime_reading(table: pd.DataFrame) -> str:
    """What matching adds to the starts on validation (the preset's lr_img), per method and IPC at each
    iteration budget measured (with the paired interval over seeds where there are several), then whether
    IDC saturates (flat at IPC 50, a gain at IPC 10) and what DASM's matching adds there, paired by seed with
    IDC's where both have the same seeds; empty before any such point exists."""
    per = preset_gain_seeds(table)
    if per.empty:
        return ""
    parts = []
    for method, by_method in by_method_in_registry_order(per):
        ipcs = [f"at IPC {int(ipc)} " + ", ".join(_gain_words(budget.gain, it) for it, budget in part.groupby("iterations"))
                for ipc, part in by_method.groupby("ipc")]
        parts.append(f"{method.upper()} {'; '.join(ipcs)}")
    text = "On the validation split, matching adds to the accuracy of the set's own starts: " + "; ".join(parts) + "."
    # each (method, IPC) at the preset's own budget (its fewest iterations), one gain per seed
    preset = per[per.iterations == per.groupby(["method", "ipc"]).iterations.transform("min")]
    first = {key: part.set_index("seed").gain for key, part in preset.groupby(["method", "ipc"])}
    if {("idc", 10), ("idc", 50)} <= set(first):
        g10, g50 = first[("idc", 10)].mean(), first[("idc", 50)].mean()
        if abs(g50) <= FLAT < g10:
            text += (f" So at this budget IDC's matching saturates: at IPC 50 it adds nothing to its k-means starts"
                     f" ({signed(g50)}) while at IPC 10 it adds {signed(g10)}; IDC's accuracy still rises over IPC"
                     f" because its starts' does.")
        else:
            text += (f" IDC's matching adds {signed(g10)} at IPC 10 and {signed(g50)} at IPC 50: no saturation of"
                     f" matching at this budget.")
        if ("dasm", 50) in first:
            d50 = first[("dasm", 50)].mean()
            verdict = ("no more than IDC's" if d50 - g50 <= FLAT else "more than IDC's")
            text += f" At IPC 50 DASM's matching adds {signed(d50)} to its starts: {verdict}"
            diff = (first[("dasm", 50)] - first[("idc", 50)]).dropna()   # the seeds both have
            if len(diff) > 1:
                text += f"; DASM's gain minus IDC's, paired by seed: {signed(diff.mean())} ({interval_words(diff)})"
            text += "."
    return text


def movement_reading(table: pd.DataFrame, ipc: int = 50) -> str:
    """For each method with two or more points from real starts at ``ipc``: its points, on the seeds they all
    share, ordered by how far the images moved, with the gain over the starts and the feature diversity of
    each, and whether the diversity falls and the gain drops as the images move further."""
    pts = regime_points(table)
    if not {"gain", "moved", "diversity"} <= set(pts.columns):
        return ""
    pts = pts[(pts.ipc == ipc) & (pts.init == "preset")].dropna(subset=["gain", "moved", "diversity"])
    out = []
    for method, part in by_method_in_registry_order(pts):
        by_point = part.groupby(["lr_img", "iterations"]).seed.apply(set)
        shared = set.intersection(*by_point)   # every point on the same seeds: the comparison stays paired
        part = part[part.seed.isin(shared)]
        part = part.groupby(["lr_img", "iterations"])[["moved", "gain", "diversity", "starts_diversity"]].mean()
        if len(part) < 2:
            continue
        part = part.sort_values("moved")
        falls = bool((part.diversity.diff().dropna() < 0).all())
        drops = part.gain.iloc[-1] < part.gain.iloc[0] - FLAT
        seeds = ", ".join(str(int(x)) for x in sorted(shared))
        out.append(f"{method.upper()} at IPC {ipc} (seed{'s' if len(shared) > 1 else ''} {seeds}), its points ordered by how far the images moved "
                   f"({', '.join(f'{m:.2f}' for m in part.moved)}): gain over the starts "
                   f"{', '.join(signed(g) for g in part.gain)}, feature diversity "
                   f"{', '.join(f'{d:.2f}' for d in part.diversity)} (starts {part.starts_diversity.iloc[0]:.2f}); "
                   f"the diversity {'falls' if falls else 'does not fall steadily'} and the accuracy "
                   f"{'drops' if drops else 'does not drop'} as the images move further.")
    return " ".join(out)


def regime_block(dataset: str = "fashion-mnist", preset: str = "cpu") -> str:
    """docs/diagnosis.md's regime table and its reading, from the committed ``regime_<dataset>_<preset>.csv``."""
    return from_csv(table_path("regime", dataset, preset),
                    lambda t: "\n\n".join(filter(None, [to_markdown(regime_table(t)),
                                                          " ".join(filter(None, [regime_reading(t), movement_reading(t, 50),
                                                                                movement_reading(t, 10)]))])),
                    "python benchmarks/regime.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seeds", default="0")
    p.add_argument("--only", help="method:ipc pairs, comma-separated (default: every point)")
    p.add_argument("--decisive", action="store_true", help="only the points repeated over seeds (DECISIVE)")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS))
    p.add_argument("--report", action="store_true", help="only redraw the figure")
    p.add_argument("--train-reference", action="store_true",
                   help="train the full-data reference network (seed 0) for the diversity column if it is missing")
    args = p.parse_args()
    data = load_dataset(args.dataset, device=resolve_device(args.device), val_fraction=VAL_FRACTION)
    path = table_path("regime", data.name, args.preset, data.device.type)
    if args.train_reference and reference_net_of(data, Path(args.runs), args.preset) is None:
        full = load_dataset(args.dataset, device=data.device)   # the reference sees all the training data
        full_data_run(full, folder_of(full, "full", 0, 0, preset=args.preset, runs=Path(args.runs)), seeds=[0])
    if not args.report:
        only = {tuple(c.split(":")) for c in args.only.split(",")} if args.only else None
        for seed in (int(s) for s in args.seeds.split(",")):
            for point in DECISIVE if args.decisive else POINTS:
                if only is None or (point.method, str(point.ipc)) in only:
                    net = reference_net_of(data, Path(args.runs), args.preset)
                    run_point(data, point, seed, path, preset=args.preset, runs=Path(args.runs), net=net)
                    report(path)
    report(path)


if __name__ == "__main__":
    main()
