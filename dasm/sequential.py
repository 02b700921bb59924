"""DASM: Difficulty-Aligned Sequential Matching.

The synthetic set is distilled in K segments. For segment k:

1. a probe network M_{k-1} is trained on the segments already distilled (S_1 .. S_{k-1}) with
   the evaluation recipe (for k = 1 there is none: the first segment is matched against all real data);
2. every real training sample is scored by M_{k-1} (``score``: loss, EL2N, margin, GraNd,
   forgetting, or learnability against a reference network trained on all real data);
3. per class, a pool R_k of real samples is selected whose difficulty fits segment k
   (``policy``): a quantile window of width ``window`` that slides from the easiest samples
   (k = 1) to the hardest (k = K); a growing window that keeps everything up to that window's
   upper edge (the union S_1 .. S_k is matched against the real data it should now cover, easy
   included); a threshold that drops the easiest samples, more as k grows; or difficulty-weighted
   sampling centred where the window would be;
4. S_k is distilled against R_k only (real class batches and the IDC network updates both
   draw from it) while S_1 .. S_{k-1} stay frozen on the synthetic side of every match.

Then (``joint``, by default 40% of the iteration budget; 0 leaves it out) a last pass distills
all segments together against all real data: the base distiller's own objective, started from
the difficulty-aligned segments.

Ablations through the same code: ``segments=1`` is the plain base distiller (identical under
the same seed); ``policy="none"`` is sequential distillation without difficulty (every
R_k = R); :func:`~dasm.pruning.static_prune` drops the easiest samples by a reference network's score and
distills once. Every segment logs what it chose (``segments.csv`` and the set's metadata).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from .coreset import embed_dataset, feature_network
from .data import Dataset
from .difficulty import (LOGIT_SCORES, SCORES, ForgettingTracker, reference_network,
                         score_samples, scores_from_logits)
from .distill import PARTIAL, DistillConfig, distill_segment, resumed_seconds, save_run, save_starts
from .evaluate import make_augment
from .nets import get_network
from .pools import (POLICIES, pool_bounds, pool_dataset, pool_log, select_pools, starts_by_difficulty,  # noqa: F401
                    window_bounds)
from .pruning import static_prune  # noqa: F401 (re-exported: the static-pruning ablation)
from .synthetic import SyntheticSet, images_at, initial_images, initial_indices, new_synthetic_set
from .train import Recipe, accuracy, predict, train_model

INIT_FROM = ("pool", "all")
MATCH_NETS = ("fresh", "probe")
MODES = ("own", "complement", "joint")


@dataclass(frozen=True)
class DasmConfig:
    """DASM's choices on top of a base :class:`DistillConfig` (whose ``ipc`` is the TOTAL per class).

    Defaults: 5 segments of equal size, loss under the probe, a sliding window holding half of
    each class, probes trained for 300 epochs, and the base distiller's iteration budget split
    into 60% for the segments (evenly) and 40% for a joint pass over all of them, so DASM does
    as many matching steps as the plain distiller. Measured on Fashion-MNIST at IPC 50 (cpu
    preset, seed 0; README): starting each segment from the whole class with the scaled lr
    (84.7%) beat starting it from its pool at one lr (83.8%), the sliding window beat the
    growing one (84.1%), and the joint pass raised 84.7% to 85.1%.
    ``probe_width`` sizes the probes and, for ``learnability``, the full-data reference network
    (trained for ``reference_epochs``), so both losses come from the same architecture.
    ``init_from``: a segment starts from real images of the whole class (``"all"``, so difficulty
    steers the matching only) or of its own pool (``"pool"``). ``scale_lr``: see :meth:`segment_lr`.
    ``joint``: the fraction of the iteration budget kept for a final pass over all segments
    together, against all real data, at the base ``lr_img`` (0: none; the segments share the rest).
    ``match_net``: what each outer iteration's matching network starts from while segment k is
    distilled: a fresh random network as in the base distiller (``"fresh"``), or the probe M_{k-1}
    (``"probe"``; the first segment, with no probe, starts fresh). A network trained on S_1 .. S_{k-1}
    gives those images almost no gradient, so its gradient on real data is that of the samples the
    earlier segments do not yet teach, and S_k is matched to exactly that. It needs the probe to be
    the matching network's architecture (``probe_width`` = the base's ``width``).
    ``modes`` (a base with ``init="modes"``): each segment starts from the real images nearest the
    k-means centres of its starting pool, never from one an earlier segment started from; with
    ``"own"`` that k-means sees the pool alone, so overlapping pools put a segment's starts next to
    an earlier segment's; with ``"complement"`` the earlier segments' starts are fixed centres of
    the same k-means, so the new starts cover what they leave uncovered; with ``"joint"`` the
    set starts where the plain base distiller does (one k-means with IPC centres a class, its seed) and
    DASM only deals those starts to the segments: segment k takes, per class, the unused starts whose
    difficulty under M_{k-1} ranks nearest the centre of its window (random ones without a probe), so the
    starts are the base's and the difficulty alignment is in what each segment is matched against.
    ``init_from`` then plays no part.
    """

    base: DistillConfig
    segments: int = 5
    sizes: tuple[int, ...] | None = None
    score: str = "loss"
    policy: str = "window"
    window: float = 0.5
    probe_epochs: int = 300
    probe_width: int = 128
    reference_epochs: int = 20
    iterations_per_segment: int | None = None
    scale_lr: bool | None = None
    init_from: str = "all"
    joint: float = 0.4
    match_net: str = "fresh"
    modes: str = "own"

    def __post_init__(self) -> None:
        if isinstance(self.segments, bool) or not isinstance(self.segments, int) or self.segments < 1:
            raise ValueError(f"segments must be a positive integer, got {self.segments!r}.")
        if self.score not in SCORES:
            raise ValueError(f"Unknown score {self.score!r}; choose one of {', '.join(SCORES)}.")
        if self.policy not in POLICIES:
            raise ValueError(f"Unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}.")
        if self.init_from not in INIT_FROM:
            raise ValueError(f"init_from must be one of {', '.join(INIT_FROM)}, got {self.init_from!r}.")
        if self.modes not in MODES:
            raise ValueError(f"modes must be one of {', '.join(MODES)}, got {self.modes!r}.")
        if self.match_net not in MATCH_NETS:
            raise ValueError(f"match_net must be one of {', '.join(MATCH_NETS)}, got {self.match_net!r}.")
        if self.match_net == "probe" and (self.base.arch != "convnet" or self.probe_width != self.base.width):
            raise ValueError(f"match_net='probe' starts the matching networks from the probe, so the probe must be "
                             f"the matching network: a ConvNet of width {self.base.width} (base arch "
                             f"{self.base.arch!r}, probe_width {self.probe_width}); set probe_width={self.base.width} "
                             "or match_net='fresh'.")
        if not 0.0 < self.window <= 1.0:
            raise ValueError(f"window must be a fraction in (0, 1], got {self.window!r}.")
        if not 0.0 <= self.joint < 1.0:
            raise ValueError(f"joint must be a fraction of the iterations in [0, 1), got {self.joint!r}.")
        sizes = self.segment_sizes()
        if len(sizes) != self.segments or sum(sizes) != self.base.ipc or min(sizes) < 1:
            raise ValueError(f"segment sizes {sizes} must be {self.segments} positive numbers adding up to "
                             f"IPC {self.base.ipc}.")

    def segment_sizes(self) -> tuple[int, ...]:
        """Images per class of each segment (default: as equal as possible, larger ones first)."""
        if self.sizes is not None:
            return tuple(self.sizes)
        q, r = divmod(self.base.ipc, self.segments)
        return tuple(q + (1 if k < r else 0) for k in range(self.segments))

    def segment_iterations(self) -> int:
        """Outer iterations of each segment: what the joint pass leaves, shared evenly (at least 1)."""
        if self.iterations_per_segment is not None:
            return self.iterations_per_segment
        return max(1, (self.base.iterations - self.joint_iterations()) // self.segments)

    def joint_iterations(self) -> int:
        """Outer iterations of the final joint pass (0 without one, and for a single segment).

        The segments come first: with a budget too small for both, the joint pass shrinks so that
        every segment still gets an iteration and the total stays the base distiller's (a budget
        below one iteration per segment gives each segment 1 and no joint pass).
        """
        if self.segments == 1:
            return 0
        return max(0, min(int(round(self.base.iterations * self.joint)), self.base.iterations - self.segments))

    def segment_lr(self, k: int) -> float:
        """Image learning rate of segment ``k`` (0-based).

        IDC's presets scale ``lr_img`` with IPC, because an image's share of its class's synthetic
        gradient is 1/IPC. Segment k is matched with the n_1 + .. + n_k images distilled so far, so
        with ``scale_lr`` it runs at the rate a plain distiller of that many images would get:
        ``lr_img x (n_1 + .. + n_k) / IPC``. Every image then takes steps of the plain distiller's
        size (it takes fewer of them: the segments share the iteration budget). ``scale_lr=None``
        (the default) scales for an IDC base only; DC, DSA and DM use one lr_img at every IPC.
        """
        scale = self.scale_lr if self.scale_lr is not None else self.base.method == "idc"
        if not scale:
            return self.base.lr_img
        return self.base.lr_img * sum(self.segment_sizes()[:k + 1]) / self.base.ipc


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------

def train_probe(data: Dataset, syn: SyntheticSet, recipe: Recipe, arch: str = "convnet", seed: int = 0,
                progress: bool = False, **net_kwargs: object) -> torch.nn.Module:
    """M_{k-1}: a fresh network trained on the decoded segments of ``syn`` with the evaluation recipe."""
    torch.manual_seed(seed)
    net = get_network(arch, data.channels, data.num_classes, data.im_size, **net_kwargs).to(data.device)
    x, y = syn.decoded()
    train_model(net, x.to(data.device), y.to(data.device), recipe, normalize=data.normalize,
                augment=make_augment(data, recipe), generator=torch.Generator().manual_seed(seed),
                progress=progress, desc="probe")
    return net.eval()


def dasm_distill(data: Dataset, cfg: DasmConfig, *, out: str | os.PathLike | None = None, progress: bool = True,
                 callback: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 on_segment: Callable[[dict, SyntheticSet], None] | None = None,
                 features: Tensor | None = None, stamp: dict | None = None
                 ) -> tuple[SyntheticSet, pd.DataFrame, pd.DataFrame]:
    """Distill ``cfg.base.ipc`` images per class in ``cfg.segments`` difficulty-aligned segments.

    Returns the set, the matching-loss history of all segments and the per-segment log. With
    ``out``, every finished segment is saved (``segment<k>/``) and a rerun resumes after the
    last one. ``on_segment(log, syn)`` runs when a segment finishes (widgets use it).
    ``features``: an embedding of ``data.x_train`` for the base's ``init="modes"`` (default: that of
    a reference network sized by ``probe_width`` and ``reference_epochs``); each segment then starts
    from the k-means modes of its own starting pool, never from a real image an earlier segment
    started from. ``stamp``: what ``out/config.json`` records once the set is finished (default: ``cfg``).
    """
    base = cfg.base
    out = Path(out) if out is not None else None
    if out is not None:   # segments saved by a run with other settings must not be resumed into this one
        settings, marker = config_dict(cfg), out / "dasm.json"
        if marker.exists() and json.loads(marker.read_text()) != settings:
            raise ValueError(f"{out} holds DASM segments distilled with other settings ({marker}); "
                             "choose another --out or delete the folder.")
        out.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(settings, indent=2))
    sizes = cfg.segment_sizes()
    seg_cfg_iters = cfg.segment_iterations()
    reference = None
    if base.init == "modes" and features is None:
        features = embed_dataset(feature_network(data, epochs=cfg.reference_epochs, seed=base.seed,
                                                 progress=progress, width=cfg.probe_width),
                                 data.x_train, data.normalize)
    used = torch.zeros(len(data.y_train), dtype=torch.bool, device=data.device)  # real images segments began as
    planned = None   # modes="joint": the base distiller's own starts, dealt to the segments by difficulty
    if base.init == "modes" and cfg.modes == "joint":
        planned = initial_indices(data, base.ipc, base.factor, "modes", base.seed, features).view(data.num_classes, -1)
    syn: SyntheticSet | None = None
    histories, logs, starts = [], [], []   # starts: each segment's images before it was matched
    stopped = False
    for k, n_k in enumerate(sizes):
        seg_dir = out / f"segment{k}" if out is not None else None
        done = _load_stage(seg_dir, data.device)
        if done is not None:
            syn, hist, log = done
            histories.append(hist)
            logs.append(log)
            selection = torch.load(seg_dir / "selection.pt", weights_only=False)
            starts.append(selection.get("start_images"))
            begun = selection.get("starts")
            if begun is not None:
                used[begun.to(data.device)] = True
            continue
        t0 = time.perf_counter()
        log: dict = {"segment": k, "stage": "segment", "ipc": n_k}
        # 1-2. probe and scores
        scores = None
        if k == 0 or (cfg.policy == "none" and cfg.match_net == "fresh"):
            probe = None   # nothing distilled yet to probe with, or nothing to use a probe for
        else:
            probe = train_probe(data, syn, Recipe(epochs=cfg.probe_epochs), seed=base.seed + k,
                                progress=progress, width=cfg.probe_width)
        t_probe = time.perf_counter() - t0
        if probe is not None:
            logits = predict(probe, data.x_train, data.normalize)   # one pass: the probe's accuracy (and scores)
            log["probe_real_acc"] = 100.0 * (logits.argmax(1) == data.y_train).float().mean().item()
            if data.x_val is not None:
                log["probe_val_acc"] = accuracy(probe, data.x_val, data.y_val, data.normalize)
            if cfg.score in LOGIT_SCORES:
                scores = scores_from_logits(cfg.score, logits, data.y_train)
            elif cfg.score == "forgetting":
                scores = _real_forgetting(data, syn, cfg, base.seed + k)
            else:
                if cfg.score == "learnability" and reference is None:
                    reference = reference_network(data, epochs=cfg.reference_epochs, seed=base.seed,
                                                  progress=progress, width=cfg.probe_width)
                scores = score_samples(cfg.score, probe, data.x_train, data.y_train, data.normalize,
                                       reference=reference)
        # 3. pools
        g = torch.Generator().manual_seed(base.seed * 7919 + k)
        if scores is None:
            pools = list(data.class_index)
        else:
            pools = select_pools(scores, data.class_index, k, cfg.segments, cfg.policy, cfg.window, g,
                                 min_per_class=max(n_k * base.factor ** 2, 1))
        log.update(pool_log(scores, pools, k, cfg.policy, cfg.segments, cfg.window))
        log["probe_train_seconds"] = t_probe
        log["probe_seconds"] = time.perf_counter() - t0   # training the probe, scoring, selecting the pools
        # 4. distill S_k against R_k
        seg_cfg = replace(base, ipc=n_k, iterations=seg_cfg_iters, seed=base.seed + k, lr_img=cfg.segment_lr(k))
        init_data = pool_dataset(data, pools if cfg.init_from == "pool" else data.class_index)
        begun = None   # the real images this segment starts from (init="modes")
        if planned is not None:
            lo, hi = pool_bounds(cfg.policy, k, cfg.segments, cfg.window)
            picks, log["start_quantile"] = starts_by_difficulty([p[~used[p]] for p in planned], scores,
                                                                data.class_index, (lo + hi) / 2,
                                                                n_k * base.factor ** 2, g)
            begun = torch.cat(picks)
        elif base.init == "modes":   # modes repeat from segment to segment: start each from unused images
            need = n_k * base.factor ** 2
            init_data = pool_dataset(data, [ix[~used[ix]] if int((~used[ix]).sum()) >= need else ix
                                             for ix in init_data.class_index])
            covered = used.nonzero().flatten() if cfg.modes == "complement" else None
            begun = initial_indices(init_data, n_k, base.factor, base.init, seg_cfg.seed, features, covered)
        if begun is not None:
            used[begun] = True
            start = images_at(data, begun, n_k, base.factor)
        else:
            start = initial_images(init_data, n_k, base.factor, base.init, seg_cfg.seed, features)
        if k == 0:
            syn = new_synthetic_set(init_data, n_k, base.factor, base.init, seg_cfg.seed, start=start,
                                    method="dasm", config=asdict(base))
        else:
            syn = syn.add_segment(*start)
        starts.append(syn.images[syn.segment(k)].detach().cpu().clone())
        t1 = time.perf_counter()
        net_starts = [{n: v.detach().clone() for n, v in probe.state_dict().items()}] \
            if cfg.match_net == "probe" and probe is not None else None
        syn, hist = distill_segment(data, syn, seg_cfg, train_segment=k, pools=pools, out=seg_dir,
                                    progress=progress, desc=f"dasm segment {k + 1}/{cfg.segments}",
                                    callback=callback, should_stop=should_stop, net_starts=net_starts)
        earlier = resumed_seconds(hist)   # iterations an interrupted earlier call ran
        log.update(lr_img=seg_cfg.lr_img, distill_seconds=time.perf_counter() - t1 + earlier,
                   final_loss=float(hist.loss.iloc[-1]), seconds=time.perf_counter() - t0 + earlier)
        histories.append(hist)
        logs.append(log)
        syn.meta.update(method=_method_name(cfg), base_method=base.method, dasm=config_dict(cfg), segment_logs=logs,
                        ipc=sum(sizes[:k + 1]))
        stopped = should_stop is not None and should_stop()
        if seg_dir is not None and not stopped:
            _save_stage(seg_dir, syn, hist, seg_cfg, log,
                        selection={"pools": [p.cpu() for p in pools], "starts": None if begun is None else begun.cpu(),
                                   "scores": None if scores is None else scores.cpu(), "start_images": starts[-1]})
        if on_segment is not None:
            on_segment(log, syn)
        if stopped:
            break
    finished = len(logs) == cfg.segments and not stopped
    if finished and cfg.joint_iterations() > 0:
        syn, hist, log, stopped = _joint_pass(data, syn, cfg, out=out, progress=progress, callback=callback,
                                              should_stop=should_stop)
        histories.append(hist)
        logs.append(log)
        syn.meta.update(segment_logs=logs)
        finished = not stopped
        if on_segment is not None:
            on_segment(log, syn)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    seg_table = pd.DataFrame(logs)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        history.to_csv(out / "history.csv", index=False)
        seg_table.to_csv(out / "segments.csv", index=False)
        if not finished:   # the next run resumes from the segment checkpoints
            syn.save(out / PARTIAL)
        else:
            if all(s is not None for s in starts):   # segments saved before start images were kept have none
                save_starts(out, replace(syn, images=torch.cat(starts).to(syn.device), meta=dict(syn.meta)))
            syn.save(out / "synthetic.pt")
            (out / "config.json").write_text(json.dumps(stamp or config_dict(cfg), indent=2))
            for stale in (out / PARTIAL, (out / PARTIAL).with_suffix(".png")):
                stale.unlink(missing_ok=True)
    return syn, history, seg_table


def _joint_pass(data: Dataset, syn: SyntheticSet, cfg: DasmConfig, *, out: Path | None, progress: bool,
                callback: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None
                ) -> tuple[SyntheticSet, pd.DataFrame, dict, bool]:
    """Distill every segment of ``syn`` together against all real data for ``cfg.joint_iterations()``.

    Logged as segment ``K`` (stage ``joint``); saved in ``out/joint`` and resumed like a segment.
    Returns the set (its segment boundaries kept), the history, the log and whether it was stopped.
    """
    k = cfg.segments
    jdir = out / "joint" if out is not None else None
    done = _load_stage(jdir, data.device)
    if done is not None:
        return (*done, False)
    t0 = time.perf_counter()
    jcfg = replace(cfg.base, iterations=cfg.joint_iterations(), seed=cfg.base.seed + k)
    whole = replace(syn, segments=[(0, len(syn.labels))])

    def relabel(log: dict) -> None:   # progress views see the joint pass as one more stage
        callback({**log, "segment": k, "stage": "joint"})

    whole, hist = distill_segment(data, whole, jcfg, out=jdir, progress=progress, desc="dasm joint pass",
                                  callback=relabel if callback is not None else None, should_stop=should_stop)
    hist["segment"] = k
    joined = replace(whole, segments=list(syn.segments), meta=dict(syn.meta))
    seconds = time.perf_counter() - t0 + resumed_seconds(hist)
    log = {"segment": k, "stage": "joint", "ipc": cfg.base.ipc, "pool_size": len(data.y_train),
           "quantile_lo": 0.0, "quantile_hi": 1.0, "lr_img": jcfg.lr_img, "probe_seconds": 0.0,
           "distill_seconds": seconds, "final_loss": float(hist.loss.iloc[-1]), "seconds": seconds}
    stopped = should_stop is not None and should_stop()
    if jdir is not None and not stopped:
        _save_stage(jdir, joined, hist, jcfg, log)
    return joined, hist, log, stopped


def _load_stage(stage_dir: Path | None, device: torch.device) -> tuple[SyntheticSet, pd.DataFrame, dict] | None:
    """The set, history and log of a finished stage (a segment or the joint pass), or None if not finished."""
    if stage_dir is None or not (stage_dir / "done.json").exists():
        return None
    return (SyntheticSet.load(stage_dir / "synthetic.pt", device=device), pd.read_csv(stage_dir / "history.csv"),
            json.loads((stage_dir / "done.json").read_text()))


def _save_stage(stage_dir: Path, syn: SyntheticSet, hist: pd.DataFrame, cfg: DistillConfig, log: dict,
                selection: dict | None = None) -> None:
    """Save a finished stage; ``done.json`` is written last, so only complete stages are resumed from."""
    save_run(stage_dir, syn, hist, asdict(cfg))
    if selection is not None:
        torch.save(selection, stage_dir / "selection.pt")
    (stage_dir / "done.json").write_text(json.dumps(log, indent=2))


def _real_forgetting(data: Dataset, syn: SyntheticSet, cfg: DasmConfig, seed: int, checkpoints: int = 10) -> Tensor:
    """Forgetting of the REAL samples while a probe trains on ``syn``: correctness checked ``checkpoints`` times."""
    tracker = ForgettingTracker(len(data.y_train), device=data.device)
    recipe = Recipe(epochs=cfg.probe_epochs)
    every = max(1, recipe.epochs // checkpoints)
    torch.manual_seed(seed)
    net = get_network("convnet", data.channels, data.num_classes, data.im_size, width=cfg.probe_width).to(data.device)
    all_ix = torch.arange(len(data.y_train), device=data.device)

    def check(log: dict) -> None:
        if (log["epoch"] + 1) % every == 0:
            pred = predict(net, data.x_train, data.normalize).argmax(1)
            tracker.update(all_ix, pred == data.y_train)

    x, y = syn.decoded()
    train_model(net, x, y, recipe, normalize=data.normalize, augment=make_augment(data, recipe),
                generator=torch.Generator().manual_seed(seed), progress=False, callback=check)
    return tracker.scores()


def _method_name(cfg: DasmConfig) -> str:
    if cfg.policy == "none" and cfg.segments > 1:
        return "dasm-nodifficulty"
    return "dasm"


def config_dict(cfg: DasmConfig) -> dict:
    """``cfg`` as plain JSON values (what ``config.json`` stores and resumed runs are compared with)."""
    d = asdict(cfg)
    return json.loads(json.dumps(d, default=str))
