"""Where a set starts: k-means modes of each class in one pass, or segment by segment.

With ``init="modes"`` at IPC 50 the cpu preset's images move little from where they start
(README), so how well the starting real images cover their class is most of the result. This
compares three ways of picking the starts, in the embedding the cpu preset's modes use (its
width-32, 5-epoch full-data ConvNet), with the validation split tune.py holds out:

  joint       one k-means with IPC centres a class: IDC's ``init="modes"``
  own         K segments, each a k-means over the class's images no earlier segment started
              from: DASM's ``modes="own"`` (with ``init_from="all"``, so no difficulty pools)
  complement  the same, the earlier segments' starts kept as fixed k-means centres: DASM's
              ``modes="complement"``

For each: ``coverage``, the mean squared distance (in the embedding) of a class's images to
their nearest start, averaged over classes (lower covers better), and the accuracy of the cpu
protocol's ConvNet (IDC's recipe) trained on the starts alone, before any matching.

    python benchmarks/starts.py --seeds 0              # Fashion-MNIST, IPC 50, 5 segments
    python benchmarks/starts.py --dataset digits --ipc 10 --seeds 0,1,2

Resumable (a (variant, seed) already in the table is skipped). Writes
``benchmarks/results/starts_<dataset>_cpu.csv``: one row per variant x seed x metric.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from benchmarks.cells import ROOT, RUNS
from benchmarks.tune import VAL_FRACTION

from dasm.config import preset_protocol, reference_size
from dasm.coreset import cached_features
from dasm.data import Dataset, load_dataset
from dasm.device import resolve_device
from dasm.distill import DistillConfig
from dasm.evaluate import append_results, evaluate_set
from dasm.sequential import DasmConfig, segment_starts, start_plan

VARIANTS = ("joint", "own", "complement")


def start_indices(data: Dataset, variant: str, ipc: int, segments: int, features: torch.Tensor,
                  seed: int) -> torch.Tensor:
    """Indices of the ``ipc`` real starts per class that DASM with ``modes=variant`` (``init_from="all"``) starts
    from: :func:`~dasm.sequential.start_plan` for ``joint``, every segment's :func:`~dasm.sequential.segment_starts`
    together otherwise."""
    cfg = DasmConfig(DistillConfig(ipc=ipc, init="modes", seed=seed), segments=segments, modes=variant)
    plan = start_plan(data, cfg, features)
    if plan is not None:
        return plan.flatten()
    used = torch.zeros(len(data.y_train), dtype=torch.bool, device=data.y_train.device)
    for k in range(segments):
        used[segment_starts(data, cfg, k, used, features=features)[0]] = True
    return used.nonzero().flatten()


def coverage(data: Dataset, starts: torch.Tensor, features: torch.Tensor) -> float:
    """Mean over classes of the mean squared embedding distance of the class's images to their nearest start."""
    costs = []
    for c, ix in enumerate(data.class_index):
        s = starts[data.y_train[starts] == c]
        costs.append(torch.cdist(features[ix].float(), features[s].float()).min(1).values.pow(2).mean().item())
    return sum(costs) / len(costs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--ipc", type=int, default=50)
    p.add_argument("--segments", type=int, default=5)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS))
    args = p.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"Unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}.")
    data = load_dataset(args.dataset, device=resolve_device(args.device), val_fraction=VAL_FRACTION)
    path = ROOT / "results" / f"starts_{data.name}_cpu.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["variant", "seed", "ipc", "segments"])
    protocol = preset_protocol("cpu", data.name, "idc")
    size = reference_size("cpu", data.name)
    for seed in (int(s) for s in args.seeds.split(",")):
        features = cached_features(data, f"{args.runs}/{data.name}/cpu-tune/features", width=size["width"],
                                   epochs=size["epochs"], seed=seed, progress=True)
        for variant in variants:
            if ((done.variant == variant) & (done.seed == seed) & (done.ipc == args.ipc)
                    & (done.segments == args.segments)).any():
                continue
            starts = start_indices(data, variant, args.ipc, args.segments, features, seed)
            order = torch.argsort(data.y_train[starts], stable=True)
            x, y = data.x_train[starts[order]], data.y_train[starts[order]]
            rows = evaluate_set(data, x, y, method="starts", ipc=args.ipc, protocol=protocol, seeds=[seed])
            rows = pd.concat([rows, rows.iloc[:1].assign(arch="-", metric="coverage",
                                                         value=coverage(data, starts, features))])
            done = append_results(rows.assign(variant=variant, segments=args.segments), path)
    table = done[done.metric.isin(["coverage", "val_acc", "test_acc"])]
    print(table.pivot_table(index=["ipc", "segments", "variant"], columns="metric", values="value",
                            aggfunc="mean").round(2).to_string())
    print(f"rows in {path}")


if __name__ == "__main__":
    main()
