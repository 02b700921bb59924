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

In the code, :func:`dasm_distill` runs each segment as ``_select`` (steps 1-3), ``_start_segment`` (where
S_k starts: :func:`segment_starts`) and ``_segment`` (step 4, saved in ``segment<k>/``), then
``_joint_pass`` and ``_finish``; the run folder (resume, the files of a finished or stopped run) is
:mod:`dasm.sequential_io`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from .coreset import embed_dataset, feature_network
from .data import Dataset
from .difficulty import LOGIT_SCORES, SCORES, probe_forgetting, reference_network, score_samples, scores_from_logits
from .distill import DistillConfig, distill_segment, resumed_seconds
from .evaluate import make_augment
from .nets import get_network
from .pools import (POLICIES, pool_bounds, pool_dataset, pool_log, select_pools, starts_by_difficulty,  # noqa: F401
                    window_bounds)
from .pruning import static_prune  # noqa: F401 (re-exported: the static-pruning ablation)
from .sequential_io import claim_folder, config_dict, load_stage, save_stage, write_run
from .synthetic import SyntheticSet, images_at, initial_images, initial_indices, new_synthetic_set
from .train import Recipe, accuracy, predict, train_model

INIT_FROM = ("pool", "all")
MATCH_NETS = ("fresh", "probe")
DEFAULT_SEGMENTS = 5
MODES = ("own", "complement", "joint")


@dataclass(frozen=True)
class DasmConfig:
    """DASM's choices on top of a base :class:`DistillConfig` (whose ``ipc`` is the TOTAL per class).

    ``segments``, ``sizes``: how many segments, and each one's images per class (default: as equal as
    possible, larger ones first).
    ``score``: a real sample's difficulty under the probe, one of :data:`~dasm.difficulty.SCORES`.
    ``policy``, ``window``: how each segment's pool follows those scores (:mod:`dasm.pools`); ``window`` is
    the fraction of each class a window holds.
    ``probe_epochs``, ``probe_width``: each probe's training length and ConvNet width; ``probe_width`` and
    ``reference_epochs`` also size the full-data reference network (``learnability``, and the embedding
    ``init="modes"`` uses by default), so both losses come from the same architecture.
    ``iterations_per_segment``: outer iterations of every segment (default: :meth:`segment_iterations`).
    ``scale_lr``: see :meth:`segment_lr`.
    ``init_from``: a segment starts from real images of its whole class (``"all"``: difficulty steers
    the matching only) or of its own pool (``"pool"``).
    ``joint``: the fraction of the iteration budget kept for a final pass over all segments together,
    against all real data, at the base ``lr_img`` (0: none; the segments share the rest).
    ``match_net``: what each outer iteration's matching network starts from while segment k is
    distilled: a fresh random network as in the base distiller (``"fresh"``), or the probe M_{k-1}
    (``"probe"``; the first segment, with no probe, starts fresh). A network trained on S_1 .. S_{k-1}
    gives those images almost no gradient, so S_k is matched to the gradient of the real samples the
    earlier segments do not yet teach. The probe must then be the matching network's architecture
    (``probe_width`` = the base's ``width``).
    ``modes`` (a base with ``init="modes"``; :func:`segment_starts`): ``"own"``: each segment starts from
    the real images nearest the k-means centres of its starting pool, leaving out those an earlier segment
    started from; ``"complement"``: the same, with the earlier segments' starts as fixed centres of that
    k-means, so the new starts cover what they leave uncovered; ``"joint"``: the set starts where the
    plain base distiller does (one k-means with IPC centres a class) and segment k takes, per class, the
    unused starts whose difficulty under M_{k-1} ranks nearest the centre of its window (random ones
    without a probe). ``init_from`` then plays no part.
    """

    base: DistillConfig
    segments: int = DEFAULT_SEGMENTS
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
# Where each segment starts
# ---------------------------------------------------------------------------------------

def start_plan(data: Dataset, cfg: DasmConfig, features: Tensor | None) -> Tensor | None:
    """With ``modes="joint"`` on a base with ``init="modes"``: the plain base distiller's starts, one row of
    ``ipc * factor^2`` real indices per class, which :func:`segment_starts` deals to the segments; else None."""
    base = cfg.base
    if base.init != "modes" or cfg.modes != "joint":
        return None
    return initial_indices(data, base.ipc, base.factor, "modes", base.seed, features).view(data.num_classes, -1)


def segment_starts(data: Dataset, cfg: DasmConfig, k: int, used: Tensor, *, features: Tensor | None = None,
                   pools: list[Tensor] | None = None, scores: Tensor | None = None, plan: Tensor | None = None,
                   generator: torch.Generator | None = None) -> tuple[Tensor | None, float | None]:
    """The real images segment ``k`` starts from (indices grouped by class) and, with ``modes="joint"`` and
    scores, their mean quantile: exactly what :func:`dasm_distill` picks (None, None unless ``init="modes"``).

    ``used`` marks the real images earlier segments started from (the caller marks each segment's); ``features``
    embed ``data.x_train``; ``pools`` are the segment's difficulty pools (``init_from="pool"``; default:
    every class whole); ``scores`` the probe's (None before the first probe); ``plan``
    :func:`start_plan`'s (computed when not given); ``generator`` deals the plan when there are no scores.
    """
    base = cfg.base
    if base.init != "modes":
        return None, None
    n_k = cfg.segment_sizes()[k]
    need = n_k * base.factor ** 2
    if cfg.modes == "joint":
        plan = plan if plan is not None else start_plan(data, cfg, features)
        lo, hi = pool_bounds(cfg.policy, k, cfg.segments, cfg.window)
        picks, quantile = starts_by_difficulty([p[~used[p]] for p in plan], scores, data.class_index, (lo + hi) / 2,
                                               need, generator)
        return torch.cat(picks), quantile
    source = pools if pools is not None and cfg.init_from == "pool" else data.class_index
    unused = pool_dataset(data, [ix[~used[ix]] if int((~used[ix]).sum()) >= need else ix for ix in source])
    covered = used.nonzero().flatten() if cfg.modes == "complement" else None
    return initial_indices(unused, n_k, base.factor, "modes", base.seed + k, features, covered), None


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


@dataclass
class _Hooks:
    """How a caller watches and steers a run: progress bars, per-iteration and per-segment callbacks, stopping."""

    progress: bool = True
    callback: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] | None = None
    on_segment: Callable[[dict, SyntheticSet], None] | None = None

    def stopped(self) -> bool:
        """Whether the caller asks the run to stop now."""
        return self.should_stop is not None and self.should_stop()


@dataclass
class _Progress:
    """What the finished segments hand to the next: the set, the histories and logs, each segment's start
    images, the real images segments started from (``used``), the start plan and the scorer's reference net."""

    used: Tensor
    features: Tensor | None
    plan: Tensor | None
    syn: SyntheticSet | None = None
    histories: list[pd.DataFrame] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    starts: list[Tensor | None] = field(default_factory=list)
    reference: torch.nn.Module | None = None


@dataclass
class _Selection:
    """Segment k's probe M_{k-1} (None without one), its scores of the real data, the pools R_k, the segment's
    random generator and its log so far."""

    probe: torch.nn.Module | None
    scores: Tensor | None
    pools: list[Tensor]
    generator: torch.Generator
    log: dict


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
    where :func:`segment_starts` says, never from a real image an earlier segment started from.
    ``stamp``: what ``out/config.json`` records once the set is finished (default: ``cfg``).
    """
    base, hooks = cfg.base, _Hooks(progress, callback, should_stop, on_segment)
    out = Path(out) if out is not None else None
    claim_folder(out, config_dict(cfg))
    if base.init == "modes" and features is None:
        features = embed_dataset(feature_network(data, epochs=cfg.reference_epochs, seed=base.seed,
                                                 progress=progress, width=cfg.probe_width),
                                 data.x_train, data.normalize)
    state = _Progress(used=torch.zeros(len(data.y_train), dtype=torch.bool, device=data.device),
                      features=features, plan=start_plan(data, cfg, features))
    stopped = False
    for k in range(cfg.segments):
        seg_dir = out / f"segment{k}" if out is not None else None
        if not _resume_segment(seg_dir, state, data.device):
            stopped = _segment(data, cfg, k, state, seg_dir, hooks)
            if stopped:
                break
    finished = len(state.logs) == cfg.segments and not stopped
    if finished and cfg.joint_iterations() > 0:
        state.syn, hist, log, stopped = _joint_pass(data, state.syn, cfg, out=out, progress=progress,
                                                    callback=callback, should_stop=should_stop)
        state.histories.append(hist)
        state.logs.append(log)
        state.syn.meta.update(segment_logs=state.logs)
        finished = not stopped
        if on_segment is not None:
            on_segment(log, state.syn)
    return _finish(out, cfg, state, finished, stamp)


def _resume_segment(seg_dir: Path | None, state: _Progress, device: torch.device) -> bool:
    """Load a segment finished by an earlier run into ``state``; False if there is none to load."""
    done = load_stage(seg_dir, device)
    if done is None:
        return False
    state.syn, hist, log = done
    state.histories.append(hist)
    state.logs.append(log)
    selection = torch.load(seg_dir / "selection.pt", weights_only=False)
    state.starts.append(selection.get("start_images"))
    begun = selection.get("starts")
    if begun is not None:
        state.used[begun.to(device)] = True
    return True


def _segment(data: Dataset, cfg: DasmConfig, k: int, state: _Progress, seg_dir: Path | None,
             hooks: _Hooks) -> bool:
    """Select, start, distill and save segment ``k`` (steps 1-4 of the module's recipe); True if it was stopped."""
    t0 = time.perf_counter()
    sel = _select(data, cfg, k, state, hooks.progress)
    begun = _start_segment(data, cfg, k, state, sel)
    seg_cfg = replace(cfg.base, ipc=cfg.segment_sizes()[k], iterations=cfg.segment_iterations(),
                      seed=cfg.base.seed + k, lr_img=cfg.segment_lr(k))
    t1 = time.perf_counter()
    net_starts = [{n: v.detach().clone() for n, v in sel.probe.state_dict().items()}] \
        if cfg.match_net == "probe" and sel.probe is not None else None
    syn, hist = distill_segment(data, state.syn, seg_cfg, train_segment=k, pools=sel.pools, out=seg_dir,
                                progress=hooks.progress, desc=f"dasm segment {k + 1}/{cfg.segments}",
                                callback=hooks.callback, should_stop=hooks.should_stop, net_starts=net_starts)
    earlier = resumed_seconds(hist)   # iterations an interrupted earlier call ran
    log = sel.log
    log.update(lr_img=seg_cfg.lr_img, distill_seconds=time.perf_counter() - t1 + earlier,
               final_loss=float(hist.loss.iloc[-1]), seconds=time.perf_counter() - t0 + earlier)
    state.syn = syn
    state.histories.append(hist)
    state.logs.append(log)
    syn.meta.update(method=_method_name(cfg), base_method=cfg.base.method, dasm=config_dict(cfg),
                    segment_logs=state.logs, ipc=sum(cfg.segment_sizes()[:k + 1]))
    stopped = hooks.stopped()
    if seg_dir is not None and not stopped:
        save_stage(seg_dir, syn, hist, seg_cfg, log,
                    selection={"pools": [p.cpu() for p in sel.pools], "starts": None if begun is None else begun.cpu(),
                               "scores": None if sel.scores is None else sel.scores.cpu(),
                               "start_images": state.starts[-1]})
    if hooks.on_segment is not None:
        hooks.on_segment(log, syn)
    return stopped


def _select(data: Dataset, cfg: DasmConfig, k: int, state: _Progress, progress: bool) -> _Selection:
    """Steps 1-3 for segment ``k``: the probe M_{k-1} trained on the segments so far, its scores of every real
    training sample, and the pools R_k those scores select (every class whole without scores)."""
    t0 = time.perf_counter()
    log: dict = {"segment": k, "stage": "segment", "ipc": cfg.segment_sizes()[k]}
    if k == 0 or (cfg.policy == "none" and cfg.match_net == "fresh"):
        probe = None   # nothing distilled yet to probe with, or nothing to use a probe for
    else:
        probe = train_probe(data, state.syn, Recipe(epochs=cfg.probe_epochs), seed=cfg.base.seed + k,
                            progress=progress, width=cfg.probe_width)
    t_probe = time.perf_counter() - t0
    scores = _score_real(data, cfg, k, probe, state, log, progress) if probe is not None else None
    g = torch.Generator().manual_seed(cfg.base.seed * 7919 + k)
    if scores is None:
        pools = list(data.class_index)
    else:
        pools = select_pools(scores, data.class_index, k, cfg.segments, cfg.policy, cfg.window, g,
                             min_per_class=max(cfg.segment_sizes()[k] * cfg.base.factor ** 2, 1))
    log.update(pool_log(scores, pools, k, cfg.policy, cfg.segments, cfg.window))
    log["probe_train_seconds"] = t_probe
    log["probe_seconds"] = time.perf_counter() - t0   # training the probe, scoring, selecting the pools
    return _Selection(probe, scores, pools, g, log)


def _score_real(data: Dataset, cfg: DasmConfig, k: int, probe: torch.nn.Module, state: _Progress, log: dict,
                progress: bool) -> Tensor:
    """``cfg.score`` of every real training sample under ``probe`` (higher = harder); logs the probe's accuracy."""
    logits = predict(probe, data.x_train, data.normalize)   # one pass: the probe's accuracy (and scores)
    log["probe_real_acc"] = 100.0 * (logits.argmax(1) == data.y_train).float().mean().item()
    if data.x_val is not None:
        log["probe_val_acc"] = accuracy(probe, data.x_val, data.y_val, data.normalize)
    if cfg.score in LOGIT_SCORES:
        return scores_from_logits(cfg.score, logits, data.y_train)
    if cfg.score == "forgetting":
        return probe_forgetting(data, *state.syn.decoded(), Recipe(epochs=cfg.probe_epochs), cfg.base.seed + k,
                                width=cfg.probe_width)
    if cfg.score == "learnability" and state.reference is None:
        state.reference = reference_network(data, epochs=cfg.reference_epochs, seed=cfg.base.seed,
                                            progress=progress, width=cfg.probe_width)
    return score_samples(cfg.score, probe, data.x_train, data.y_train, data.normalize, reference=state.reference)


def _start_segment(data: Dataset, cfg: DasmConfig, k: int, state: _Progress, sel: _Selection) -> Tensor | None:
    """Add segment ``k``'s starting images to the set (from :func:`segment_starts`, or drawn by the base's
    ``init`` from its pool or its whole class); returns the real indices it started from (``init="modes"``)."""
    base, n_k = cfg.base, cfg.segment_sizes()[k]
    begun, quantile = segment_starts(data, cfg, k, state.used, features=state.features, pools=sel.pools,
                                     scores=sel.scores, plan=state.plan, generator=sel.generator)
    if state.plan is not None:
        sel.log["start_quantile"] = quantile
    if begun is not None:
        state.used[begun] = True
        start = images_at(data, begun, n_k, base.factor)
    else:
        init_data = pool_dataset(data, sel.pools if cfg.init_from == "pool" else data.class_index)
        start = initial_images(init_data, n_k, base.factor, base.init, base.seed + k, state.features)
    if k == 0:
        state.syn = new_synthetic_set(data, n_k, base.factor, base.init, base.seed, start=start, method="dasm",
                                      config=asdict(base))
    else:
        state.syn = state.syn.add_segment(*start)
    state.starts.append(state.syn.images[state.syn.segment(k)].detach().cpu().clone())
    return begun


def _finish(out: Path | None, cfg: DasmConfig, state: _Progress, finished: bool,
            stamp: dict | None) -> tuple[SyntheticSet, pd.DataFrame, pd.DataFrame]:
    """The set, its history and segment table, written to ``out`` when given (:func:`write_run`)."""
    history = pd.concat(state.histories, ignore_index=True) if state.histories else pd.DataFrame()
    seg_table = pd.DataFrame(state.logs)
    if out is not None:
        write_run(out, state.syn, history, seg_table, finished=finished, starts=state.starts,
                  stamp=stamp or config_dict(cfg))
    return state.syn, history, seg_table


def _joint_pass(data: Dataset, syn: SyntheticSet, cfg: DasmConfig, *, out: Path | None, progress: bool,
                callback: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None
                ) -> tuple[SyntheticSet, pd.DataFrame, dict, bool]:
    """Distill every segment of ``syn`` together against all real data for ``cfg.joint_iterations()``.

    Logged as segment ``K`` (stage ``joint``); saved in ``out/joint`` and resumed like a segment.
    Returns the set (its segment boundaries kept), the history, the log and whether it was stopped.
    """
    k = cfg.segments
    jdir = out / "joint" if out is not None else None
    done = load_stage(jdir, data.device)
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
        save_stage(jdir, joined, hist, jcfg, log)
    return joined, hist, log, stopped


def _method_name(cfg: DasmConfig) -> str:
    if cfg.policy == "none" and cfg.segments > 1:
        return "dasm-nodifficulty"
    return "dasm"
