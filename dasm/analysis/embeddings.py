"""Feature embeddings of real and synthetic images: where the synthetic set sits among the real data.

:func:`embedding_table` embeds a network's features (``net.embed``) of a stratified sample of
real training images together with every stored synthetic image in 2-D (UMAP, or PCA as the
fast fallback) and returns one row per point; :func:`plot_embedding` draws that table, real
points coloured by difficulty (or class) and synthetic images marked per segment, optionally
as thumbnails. ``umap`` is imported only when UMAP is asked for: its first import compiles
for ~15 s.
"""

from __future__ import annotations

import hashlib
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..coreset import embed_dataset
from ..data import Dataset
from ..synthetic import SyntheticSet, check_matches
from .controls import BASELINE, REAL, line_style, numbers_frame, paired_gap, set_order
from .style import dasm_style

METHODS = ("umap", "pca")
COLUMNS = ["kind", "index", "label", "score", "segment", "x", "y"]
_CACHE_VERSION = "embedding/1"  # bump when the 2-D computation changes, so old cache files are not reused
_SEGMENT_MARKERS = ("*", "P", "X", "D", "^", "s", "v", "p", "h", "o")
_SYN_COLOR = "#d55e00"
# pandas 3 parses floats round-trip by default (and deprecates the option); pandas 2 needs asking
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def stratified_sample(labels: Tensor, n: int, seed: int = 0) -> Tensor:
    """Sorted indices of ``n`` samples drawn without replacement, each class in proportion to its size (seeded).

    All indices when ``n`` is at least the number of samples.
    """
    labels = labels.cpu()
    total = len(labels)
    if n >= total:
        return torch.arange(total)
    if n < 1:
        raise ValueError(f"max_real must be a positive integer, got {n!r}.")
    classes, counts = torch.unique(labels, return_counts=True)
    share = counts.double() * n / total
    take = share.floor().long()
    # largest remainders get the leftover picks, so exactly n are taken
    extra = n - int(take.sum())
    if extra:
        order = torch.sort(share - take.double(), descending=True, stable=True).indices[:extra]
        take[order] += 1
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c, k in zip(classes.tolist(), take.tolist()):
        ix = torch.nonzero(labels == c, as_tuple=True)[0]
        picks.append(ix[torch.randperm(len(ix), generator=g)[:k]])
    return torch.sort(torch.cat(picks)).values


def _n_neighbors(n: int) -> int:
    return max(2, min(15, n - 1))


def _pca_2d(features: np.ndarray) -> np.ndarray:
    """Exact (SVD) projection on the two leading principal axes; signs fixed so the result is deterministic."""
    f = torch.from_numpy(features).double()
    f = f - f.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(f, full_matrices=False)
    axes = vh[:2]
    # sign convention: the largest-magnitude loading of each axis is positive
    sign = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    sign[sign == 0] = 1.0
    xy = f @ (axes * sign).T
    if xy.shape[1] < 2:  # one-dimensional features: put everything on the x axis
        xy = torch.cat([xy, torch.zeros(len(xy), 2 - xy.shape[1], dtype=xy.dtype)], dim=1)
    return xy.numpy()


@contextmanager
def _umap_session():
    """Run UMAP without its side effects: its notes on n_jobs, random_state and tiny graphs are silenced,
    and torch's thread count is restored afterwards (numba, which UMAP compiles with, sets the OpenMP
    thread count it shares with torch to every core on its first parallel call, so seeded torch work
    after an embedding would otherwise run with other threads: slower on a shared core, other sums)."""
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def _umap(n: int, seed: int):
    """A 2-D UMAP reducer for ``n`` points (seeded, one job); the first import compiles numba code (~15 s)."""
    import umap

    if n < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {n}; use method='pca'.")
    return umap.UMAP(n_components=2, n_neighbors=_n_neighbors(n), random_state=seed, n_jobs=1,
                     init="spectral" if n > 20 else "random")


def _umap_2d(features: np.ndarray, seed: int) -> np.ndarray:
    with _umap_session():
        return np.asarray(_umap(len(features), seed).fit_transform(features), dtype=np.float64)


def _embed_2d(features: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D coordinates (N, 2) of ``features`` (N, D) by ``method`` (``umap`` or ``pca``)."""
    if method == "pca":
        return _pca_2d(features)
    return _umap_2d(features, seed)


def _cache_key(features: np.ndarray, method: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"{_CACHE_VERSION}|{method}|{seed}|{features.shape}|".encode())
    h.update(np.ascontiguousarray(features, dtype=np.float32).tobytes())
    return h.hexdigest()[:20]


def _net_device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def embedding_table(net: nn.Module, data: Dataset, syn: SyntheticSet | None = None, scores: Tensor | None = None,
                    method: str = "umap", max_real: int = 2000, seed: int = 0,
                    cache_dir: str | Path | None = None) -> pd.DataFrame:
    """2-D embedding (UMAP or PCA) of ``net.embed`` features of up to ``max_real`` real training images
    (seeded, stratified by class) and of every stored image of ``syn``, one row per point.

    Columns: ``kind`` (real/synthetic), ``index`` (into ``data.x_train`` or ``syn.images``), ``label``,
    ``score`` (``scores[index]`` for real points, NaN otherwise), ``segment`` (1-based, synthetic only),
    ``x``, ``y``. With ``cache_dir`` the coordinates are stored under a hash of the features, method
    and seed, and a later call with the same inputs reuses them instead of recomputing.
    """
    method = method.strip().lower()
    if method not in METHODS:
        raise ValueError(f"Unknown embedding method {method!r}; choose one of {', '.join(METHODS)}.")
    n_train = len(data.y_train)
    if scores is not None:
        scores = scores.detach().flatten().cpu().double()
        if len(scores) != n_train:
            raise ValueError(f"scores has {len(scores)} values but {data.name} has {n_train} training samples: "
                             "pass one score per training sample (e.g. from dasm.difficulty).")
    if syn is not None:
        check_matches(syn, data)

    real_idx = stratified_sample(data.y_train, max_real, seed)
    device = _net_device(net)
    parts = [embed_dataset(net, data.x_train[real_idx.to(data.device)].to(device), data.normalize)]
    if syn is not None:
        parts.append(embed_dataset(net, syn.images.detach().to(device), data.normalize))
    features = torch.cat(parts).flatten(1).float().cpu().numpy()

    n_real = len(real_idx)
    n_syn = 0 if syn is None else len(syn.labels)
    segment = np.full(n_real + n_syn, np.nan)
    if syn is not None:
        for k, (a, b) in enumerate(syn.segments):
            segment[n_real + a:n_real + b] = k + 1
    score = np.full(n_real + n_syn, np.nan)
    if scores is not None:
        score[:n_real] = scores[real_idx].numpy()
    labels = data.y_train.cpu()[real_idx].tolist() + ([] if syn is None else syn.labels.cpu().tolist())
    table = pd.DataFrame({
        "kind": ["real"] * n_real + ["synthetic"] * n_syn,
        "index": real_idx.tolist() + list(range(n_syn)),
        "label": np.asarray(labels, dtype=np.int64),
        "score": score,
        "segment": segment,
    })

    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"embedding-{method}-seed{seed}-{_cache_key(features, method, seed)}.csv"
        if cache_file.exists():
            cached = pd.read_csv(cache_file, **_EXACT_FLOATS)
            if len(cached) == len(table) and (cached["kind"].tolist() == table["kind"].tolist()
                                              and cached["index"].tolist() == table["index"].tolist()):
                table["x"], table["y"] = cached["x"].to_numpy(), cached["y"].to_numpy()
                return table[COLUMNS]
    xy = _embed_2d(features, method, seed)
    table["x"], table["y"] = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(cache_file)
    return table[COLUMNS]


def _thumbnail(img: Tensor) -> np.ndarray:
    img = img.detach().float().cpu().clamp(0, 1)
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def _draw_real(fig, ax, real: pd.DataFrame, color_by: str, n_classes: int, score_label: str):
    """Real points first, under everything else: coloured by score (grey where unknown) or by class; the
    colour map of the class colouring is returned for the synthetic markers."""
    import matplotlib.pyplot as plt

    if color_by == "score":
        known = real[real["score"].notna()]
        ax.scatter(real.loc[real["score"].isna(), "x"], real.loc[real["score"].isna(), "y"], s=6,
                   color="#bbbbbb", linewidths=0, alpha=0.6)
        points = ax.scatter(known["x"], known["y"], c=known["score"], cmap="viridis", s=8, linewidths=0, alpha=0.8)
        fig.colorbar(points, ax=ax, label=score_label)
        return None
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20", n_classes)
    points = ax.scatter(real["x"], real["y"], c=real["label"], cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5, s=8,
                        linewidths=0, alpha=0.7)
    bar = fig.colorbar(points, ax=ax, label="class label", ticks=range(n_classes))
    bar.ax.tick_params(length=0)
    return cmap


def _draw_segments(ax, syn: pd.DataFrame, color_by: str, cmap, thumbnails: Tensor | None, zoom: float) -> list:
    """The synthetic images on top, one marker shape and colour per segment (or thumbnails); legend handles."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    handles = []
    segments = sorted(int(s) for s in syn["segment"].dropna().unique())
    # Markers shrink as the set grows (110 pt^2 up to 50 images, ~35 at 500) so the real points stay visible.
    size = 110.0 * min(1.0, (50 / max(len(syn), 1)) ** 0.5)
    n_syn_classes = max(syn["label"].nunique(), 1)
    for k in segments:
        rows = syn[syn["segment"] == k]
        marker = _SEGMENT_MARKERS[(k - 1) % len(_SEGMENT_MARKERS)]
        edge = plt.get_cmap("Dark2")((k - 1) % 8) if len(segments) > 1 else "black"
        if color_by == "label":
            face = [cmap(int(c)) for c in rows["label"]]
        else:  # one colour per segment (besides its shape), so small markers still tell segments apart
            face = to_hex(edge) if len(segments) > 1 else _SYN_COLOR
        label = f"segment {k} ({len(rows) // n_syn_classes} IPC)"
        if thumbnails is None:
            ax.scatter(rows["x"], rows["y"], marker=marker, s=size, c=face, edgecolors="black",
                       linewidths=0.8 if size > 60 else 0.4, zorder=3)
            handles.append(Line2D([], [], linestyle="none", marker=marker, markersize=10,
                                  markerfacecolor=face if isinstance(face, str) else "#dddddd",
                                  markeredgecolor="black", label=label))
            continue
        base = 24.0 / max(thumbnails.shape[-2:])
        for _, r in rows.iterrows():
            image = OffsetImage(_thumbnail(thumbnails[int(r["index"])]), zoom=base * zoom,
                                cmap="gray" if thumbnails.shape[1] == 1 else None, norm=None)
            image.get_children()[0].set_clim(0, 1)
            box = AnnotationBbox(image, (r["x"], r["y"]), frameon=True, pad=0.1,
                                 bboxprops={"edgecolor": edge, "linewidth": 1.2})
            box.set_zorder(3)
            ax.add_artist(box)
        handles.append(Line2D([], [], linestyle="none", marker="s", markersize=10, markerfacecolor="white",
                              markeredgecolor=edge, label=label))
    return handles


def plot_embedding(table: pd.DataFrame, color_by: str = "score", thumbnails: Tensor | None = None,
                   zoom: float = 1.0, *, score_label: str = "difficulty score (higher = harder)",
                   title: str | None = None) -> Figure:
    """Draw an :func:`embedding_table`: real points as dots coloured by ``score`` (colour bar) or ``label``,
    synthetic images as markers (one shape and colour per segment, smaller as the set grows) or as
    image thumbnails.

    ``thumbnails`` is the synthetic set's stored images (``syn.images``, pixels in [0, 1]); ``zoom`` scales
    them (1 draws each about 24 points wide). Colouring by score falls back to labels when no scores exist.
    One set without controls: the diagnosis draws :func:`plot_embedding_sets`.
    """
    import matplotlib.pyplot as plt

    if color_by not in ("score", "label"):
        raise ValueError(f"color_by must be 'score' or 'label', got {color_by!r}.")
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}; make it with embedding_table().")
    real = table[table["kind"] == "real"]
    syn = table[table["kind"] == "synthetic"]
    if color_by == "score" and real["score"].notna().sum() == 0:
        color_by = "label"
    classes = sorted(int(c) for c in table["label"].unique())
    n_classes = max(classes) + 1 if classes else 1
    if thumbnails is not None and len(syn) and int(syn["index"].max()) >= len(thumbnails):
        raise ValueError(f"thumbnails holds {len(thumbnails)} images but the table refers to synthetic image "
                         f"{int(syn['index'].max())}; pass the same set's syn.images.")

    with dasm_style():
        fig, ax = plt.subplots(figsize=(6.2, 5.0))
        cmap = _draw_real(fig, ax, real, color_by, n_classes, score_label)
        handles = _draw_segments(ax, syn, color_by, cmap, thumbnails, zoom)
        if handles:
            ax.legend(handles=handles, title="synthetic images", loc="best")
            if thumbnails is not None:  # thumbnails are artists, not data: keep them inside the view
                ax.update_datalim(syn[["x", "y"]].to_numpy())
                ax.autoscale_view()
        kinds = f"{len(real)} real" + (f", {len(syn)} synthetic" if len(syn) else "")
        ax.set_title(title or f"Feature embedding ({kinds} images)")
        ax.set_xlabel("embedding dimension 1 (a.u.)")
        ax.set_ylabel("embedding dimension 2 (a.u.)")
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Several sets, with their controls, in the map of the real data
# ---------------------------------------------------------------------------------------

SETS_COLUMNS = COLUMNS + ["set", "seed", "percentile"]


def _fit_on_real(real: np.ndarray, syn: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """2-D map fitted on the real features alone, the synthetic ones placed into it (PCA: projected on the real
    data's axes; UMAP: ``transform``), so every set lands in the same map of the real data."""
    if method == "pca":
        f = torch.from_numpy(real).double()
        mean = f.mean(0, keepdim=True)
        _, _, vh = torch.linalg.svd(f - mean, full_matrices=False)
        axes = vh[:2]
        sign = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
        sign[sign == 0] = 1.0
        axes = (axes * sign).T
        if axes.shape[1] < 2:
            axes = torch.cat([axes, torch.zeros(axes.shape[0], 2 - axes.shape[1], dtype=axes.dtype)], dim=1)
        project = lambda v: ((torch.from_numpy(v).double() - mean) @ axes).numpy()  # noqa: E731
        return project(real), project(syn) if len(syn) else np.zeros((0, 2))
    with _umap_session():
        reducer = _umap(len(real), seed)
        xy = np.asarray(reducer.fit_transform(real), dtype=np.float64)
        return xy, np.asarray(reducer.transform(syn), dtype=np.float64) if len(syn) else np.zeros((0, 2))


def _percentiles(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each sample's difficulty percentile within its class (0 = easiest, 100 = hardest; 50 for a lone sample)."""
    out = np.full(len(scores), np.nan)
    for c in np.unique(labels):
        ix = np.nonzero(labels == c)[0]
        ranks = pd.Series(scores[ix]).rank(method="average").to_numpy()
        out[ix] = 50.0 if len(ix) == 1 else 100.0 * (ranks - 1) / (len(ix) - 1)
    return out


def _neighbour_percentile(real_f: Tensor, real_y: np.ndarray, real_pct: np.ndarray, syn_f: Tensor,
                          syn_y: np.ndarray, k: int) -> np.ndarray:
    """Mean within-class difficulty percentile of the ``k`` nearest real images of the same class, per synthetic
    image, in feature space (NaN where the class has no real image)."""
    out = np.full(len(syn_y), np.nan)
    for c in np.unique(syn_y):
        si, ri = np.nonzero(syn_y == c)[0], np.nonzero(real_y == c)[0]
        if len(ri) == 0:
            continue
        dist = torch.cdist(syn_f[si].double(), real_f[ri].double(), compute_mode="donot_use_mm_for_euclid_dist")
        near = dist.topk(min(k, len(ri)), dim=1, largest=False).indices.numpy()
        out[si] = real_pct[ri][near].mean(1)
    return out


def embedding_sets_table(net: nn.Module, data: Dataset, sets: dict[tuple[str, int], SyntheticSet],
                         scores: Tensor | None = None, method: str = "umap", max_real: int = 2000, seed: int = 0,
                         cache_dir: str | Path | None = None, neighbours: int = 10) -> pd.DataFrame:
    """One map of the real data (``net.embed`` features of up to ``max_real`` real training images, stratified,
    seeded, fitted alone) with the stored images of every set placed into it: one row per point.

    ``sets`` maps ``(set name, seed)`` to a set; name the controls ``random`` and ``<base>-starts``. Columns:
    those of :func:`embedding_table` plus ``set`` (``real`` for real points), ``seed`` (NaN for real points)
    and ``percentile``: for a real point its within-class difficulty percentile under ``scores`` (full-data
    difficulty; 100 = hardest), for a synthetic image the mean percentile of its ``neighbours`` nearest real
    images of its class in feature space (where in difficulty the image sits). With ``cache_dir`` the 2-D
    coordinates are reused for the same features, method and seed.
    """
    method = method.strip().lower()
    if method not in METHODS:
        raise ValueError(f"Unknown embedding method {method!r}; choose one of {', '.join(METHODS)}.")
    if scores is not None:
        scores = scores.detach().flatten().cpu().double()
        if len(scores) != len(data.y_train):
            raise ValueError(f"scores has {len(scores)} values but {data.name} has {len(data.y_train)} training "
                             "samples: pass one score per training sample.")
    for syn in sets.values():
        check_matches(syn, data)
    real_idx = stratified_sample(data.y_train, max_real, seed)
    dev = _net_device(net)
    real_f = embed_dataset(net, data.x_train[real_idx.to(data.device)].to(dev), data.normalize).flatten(1).float().cpu()
    syn_f = [embed_dataset(net, syn.images.detach().to(dev), data.normalize).flatten(1).float().cpu()
             for syn in sets.values()]
    syn_all = torch.cat(syn_f) if syn_f else torch.zeros(0, real_f.shape[1])
    real_y = data.y_train.cpu()[real_idx].numpy().astype(np.int64)
    real_pct = _percentiles(scores[real_idx].numpy(), real_y) if scores is not None else np.full(len(real_y), np.nan)
    frames = [pd.DataFrame({"kind": "real", "index": real_idx.numpy(), "label": real_y,
                            "score": scores[real_idx].numpy() if scores is not None else np.nan, "segment": np.nan,
                            "set": REAL, "seed": np.nan, "percentile": real_pct})]
    for ((name, s), syn), feats in zip(sets.items(), syn_f):
        segment = np.full(len(syn.labels), np.nan)
        for k, (a, b) in enumerate(syn.segments):
            segment[a:b] = k + 1
        y = syn.labels.cpu().numpy().astype(np.int64)
        frames.append(pd.DataFrame({"kind": "synthetic", "index": np.arange(len(y)), "label": y, "score": np.nan,
                                    "segment": segment, "set": str(name), "seed": float(s),
                                    "percentile": _neighbour_percentile(real_f, real_y, real_pct, feats, y, neighbours)}))
    table = pd.concat(frames, ignore_index=True)
    table[["x", "y"]] = _cached_fit(real_f.numpy(), syn_all.numpy(), method, seed, cache_dir)
    return table[SETS_COLUMNS]


def _cached_fit(real: np.ndarray, syn: np.ndarray, method: str, seed: int, cache_dir: str | Path | None) -> np.ndarray:
    """(N_real + N_syn, 2) coordinates of :func:`_fit_on_real`, kept in ``cache_dir`` under a hash of the inputs."""
    file = None
    if cache_dir is not None:
        key = _cache_key(np.concatenate([real, syn]), f"{method}-fit-real/{len(real)}", seed)
        file = Path(cache_dir) / f"embedding-sets-{method}-seed{seed}-{key}.npy"
        if file.exists():
            cached = np.load(file)
            if cached.shape == (len(real) + len(syn), 2):
                return cached
    r, s = _fit_on_real(real, syn, method, seed)
    xy = np.concatenate([r, s]).astype(np.float64)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(file.name + ".tmp.npy")
        np.save(tmp, xy)
        tmp.replace(file)
    return xy


def embedding_numbers(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per set and seed (:func:`~dasm.analysis.controls.numbers_frame`): ``neighbour_percentile``, the mean
    within-class difficulty percentile of the real images nearest the set's images (50 = typical, lower =
    among the easy ones), and its gap to the ``baseline`` set on the same seed."""
    syn = table[table["kind"] == "synthetic"]
    per = syn.groupby(["set", "seed"])["percentile"].mean().rename("neighbour_percentile").reset_index()
    per["gap"] = paired_gap(per, "neighbour_percentile", ["seed"], baseline)
    rows = []
    for r in per.itertuples(index=False):
        common = {"figure": "embedding", "set": r.set, "seed": int(r.seed), "metric": "neighbour_percentile"}
        rows += [{**common, "value": float(r.neighbour_percentile)},
                 {**common, "baseline": baseline, "value": float(r.gap)}]
    return numbers_frame(rows)


def _set_panel(ax, real: pd.DataFrame, syn: pd.DataFrame, name: str):
    """One set's panel: every real point first (coloured by difficulty percentile), the set's images on top,
    outlined, one marker shape per segment."""
    size = 70.0 * min(1.0, (50 / max(len(syn), 1)) ** 0.5)
    points = ax.scatter(real["x"], real["y"], c=real["percentile"], cmap="viridis", vmin=0, vmax=100, s=9,
                        linewidths=0, alpha=0.55, zorder=1)
    color = line_style(name)["color"]
    for k in sorted(int(v) for v in syn["segment"].dropna().unique()) or [None]:
        rows = syn if k is None else syn[syn["segment"] == k]
        marker = _SEGMENT_MARKERS[(k - 1) % len(_SEGMENT_MARKERS)] if k is not None else "o"
        ax.scatter(rows["x"], rows["y"], marker=marker, s=size, c=color, edgecolors="black", linewidths=0.6,
                   zorder=3, label=f"segment {k}" if k is not None and syn["segment"].nunique() > 1 else None)
    pct = syn["percentile"].mean()
    ax.set_title(f"{name}" + ("" if np.isnan(pct) else f"\nneighbours at percentile {pct:.0f}"))
    if syn["segment"].nunique() > 1:
        ax.legend(loc="best", fontsize=7)
    return points


def plot_embedding_sets(table: pd.DataFrame, seed: int | None = None,
                        score_label: str = "difficulty percentile\nwithin class (full data)") -> Figure:
    """Draw an :func:`embedding_sets_table`: one panel per set of ``seed`` (default: the smallest), controls
    first, all in the same map; the real points in every panel, drawn first and coloured by difficulty, the
    set's images on top with outlines."""
    import matplotlib.pyplot as plt

    missing = set(SETS_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}; make it with embedding_sets_table().")
    real = table[table["kind"] == "real"]
    syn = table[table["kind"] == "synthetic"]
    if syn.empty:
        raise ValueError("The table holds no set to draw.")
    seed = int(syn["seed"].min()) if seed is None else int(seed)
    syn = syn[syn["seed"] == seed]
    names = set_order(syn["set"])
    with dasm_style():
        fig, axes = plt.subplots(1, len(names), sharex=True, sharey=True, squeeze=False, layout="constrained",
                                 figsize=(3.0 * len(names) + 1.2, 3.6))
        for ax, name in zip(axes[0], names):
            points = _set_panel(ax, real, syn[syn["set"] == name], name)
            ax.set_xlabel("dimension 1 (a.u.)")
        axes[0][0].set_ylabel("dimension 2 (a.u.)")
        fig.colorbar(points, ax=list(axes[0]), label=score_label, fraction=0.03, pad=0.02)
        fig.suptitle(f"Sets among {len(real)} real images (feature map of the real data; seed {seed})")
    return fig


__all__ = ["embedding_table", "plot_embedding", "stratified_sample", "embedding_sets_table", "embedding_numbers",
           "plot_embedding_sets"]
