"""The other diagnosis figures, drawn from the committed archive: every set next to its controls, over seeds.

    python benchmarks/figures.py --ipc 50 --seeds 0,1,2                   # every figure at IPC 50
    python benchmarks/figures.py --ipc 50 --only alignment,embeddings     # the ones that train no set network
    python benchmarks/figures.py --render                                 # print the Markdown of the numbers

It reads what ``benchmarks/diagnosis.py`` archived in ``benchmarks/sets/<dataset>_<preset>/``: the sets
(``random``, ``herding``, ``idc-starts``, ``idc``, ``dasm``, ``static-prune``, one per seed) and the
full-data networks (each training image's loss; seed 0's weights under ``nets/``, archived from its run
folder on first use by :func:`benchmarks.archive.archive_reference_net`). Difficulty of a training image
is its loss averaged over the full-data networks, and its forgetting events while one more full-data
ConvNet trains (seed 1, so that the ``full`` row, the seed-0 network, is never graded on its own run).
Each figure is drawn by the same ``dasm.analysis.figures.draw_*`` function as ``dasm figures``:

- ``difficulty_hist_{loss,forgetting}_ipc<ipc>``: per difficulty bin of the training images, the error of
  a network trained on each set (the preset's evaluation protocol, the set's seed), minus the random
  set's; the ``full`` row is the seed-0 full-data network, binned by the other full-data networks' loss;
- ``gradient_alignment_ipc<ipc>``: per seed, at a fresh matching network of the preset (seeded), the
  cosine between each set's class gradient and 500 real images of every class, by difficulty decile;
- ``embedding_ipc<ipc>``: the seed-0 full-data network's features, every set placed into the map of
  2,000 real images;
- ``redundancy_ipc<ipc>``: random, the starts, IDC and DASM: networks trained on each half of every
  seed's set (the whole set's accuracy is its archived evaluation).

Everything trained is cached in ``<archive>/derived/`` under a hash of what it was trained on, so a
rerun trains nothing and a changed set never reuses a stale network. Writes ``docs/figures/`` and the
numbers, per set and seed, to ``benchmarks/results/figures_<dataset>_<preset>.csv``
(:func:`figures_block` renders them).
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from benchmarks.archive import (archive_dir, archive_reference_net, archived_set, load_archive, load_reference_net,
                                reference_net_path)
from benchmarks.cells import RUNS, folder_of, table_path
from benchmarks.diagnosis import bias_reading, seeds_line
from benchmarks.report import from_csv, mean_std, signed, to_markdown

from dasm.analysis.by_difficulty import paired_summary
from dasm.analysis.controls import BASELINE, FULL, is_control, set_order
from dasm.analysis.figures import draw_alignment, draw_embedding, draw_histograms, draw_redundancy
from dasm.analysis.errors import set_predictions
from dasm.config import preset_protocol, resolve
from dasm.data import Dataset, load_dataset
from dasm.device import resolve_device
from dasm.difficulty import forgetting_scores
from dasm.evaluate import REAL_RECIPES, load_predictions
from dasm.files import load_or_compute
from dasm.nets import get_network
from dasm.train import predict

ROOT = Path(__file__).resolve().parent
OUT = ROOT.parent / "docs" / "figures"
FIGURES = ("histograms", "alignment", "embeddings", "redundancy")
REDUNDANCY_METHODS = ("random", "idc-starts", "idc", "dasm")
FORGETTING_SEED = 1
DERIVED = "derived"


# ---------------------------------------------------------------------------------------
# What the archive holds
# ---------------------------------------------------------------------------------------

def cells_at(records: list[dict], ipc: int, seeds: list[int], methods: list[str] | None = None) -> dict:
    """The archived sets at ``ipc`` of ``seeds`` (and ``methods``), keyed by ``(method, seed)``."""
    return {(r["method"], int(r["seed"])): r for r in records
            if r["method"] != FULL and int(r["ipc"]) == ipc and int(r["seed"]) in seeds
            and (methods is None or r["method"] in methods) and "set" in r}


def train_difficulty(records: list[dict]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Each training image's loss averaged over the archived full-data networks, and per full-data seed the
    average over the *other* networks (the scale that network is graded on)."""
    losses = {int(r["seed"]): r["train_loss"].float() for r in records if r["method"] == FULL and "train_loss" in r}
    if not losses:
        raise ValueError("The archive holds no full-data network with its training losses: run "
                         "benchmarks/diagnosis.py (it trains and archives them first).")
    mean = torch.stack(list(losses.values())).mean(0)
    others = {s: torch.stack([v for t, v in losses.items() if t != s]).mean(0) for s in losses if len(losses) > 1}
    return mean, others


def find_full_predictions(data: Dataset, preset: str, runs: Path, seed: int = 0) -> Path | None:
    """The predictions file (with weights) of the full-data network of ``seed`` under ``runs``, if any."""
    folder = folder_of(data, FULL, 0, seed, preset=preset, runs=runs) / "predictions"
    files = sorted(folder.glob(f"full-*-seed{seed}-*.pt")) or sorted(Path(runs).rglob(f"predictions/full-*-seed{seed}-*.pt"))
    for f in files:
        state = load_predictions(f)
        if state.get("dataset") == data.name and state.get("net") is not None:
            return f
    return None


def reference_net(data: Dataset, folder: Path, preset: str, runs: Path, seed: int = 0) -> torch.nn.Module | None:
    """The archived full-data network of ``seed``, archived first from its run folder when it is not yet."""
    if not reference_net_path(folder, seed).exists():
        found = find_full_predictions(data, preset, runs, seed)
        if found is None:
            return None
        archive_reference_net(found, reference_net_path(folder, seed))
    return load_reference_net(folder, data, seed)


def forgetting(data: Dataset, folder: Path, seed: int = FORGETTING_SEED, progress: bool = True,
               epochs: int | None = None, width: int = 128):
    """Forgetting events of every training image while a full-data ConvNet (``width``; the dataset's full-data
    epochs and batch unless ``epochs`` is given) trains with ``seed``; cached in ``<archive>/derived``."""
    recipe = REAL_RECIPES[data.name]
    epochs = recipe.epochs if epochs is None else epochs
    file = folder / DERIVED / f"forgetting-{data.name}-w{width}-e{epochs}-b{recipe.batch_size}-s{seed}.pt"

    def compute() -> dict:
        scores, never = forgetting_scores(data, epochs=epochs, seed=seed, batch_size=recipe.batch_size,
                                          progress=progress, width=width)
        return {"scores": scores.cpu(), "never": never.cpu()}

    state = load_or_compute(file, compute)
    return state["scores"], state["never"]


def whole_accuracy(rec: dict, y_test: torch.Tensor) -> float:
    """Test accuracy (percent) of an archived cell's evaluation network."""
    return 100.0 * (rec["pred"]["test"].long() == y_test.cpu()).float().mean().item()


# ---------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------

def _histograms(data, sets, records, folder, ref, difficulty, own, protocol_of, out, suffix, progress):
    preds = {}
    for (method, seed), syn in sets.items():
        p = protocol_of(method)
        kept = records.get((method, seed), {}).get("pred", {}).get("train")
        if kept is not None:   # the set's own evaluation network's answers, kept by the diagnosis
            preds[(method, seed)] = kept.long()
            continue
        preds[(method, seed)] = set_predictions(data, *syn.decoded(), seed=seed, recipe=p.recipe, arch=p.arch,
                                                cache_dir=folder / DERIVED, progress=progress, **dict(p.net_kwargs))
    own_scores = {}
    if ref is not None and 0 in own:   # graded on the other full-data networks' loss, never on its own
        preds[(FULL, 0)] = predict(ref, data.x_train, data.normalize).argmax(1).cpu()
        own_scores = {"loss": {(FULL, 0): own[0]}}
    return draw_histograms(data, preds, difficulty, out, suffix, own_scores=own_scores)


def _alignment(data, sets, loss, preset, ipc, out, suffix):
    cfg = resolve(preset, data.name, "idc", ipc).distill
    by_seed: dict[int, dict] = {}
    for (method, seed), syn in sets.items():
        by_seed.setdefault(seed, {})[method] = syn.decoded()

    def probe(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return get_network(cfg.arch, data.channels, data.num_classes, data.im_size, **cfg.net_kwargs()).to(data.device)

    return draw_alignment(data, by_seed, loss, probe, out, suffix, max_per_class=500)


def _redundancy(data, sets, cells, folder, protocol_of, out, suffix, progress):
    chosen = {k: syn for k, syn in sets.items() if k[0] in REDUNDANCY_METHODS}
    protocols = {m: protocol_of(m) for m, _ in chosen}
    whole = {k: whole_accuracy(cells[k], data.y_test) for k in chosen
             if cells[k].get("protocol") == protocols[k[0]].id}
    return draw_redundancy(data, chosen, out, suffix, protocols=protocols, whole=whole,
                           cache_dir=folder / DERIVED, progress=progress)


def archive_figures(data: Dataset, ipc: int, seeds: list[int], *, folder: Path | None = None, out: Path = OUT,
                    preset: str = "cpu", methods: list[str] | None = None, only: list[str] | None = None,
                    runs: Path = RUNS, progress: bool = True, embed_method: str = "umap",
                    forgetting_epochs: int | None = None, record: Callable[[pd.DataFrame], object] | None = None,
                    **recipe_overrides: object) -> tuple[list[Path], pd.DataFrame]:
    """Draw ``only`` (default all) of :data:`FIGURES` at ``ipc`` from the archive ``folder`` into ``out``; return the
    files and the numbers. ``record`` gets each figure's numbers as soon as it is drawn. ``forgetting_epochs`` and
    ``recipe_overrides`` (e.g. ``epochs``, for the set networks' protocol) shrink the training for tests."""
    folder = archive_dir(data.name, preset) if folder is None else Path(folder)
    chosen = list(FIGURES) if only is None else list(only)
    records = load_archive(folder)
    cells = cells_at(records, ipc, seeds, methods)
    if not any(m == BASELINE for m, _ in cells):
        raise ValueError(f"No archived random set at IPC {ipc} (seeds {seeds}) in {folder}: the figures need the "
                         "random control. Run benchmarks/diagnosis.py first.")
    sets = {k: archived_set(r, data).to(data.device) for k, r in cells.items()}
    loss, own = train_difficulty(records)
    ref = reference_net(data, folder, preset, runs) if {"histograms", "embeddings"} & set(chosen) else None
    if ref is None and {"histograms", "embeddings"} & set(chosen):
        print("no full-data network weights (seed 0) archived or found: no full row, no embedding", flush=True)

    def protocol_of(method: str):
        return preset_protocol(preset, data.name, method, **recipe_overrides)

    suffix, written, numbers = f"_ipc{ipc}", [], []

    def keep(files: list[Path], nums: pd.DataFrame) -> None:
        written.extend(files)
        numbers.append(nums.assign(dataset=data.name, preset=preset, ipc=ipc))
        if record is not None:
            record(numbers[-1])
    if "histograms" in chosen:
        difficulty = {"loss": (loss, None),
                      "forgetting": forgetting(data, folder, progress=progress, epochs=forgetting_epochs)}
        files, nums = _histograms(data, sets, cells, folder, ref, difficulty, own, protocol_of, out, suffix, progress)
        keep(files, nums)
    if "alignment" in chosen:
        files, nums = _alignment(data, sets, loss, preset, ipc, out, suffix)
        keep(files, nums)
    if "embeddings" in chosen and ref is not None:
        files, nums = draw_embedding(ref, data, sets, loss, out, suffix, method=embed_method, max_real=2000,
                                     cache_dir=folder / DERIVED)
        keep(files, nums)
    if "redundancy" in chosen:
        files, nums = _redundancy(data, sets, cells, folder, protocol_of, out, suffix, progress)
        keep(files, nums)
    table = pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame()
    return written, table


def draw_and_record(data: Dataset, ipc: int, seeds: list[int], figures: list[str] | tuple[str, ...], *,
                    preset: str = "cpu", table: Path | None = None, **options: object) -> list[Path]:
    """:func:`archive_figures`, each figure's numbers written into ``table`` (default the
    committed ``figures_<dataset>_<preset>.csv``) as soon as it is drawn, so a long figure (redundancy) never
    holds back the others'; return the files written."""
    table = table_path("figures", data.name, preset) if table is None else table
    written, _ = archive_figures(data, ipc, seeds, preset=preset, only=list(figures),
                                 record=lambda numbers: update_numbers(numbers, table), **options)
    return written


def update_numbers(numbers: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Replace in the CSV at ``path`` the rows of the (dataset, IPC, figure)s in ``numbers``; return the whole table."""
    if path.exists():
        old = pd.read_csv(path, keep_default_na=False, na_values=[""])
        done = numbers[["dataset", "ipc", "figure"]].drop_duplicates()
        old = old.merge(done.assign(_new=True), on=["dataset", "ipc", "figure"], how="left")
        numbers = pd.concat([old[old["_new"].isna()].drop(columns="_new"), numbers], ignore_index=True)
    cols = ["dataset", "preset", "ipc", "figure", "set", "seed", "metric", "baseline", "value"]
    numbers = numbers[cols].sort_values(["dataset", "ipc", "figure", "set", "seed", "metric", "baseline"])
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers.to_csv(path, index=False)
    return numbers


# ---------------------------------------------------------------------------------------
# The numbers as Markdown
# ---------------------------------------------------------------------------------------

_ERRORS = ([("easy_error", "", "error, easy (%)"), ("hard_error", "", "error, hard (%)"),
            ("easy_gap", "random", "easy minus random's"), ("hard_gap", "random", "hard minus random's"),
            ("contrast", "random", "hard minus easy, vs random")],
           ("contrast", "random", "easy-sample bias: more errors than random on the hard images",
            "leans to the hard images"))

# figure -> title, its columns (metric, baseline, header), and the paired difference read as the bias
# (metric, baseline, what a positive and what a negative interval mean)
VIEWS = {
    "errors_loss": ("Error by loss (training images; easiest / hardest 30% of each class)", *_ERRORS),
    "errors_forgetting": ("Error by forgetting (easy: never forgotten; hard: forgotten or never learned)", *_ERRORS),
    "alignment": ("Gradient alignment (cosine, easiest / hardest 3 deciles)",
                  [("easy_cosine", "", "easy"), ("hard_cosine", "", "hard"), ("drop", "", "easy minus hard"),
                   ("drop_gap", "full", "minus full data's"), ("drop_gap", "random", "minus random's")],
                  ("drop_gap", "random", "easy-sample bias: less aligned with the hard samples than random's",
                   "more aligned with the hard samples than random's")),
    "embedding": ("Embedding (difficulty percentile of the 10 nearest real images, 50 = typical)",
                  [("neighbour_percentile", "", "percentile"), ("neighbour_percentile", "random", "minus random's")],
                  ("neighbour_percentile", "random", "sits among harder images than random's",
                   "easy-sample bias: sits among easier images than random's")),
    "redundancy": ("Redundancy (test accuracy of the halves and of the whole set)",
                   [("halves_acc", "", "halves (%)"), ("whole_acc", "", "whole (%)"), ("gain", "", "gain (points)"),
                    ("gain", "random", "gain minus random's")],
                   ("gain", "random", "halves share less than random's",
                    "halves more redundant than random's")),
}


# figure -> the file its drawing is saved as (``docs/figures/<stem>_ipc<ipc>.png``)
STEMS = {"errors_loss": "difficulty_hist_loss", "errors_forgetting": "difficulty_hist_forgetting",
         "alignment": "gradient_alignment", "embedding": "embedding", "redundancy": "redundancy"}


def reading(values: pd.Series, positive: str, negative: str) -> str:
    """What a paired difference over seeds shows: a direction when its 95% interval excludes zero, else none."""
    s = paired_summary(values.dropna())
    if s["count"] < 2:
        return f"{s['count']} seed: no interval"
    interval = f"[{signed(s['ci_low'])}, {signed(s['ci_high'])}]"
    if s["ci_low"] > 0:
        return f"{positive}, 95% interval {interval}"
    if s["ci_high"] < 0:
        return f"{negative}, 95% interval {interval}"
    return f"no bias visible, 95% interval {interval} includes zero"


def figure_table(numbers: pd.DataFrame, figure: str) -> pd.DataFrame:
    """One figure's numbers, a row per set (controls first): mean ± std over seeds and the reading."""
    _, columns, (metric, baseline, positive, negative) = VIEWS[figure]
    part = numbers[numbers["figure"] == figure].fillna({"baseline": ""})
    rows = []
    for name in set_order(part["set"]):
        mine = part[part["set"] == name]
        row = {"set": name, "seeds": int(mine["seed"].nunique())}
        for m, b, header in columns:
            row[header] = mean_std(mine[(mine["metric"] == m) & (mine["baseline"] == b)]["value"], 2)
        key = mine[(mine["metric"] == metric) & (mine["baseline"] == baseline)]["value"]
        row["reading"] = "control" if is_control(name) or key.empty else reading(key, positive, negative)
        rows.append(row)
    return pd.DataFrame(rows)


def figures_block(dataset: str = "fashion-mnist", preset: str = "cpu") -> str:
    """docs/diagnosis.md's numbers of the other figures, from the committed ``figures_<dataset>_<preset>.csv``."""
    return from_csv(table_path("figures", dataset, preset), _figures_markdown, "python benchmarks/figures.py --ipc 10",
                    keep_default_na=False, na_values=[""])


def _figures_markdown(numbers: pd.DataFrame) -> str:
    parts = []
    for ipc in sorted(numbers["ipc"].unique()):
        at = numbers[numbers["ipc"] == ipc]
        for figure, (title, _, _) in VIEWS.items():
            if (at["figure"] == figure).any():
                image = f"![{title}, IPC {ipc}](figures/{STEMS[figure]}_ipc{ipc}.png)"
                parts.append(f"**IPC {ipc}: {title}**\n\n{image}\n\n{to_markdown(figure_table(at, figure))}")
    return "\n\n".join(parts)


# figure -> what its key number (VIEWS' paired difference) says, for the README
KEY_LABELS = {"errors_loss": "error on the hardest minus the easiest 30% by loss, minus random's (points)",
              "errors_forgetting": "error on forgotten minus never-forgotten images, minus random's (points)",
              "alignment": "gradient alignment lost from easy to hard images, minus random's",
              "embedding": "difficulty percentile of the nearest real images, minus random's",
              "redundancy": "what the second half adds, minus random's (points)"}


def figures_reading(numbers: pd.DataFrame) -> list[str]:
    """One line per figure and IPC: each set that is not a control, its key number against the random set on the
    same seed (mean over seeds) and what the paired interval shows."""
    lines = []
    for figure, (title, _, (metric, baseline, positive, negative)) in VIEWS.items():
        for ipc in sorted(numbers.loc[numbers["figure"] == figure, "ipc"].unique()):
            part = numbers[(numbers["figure"] == figure) & (numbers["ipc"] == ipc)].fillna({"baseline": ""})
            key = part[(part["metric"] == metric) & (part["baseline"] == baseline)]
            entries = [(name, key.loc[key["set"] == name, "value"], partial(reading, positive=positive, negative=negative))
                       for name in set_order(key["set"]) if not is_control(name)]
            if entries:
                lines.append(seeds_line(f"{title.split(' (')[0]}, IPC {ipc}, {KEY_LABELS[figure]}", entries))
    return lines


def readme_block(dataset: str = "fashion-mnist", preset: str = "cpu") -> str:
    """The README's diagnosis in numbers: the bias on the test images by difficulty decile, then every other
    figure's key number, from the committed ``bias_`` and ``figures_<dataset>_<preset>.csv``."""
    bias = from_csv(table_path("bias", dataset, preset), lambda t: "\n".join(f"- {ln}" for ln in bias_reading(t)),
                    "python benchmarks/diagnosis.py")
    rest = from_csv(table_path("figures", dataset, preset),
                    lambda t: "\n".join(f"- {ln}" for ln in figures_reading(t)),
                    "python benchmarks/figures.py --ipc 10", keep_default_na=False, na_values=[""])
    return "\n".join(text if text.startswith("- ") else f"- {text}" for text in (bias, rest))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--ipc", type=int, default=50)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", help="sets to draw, comma-separated (default: every archived one)")
    p.add_argument("--only", help=f"figures to draw, comma-separated: {','.join(FIGURES)} (default: all)")
    p.add_argument("--archive", help="archive folder (default: benchmarks/sets/<dataset>_<preset>)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--runs", default=str(RUNS), help="run folders, to find the full-data network's weights")
    p.add_argument("--device", default="auto")
    p.add_argument("--render", action="store_true", help="only print the Markdown of the committed numbers")
    args = p.parse_args()
    if args.render:
        print(figures_block(args.dataset, args.preset))
        return
    data = load_dataset(args.dataset, device=resolve_device(args.device))
    files = draw_and_record(data, args.ipc, [int(s) for s in args.seeds.split(",")],
                            args.only.split(",") if args.only else FIGURES, folder=args.archive and Path(args.archive),
                            out=Path(args.out), preset=args.preset, methods=args.methods and args.methods.split(","),
                            runs=Path(args.runs))
    print("\n".join(str(f) for f in files if f.suffix == ".png"))
    print(figures_block(data.name, args.preset))


if __name__ == "__main__":
    main()
