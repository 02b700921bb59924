"""Every figure of the diagnosis from saved runs, headless, as PNG + PDF with the table behind each.

Every figure shows the sets next to their controls (:mod:`dasm.analysis.controls`): the ``random``
set (the baseline differences are taken from, paired by seed), the starts (``idc-starts``) and the
full real data; difficulty is always measured by full-data networks, never by the network judged.
:func:`make_figures` takes run folders (each holding a ``synthetic.pt`` and usually a
``results.csv``; sets are known by their method) and writes into ``out``:

- ``difficulty_hist_<loss|forgetting>.{png,pdf,csv}``: per difficulty bin of the real training
  images (loss under a full-data network, or forgetting events while one trains, never-learned
  images apart), how many there are, the error of each set's network, and that error minus the
  random set's;
- ``gradient_alignment.*``: cosine between each set's class gradient and real per-sample
  gradients by difficulty decile, with the random set, the starts and the full data's own class
  gradient as reference curves;
- ``embedding.*``: one map of the real data's features, a panel per set, the real points
  (coloured by difficulty) under the set's images;
- ``saturation.*``: test accuracy against IPC from every ``results.csv`` found, and
  ``gain_over_idc.*``: each method minus IDC on the same seed, per IPC (when IDC rows are there);
- ``redundancy.*``: what the second half of each set adds to the first, over three seeds, next to
  the random set's;
- ``numbers.csv``: the numbers each figure shows, per set and seed (``*_numbers`` functions).

``only`` (``dasm figures --only``) picks some of :data:`FIGURES`; the full-data networks, every
set's network and every redundancy network are cached in ``out/cache`` under a hash of what they
were trained on, so a second call trains nothing. The ``draw_*`` functions take prepared inputs,
so a driver with other sources (``benchmarks/figures.py`` reads the committed archive) draws the
same figures.

:func:`fast_runs` makes a small set of digits runs (random, IDC-starts, IDC, DASM) so that
``dasm figures --fast`` shows the whole pipeline in a few minutes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..data import Dataset
from ..difficulty import forgetting_scores, loss_scores, reference_network
from ..files import load_or_compute
from ..nets import get_network
from ..runs import read_results
from ..synthetic import SyntheticSet
from ..train import Recipe, predict
from .alignment import alignment_numbers, alignment_summary, alignment_table, plot_alignment
from .controls import FULL
from .embeddings import embedding_numbers, embedding_sets_table, plot_embedding_sets
from .gain import gain_table, plot_gain
from .errors import error_numbers, error_table, plot_error_by_difficulty, set_predictions
from .redundancy import plot_redundancy_sets, redundancy_numbers, redundancy_sets_table
from .saturation import plot_saturation, saturation_table


def save_figure(fig: Figure, table: pd.DataFrame, out: Path, name: str) -> list[Path]:
    """Write ``name``.png, .pdf and .csv (the table the figure was drawn from) into ``out``; the same figure
    gives the same bytes (no creation date in the PDF), so an unchanged figure leaves git clean."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.csv"]
    fig.savefig(paths[0])
    fig.savefig(paths[1], metadata={"CreationDate": None})
    table.to_csv(paths[2], index=False)
    plt.close(fig)
    return paths


def save_gain_figure(results: pd.DataFrame, out: Path, name: str, baseline: str = "idc") -> list[Path]:
    """Draw each method's gain over ``baseline`` on the same seed (:func:`~dasm.analysis.gain.gain_table`)
    and save it like :func:`save_figure`; write nothing while no method shares an (IPC, seed) with it."""
    if not (results["method"] == baseline).any():
        return []
    gains = gain_table(results, baseline=baseline)
    return save_figure(plot_gain(gains), gains, out, name) if len(gains) else []


def find_runs(paths: list[str | os.PathLike]) -> dict[str, Path]:
    """Run folders holding a ``synthetic.pt`` under ``paths``, named ``<method>-ipc<ipc>`` (made unique)."""
    runs: dict[str, Path] = {}
    for p in map(Path, paths):
        for file in sorted([p] if p.is_file() else p.rglob("synthetic.pt")):
            if file.parent.name.startswith("segment") or file.parent.name in ("joint",) or \
                    file.parent.name.startswith("at-it"):
                continue  # a DASM stage's intermediate set or a kept snapshot, not a finished run
            syn = SyntheticSet.load(file)
            name = f"{syn.meta.get('method', file.parent.name)}-ipc{syn.ipc}"
            while name in runs:
                name += "'"
            runs[name] = file.parent
    if not runs:
        raise FileNotFoundError(f"No synthetic.pt found under {', '.join(map(str, paths))}: "
                                "distill something first (`dasm distill ... --out DIR`).")
    return runs


def fast_runs(data: Dataset, out: str | os.PathLike, ipc: int = 10, iterations: int = 10,
              progress: bool = False) -> dict[str, Path]:
    """Small random / IDC-starts / IDC / DASM runs on ``data`` (1 evaluation seed, 50 epochs) for a quick figure
    set with its controls."""
    from ..runs import cell_folder, grid, run_grid

    cells = grid(["random", "idc-starts", "idc", "dasm"], [ipc], iterations=iterations, probe_epochs=30, segments=5)
    run_grid(data, cells, out, epochs=50, progress=progress)
    return {f"{c.method}-ipc{ipc}": cell_folder(out, data, c) for c in cells}


FIGURES = ("histograms", "alignment", "embeddings", "saturation", "redundancy")


def difficulty_reference(data: Dataset, epochs: int, width: int, seed: int = 0, cache_dir: Path | None = None,
                         progress: bool = False) -> tuple[torch.nn.Module, Tensor, Tensor, Tensor]:
    """A full-data ConvNet and the difficulty of every real training sample: ``(net, loss, forgetting,
    never_learned)``. Cached in ``cache_dir`` (keyed by dataset, width, epochs, seed) when given."""
    file = None if cache_dir is None else Path(cache_dir) / f"difficulty-{data.name}-w{width}-e{epochs}-s{seed}.pt"

    def compute() -> dict:
        net = reference_network(data, epochs=epochs, seed=seed, progress=progress, width=width)
        forget, never = forgetting_scores(data, epochs=epochs, seed=seed, progress=progress, width=width)
        return {"net": net.state_dict(), "loss": loss_scores(net, data.x_train, data.y_train, data.normalize),
                "forgetting": forget, "never": never}

    state = load_or_compute(file, compute, data.device)
    net = get_network("convnet", data.channels, data.num_classes, data.im_size, width=width).to(data.device)
    net.load_state_dict(state["net"])
    return net.eval(), state["loss"], state["forgetting"], state["never"]


def full_predictions(data: Dataset, epochs: int, width: int, seed: int, cache_dir: Path | None = None,
                     progress: bool = False) -> Tensor:
    """The class a full-data ConvNet (seed ``seed``) predicts for every training image: the ``full`` row of the
    error figures (cached like :func:`difficulty_reference`)."""
    file = None if cache_dir is None else Path(cache_dir) / f"full-predictions-{data.name}-w{width}-e{epochs}-s{seed}.pt"

    def compute() -> Tensor:
        net = reference_network(data, epochs=epochs, seed=seed, progress=progress, width=width)
        return predict(net, data.x_train, data.normalize).argmax(1).cpu()

    return load_or_compute(file, compute)


def run_sets(runs: dict[str, Path], device: torch.device | str = "cpu") -> dict[int, dict[tuple[str, int], SyntheticSet]]:
    """The sets of ``runs`` grouped by IPC, each keyed by ``(method, seed)`` (a second run of the same method, IPC
    and seed is named after its run instead)."""
    out: dict[int, dict[tuple[str, int], SyntheticSet]] = {}
    for name, folder in runs.items():
        syn = SyntheticSet.load(folder / "synthetic.pt", device=device)
        key = (str(syn.meta.get("method", name)), int(syn.meta.get("seed", 0)))
        group = out.setdefault(syn.ipc, {})
        group[key if key not in group else (name, key[1])] = syn
    return out


def draw_histograms(data: Dataset, predictions: dict[tuple[str, int], Tensor],
                    difficulty: dict[str, tuple[Tensor, Tensor | None]], out: Path, suffix: str = "", *,
                    own_scores: dict[str, dict] | None = None, bins: int = 10) -> tuple[list[Path], pd.DataFrame]:
    """Error of every set's network on the real training images per difficulty bin, one figure per score in
    ``difficulty`` (name -> (scores, never_learned)): ``difficulty_hist_<score><suffix>``; with its numbers."""
    written, numbers = [], []
    for score_name, (scores, never) in difficulty.items():
        table = error_table(data.y_train, scores, predictions, never_learned=never, score_name=score_name, bins=bins,
                            own_scores=(own_scores or {}).get(score_name))
        written += save_figure(plot_error_by_difficulty(table), table, out, f"difficulty_hist_{score_name}{suffix}")
        numbers.append(error_numbers(table))
    return written, pd.concat(numbers, ignore_index=True)


def draw_alignment(data: Dataset, sets_by_seed: dict[int, dict[str, tuple[Tensor, Tensor]]], scores: Tensor,
                   probe: Callable[[int], torch.nn.Module], out: Path, suffix: str = "", *,
                   max_per_class: int | None = 500) -> tuple[list[Path], pd.DataFrame]:
    """Gradient alignment by difficulty decile of every set with the controls and the full real data, at a freshly
    initialised matching network ``probe(seed)`` per seed (as a distiller sees it): ``gradient_alignment<suffix>``."""
    table = pd.concat([alignment_table(probe(seed), data, sets, scores, max_per_class=max_per_class, seed=seed)
                       for seed, sets in sorted(sets_by_seed.items())], ignore_index=True)
    summary = alignment_summary(table)   # per set, seed and decile: what the figure and the numbers need
    return save_figure(plot_alignment(summary), summary, out, f"gradient_alignment{suffix}"), alignment_numbers(summary)


def draw_embedding(net: torch.nn.Module, data: Dataset, sets: dict[tuple[str, int], SyntheticSet], scores: Tensor,
                   out: Path, suffix: str = "", *, method: str = "umap", max_real: int = 2000, seed: int = 0,
                   cache_dir: Path | None = None) -> tuple[list[Path], pd.DataFrame]:
    """Every set placed into one map of the real data (features of the full-data ``net``): ``embedding<suffix>``."""
    table = embedding_sets_table(net, data, sets, scores, method=method, max_real=max_real, seed=seed,
                                 cache_dir=cache_dir)
    return save_figure(plot_embedding_sets(table), table, out, f"embedding{suffix}"), embedding_numbers(table)


def draw_redundancy(data: Dataset, sets: dict[tuple[str, int], SyntheticSet], out: Path, suffix: str = "",
                    **options: object) -> tuple[list[Path], pd.DataFrame]:
    """Redundancy of every set's halves next to the random set's (:func:`redundancy_sets_table` ``options``):
    ``redundancy<suffix>``."""
    table = redundancy_sets_table(data, sets, **options)
    return save_figure(plot_redundancy_sets(table), table, out, f"redundancy{suffix}"), redundancy_numbers(table)


def _draw_saturation(runs: dict[str, Path], results: list, out: Path) -> list[Path]:
    """Saturation over IPC (and the gain over IDC) from every results table of the runs and the extra tables."""
    rows = read_results(list(runs.values()) + list(results))
    if not len(rows) or not (rows["metric"] == "test_acc").any():
        return []
    key = [c for c in ("dataset", "method", "ipc", "seed", "arch", "metric", "protocol") if c in rows.columns]
    rows = rows.drop_duplicates(key)
    table = saturation_table(rows)
    return save_figure(plot_saturation(table), table, out, "saturation") + save_gain_figure(rows, out, "gain_over_idc")


def _draw_group(data: Dataset, sets: dict[tuple[str, int], SyntheticSet], chosen: list[str], out: Path, suffix: str,
                o: dict) -> tuple[list[Path], list[pd.DataFrame]]:
    """The figures of one IPC's sets (``o``: the options of :func:`make_figures`)."""
    written, numbers, cache = [], [], out / "cache"
    if {"histograms", "alignment", "embeddings"} & set(chosen):
        reference, loss, forget, never = difficulty_reference(data, o["reference_epochs"], o["reference_width"],
                                                              o["seed"], cache, o["progress"])
    if "histograms" in chosen:
        recipe = Recipe(epochs=o["set_epochs"])
        preds = {key: set_predictions(data, *syn.decoded(), seed=key[1], recipe=recipe, cache_dir=cache,
                                      progress=o["progress"]) for key, syn in sets.items()}
        # the full row: another full-data network (seed + 1), graded on the difficulty the reference defines
        preds[(FULL, o["seed"])] = full_predictions(data, o["reference_epochs"], o["reference_width"], o["seed"] + 1,
                                                    cache, o["progress"])
        files, nums = draw_histograms(data, preds, {"loss": (loss, None), "forgetting": (forget, never)}, out, suffix)
        written, numbers = written + files, numbers + [nums]
    if "alignment" in chosen:
        by_seed: dict[int, dict] = {}
        for (name, s), syn in sets.items():
            by_seed.setdefault(s, {})[name] = syn.decoded()

        def probe(s: int) -> torch.nn.Module:
            torch.manual_seed(s)
            return get_network("convnet", data.channels, data.num_classes, data.im_size).to(data.device)
        files, nums = draw_alignment(data, by_seed, loss, probe, out, suffix, max_per_class=o["alignment_per_class"])
        written, numbers = written + files, numbers + [nums]
    if "embeddings" in chosen:
        files, nums = draw_embedding(reference, data, sets, loss, out, suffix, method=o["embed_method"],
                                     max_real=o["max_real"], seed=o["seed"], cache_dir=cache)
        written, numbers = written + files, numbers + [nums]
    if "redundancy" in chosen and any(syn.ipc >= 2 for syn in sets.values()):
        files, nums = draw_redundancy(data, sets, out, suffix, epochs=o["set_epochs"], cache_dir=cache,
                                      train_seeds=[o["seed"] + k for k in range(o["redundancy_seeds"])]
                                      if len({s for _, s in sets}) == 1 else None, progress=o["progress"])
        written, numbers = written + files, numbers + [nums]
    return written, numbers


def make_figures(data: Dataset, runs: dict[str, Path], out: str | os.PathLike, *, fast: bool = False,
                 reference_epochs: int = 20, reference_width: int = 128, set_epochs: int = 300,
                 alignment_per_class: int | None = 500, embed_method: str = "umap",
                 results: list[str | os.PathLike] = (), only: list[str] | None = None,
                 progress: bool = False, seed: int = 0, redundancy_seeds: int = 3) -> list[Path]:
    """Regenerate the diagnosis figures for ``runs`` into ``out`` (all of :data:`FIGURES`, or ``only``
    those); return the files written, ``numbers.csv`` (what each figure shows, per set and seed) among them.

    Sets are known by their method: ``random`` is the baseline and ``*-starts`` the starts (give those runs
    too); ``full`` is added from full-data networks. Each IPC's sets are drawn together (file names get
    ``_ipc<ipc>`` when the runs hold several IPCs). The saturation curve reads the runs' ``results.csv`` plus
    the tables in ``results``; a row present in several counts once. The full-data networks (the difficulty
    reference, the forgetting run and the ``full`` row) train for ``reference_epochs`` at ``reference_width``;
    they, every set's network and every redundancy network are cached in ``out/cache``, so a second call trains
    nothing. Redundancy trains over ``redundancy_seeds`` seeds when every set has one seed.
    """
    chosen = list(FIGURES) if only is None else list(only)
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        raise ValueError(f"Unknown figures {unknown}; choose from {', '.join(FIGURES)}.")
    out = Path(out)
    if fast:
        reference_epochs, set_epochs, embed_method = min(reference_epochs, 3), min(set_epochs, 50), "pca"
        alignment_per_class = 30
    options = {"reference_epochs": reference_epochs, "reference_width": reference_width, "set_epochs": set_epochs,
               "alignment_per_class": alignment_per_class, "embed_method": embed_method, "seed": seed,
               "max_real": 500 if fast else 2000, "progress": progress, "redundancy_seeds": redundancy_seeds}
    groups = run_sets(runs, data.device)
    written: list[Path] = []
    numbers: list[pd.DataFrame] = []
    for ipc, sets in sorted(groups.items()):
        suffix = f"_ipc{ipc}" if len(groups) > 1 else ""
        files, nums = _draw_group(data, sets, chosen, out, suffix, options)
        written += files
        numbers += [n.assign(ipc=ipc) for n in nums]
    if "saturation" in chosen:
        written += _draw_saturation(runs, list(results), out)
    if numbers:
        table = pd.concat(numbers, ignore_index=True)
        table.insert(0, "dataset", data.name)
        table.to_csv(out / "numbers.csv", index=False)
        written.append(out / "numbers.csv")
    return written
