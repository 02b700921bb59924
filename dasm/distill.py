"""The distillers: one engine for DC, DSA, DM and IDC, with checkpoint/resume.

One outer iteration (all methods):

1. build a fresh network (seeded by the iteration, so a resumed run builds the same one);
2. repeat ``match_steps`` times:
   a. per class, draw ``batch_real`` real images from that class's pool and take the
      class's synthetic images (decoded; at most ``batch_syn_max``);
   b. with DSA, augment each class's real and synthetic batch with ONE shared draw;
   c. the objective over all classes at once: gradient matching (DC/DSA/IDC) or mean
      embedding matching (DM); one SGD step on the synthetic pixels;
   d. ``net_steps`` network updates, on the synthetic set (DC/DSA) or on real data (IDC), after
      every matching step but the last (after the last too with ``net_after_last``, as IDC does);
      DM never trains the network.

The pixels are optimised in the network's input space (normalised), as the reference
implementations do, so their published image learning rates carry over; the set is stored
in [0, 1] pixel space. Segments before ``train_segment`` stay frozen but take part in the
synthetic side of every match: that is how DASM distills segment after segment.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .augment import DEFAULT_STRATEGY, DSA
from .cutmix import cutmix, mixed_loss, net_augmentation
from .data import Dataset
from .files import save_atomic
from .matching import DEFAULT_PATHS, GRAD_PATHS, METRICS, distribution_match_loss, gradient_match_backward
from .methods import method_names
from .nets import get_network
from .synthetic import SyntheticSet, decode, new_synthetic_set

METHODS = method_names("distiller")   # the matching objectives this engine runs


class DistillationDivergedError(FloatingPointError):
    """The matching loss became NaN or infinite."""


@dataclass(frozen=True)
class DistillConfig:
    """Hyperparameters of one distillation; :mod:`dasm.config` has per-dataset presets.

    ``match_steps``: synthetic updates per fresh network (DC's ``outer_loop``, IDC's ``inner_loop``).
    ``net_steps``: network SGD steps after each matching step but the last (after every one, the
    last included, with ``net_after_last``); ``net_source`` says on what (``syn`` for DC/DSA,
    ``real`` for IDC). The network updates use SGD with ``lr_net``, ``net_momentum`` and
    ``net_weight_decay``; with probability ``cutmix_p`` a batch is CutMixed (:func:`cutmix`), and
    then its augmentation leaves cutout out, as IDC's does. ``dsa_strategy`` (``None``: the data
    set's default, :meth:`~dasm.augment.DSA.for_dataset`) and ``dsa_mode`` (``single``: one family a
    draw; ``multiple``: all of them) make the DSA of matching and network updates.
    ``grad_path``: how the per-class gradients are taken,
    one of :data:`~dasm.matching.GRAD_PATHS` (``None`` picks the fastest measured for the device,
    see ``benchmarks/speed.py``); all give the same result.
    """

    method: str = "idc"
    ipc: int = 10
    factor: int = 1
    init: str = "real"
    iterations: int = 200
    match_steps: int = 10
    net_steps: int = 1
    net_source: str = "real"
    net_after_last: bool = False
    lr_img: float = 0.1
    momentum_img: float = 0.5
    lr_net: float = 0.01
    net_momentum: float = 0.5
    net_weight_decay: float = 0.0
    cutmix_p: float = 0.0
    batch_real: int = 128
    batch_net: int = 256
    batch_syn_max: int = 0
    metric: str = "dc"
    layers: str | None = None
    augment: bool = True
    dsa_strategy: str | None = None
    dsa_mode: str = "single"
    arch: str = "convnet"
    width: int = 128
    depth: int | None = None
    norm: str = "instance"
    grad_path: str | None = None
    checkpoint_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Unknown distillation method {self.method!r}; choose one of {', '.join(METHODS)} "
                             "(coresets: random, herding, kcenter).")
        if self.metric not in METRICS:
            raise ValueError(f"Unknown matching metric {self.metric!r}; choose one of {', '.join(METRICS)}.")
        for name in ("ipc", "factor", "iterations", "match_steps", "batch_real", "batch_net", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        if self.grad_path is not None and self.grad_path not in GRAD_PATHS:
            raise ValueError(f"Unknown grad_path {self.grad_path!r}; choose one of {', '.join(GRAD_PATHS)}.")
        if self.net_source not in ("real", "syn"):
            raise ValueError(f"net_source must be 'real' or 'syn', got {self.net_source!r}.")
        if not self.lr_img > 0:
            raise ValueError(f"lr_img must be positive, got {self.lr_img!r}.")
        self._check_net_update()
        try:
            DSA(strategy=self.dsa_strategy or DEFAULT_STRATEGY, mode=self.dsa_mode)
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(f"dsa_strategy={self.dsa_strategy!r}, dsa_mode={self.dsa_mode!r}: {e}") from None

    def _check_net_update(self) -> None:
        if not isinstance(self.net_after_last, bool):
            raise ValueError(f"net_after_last must be True or False, got {self.net_after_last!r}.")
        if not 0 <= self.net_momentum < 1:
            raise ValueError(f"net_momentum must lie in [0, 1), got {self.net_momentum!r}.")
        if not self.net_weight_decay >= 0:
            raise ValueError(f"net_weight_decay must be >= 0, got {self.net_weight_decay!r}.")
        if not 0 <= self.cutmix_p <= 1:
            raise ValueError(f"cutmix_p (the probability of CutMix in a network update) must lie in [0, 1], "
                             f"got {self.cutmix_p!r}.")

    def augmentation(self, dataset: str) -> DSA:
        """The DSA of matching on ``dataset`` (``dsa_strategy``, default: the data set's, in ``dsa_mode``)."""
        strategy = {} if self.dsa_strategy is None else {"strategy": self.dsa_strategy}
        return DSA.for_dataset(dataset, mode=self.dsa_mode, **strategy)

    def net_kwargs(self) -> dict:
        """Keyword arguments of the matching network (ConvNet-family knobs only for ConvNets)."""
        if self.arch.startswith("convnet"):
            return {"width": self.width, "depth": self.depth, "norm": self.norm} if self.arch == "convnet" \
                else {"width": self.width, "depth": self.depth}
        return {}


def _grad_path(cfg: DistillConfig, net: nn.Module, device: torch.device) -> str:
    path = cfg.grad_path or DEFAULT_PATHS.get(device.type, "stream")
    if path == "vmap" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return "stream"  # batch statistics (and their running buffers) do not vectorise over classes
    return path


def _class_rows(labels: Tensor, num_classes: int, factor: int) -> Tensor:
    """(K, n * f^2) indices into the decoded set of each class's images."""
    rows = torch.stack([torch.nonzero(labels == c, as_tuple=True)[0] for c in range(num_classes)])
    k = factor * factor
    return (rows.unsqueeze(-1) * k + torch.arange(k, device=rows.device)).flatten(1)


def _draw_real(pool: Tensor, n: int, g: torch.Generator) -> Tensor:
    """``n`` random indices of ``pool`` (all, shuffled, if it holds fewer): every real sample a distillation uses."""
    return pool[torch.randperm(len(pool), generator=g)[:n].to(pool.device)]


def _sample_real(data: Dataset, pools: list[Tensor], n: int, g: torch.Generator) -> Tensor:
    """(K, n, C, H, W): ``n`` random real images from each class pool."""
    return data.x_train[torch.stack([_draw_real(pool, n, g) for pool in pools])]


def _update_net(net: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, steps: int, batch: int,
                augment: DSA | None, g: torch.Generator, cutmix_p: float = 0.0) -> None:
    """``steps`` SGD steps on random mini-batches of ``(x, y)`` (already normalised), each augmented
    and then CutMixed with probability ``cutmix_p``."""
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:batch].to(x.device)
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, generator=g)
        xb, y_pasted, keep = cutmix(xb, yb, cutmix_p, g)
        loss = mixed_loss(net(xb), yb, y_pasted, keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@dataclass
class _Run:
    """A distillation in progress: the learnable segment ``z`` (normalised pixels), its optimiser, the real
    pools it draws from, the random stream and the history so far."""

    data: Dataset
    syn: SyntheticSet
    cfg: DistillConfig
    k_seg: int
    pools: list[Tensor]
    mean: Tensor
    std: Tensor
    z_all: Tensor
    z: Tensor
    opt: torch.optim.Optimizer
    g: torch.Generator
    augment: DSA | None
    ckpt: Path | None
    history: list[dict] = field(default_factory=list)
    start: int = 0

    @property
    def seg(self) -> slice:
        return self.syn.segment(self.k_seg)

    def full(self, z: Tensor) -> Tensor:
        """Every stored image (normalised): the frozen segments around ``z``."""
        return torch.cat([self.z_all[:self.seg.start], z, self.z_all[self.seg.stop:]])

    def current(self) -> SyntheticSet:
        """The set as it stands: the learned segment in pixel space, the others as they came."""
        syn = self.syn
        images = syn.images.detach().clone().to(self.data.device)
        images[self.seg] = (self.z.detach() * self.std + self.mean)
        return SyntheticSet(images, syn.labels.to(self.data.device), syn.num_classes, syn.factor,
                            list(syn.segments), dict(syn.meta))

    def resume(self) -> None:
        """Continue from the checkpoint, if there is one; it must come from the same config and segment."""
        if self.ckpt is None or not self.ckpt.exists():
            return
        state = torch.load(self.ckpt, map_location=self.data.device, weights_only=False)
        if state["config"] != asdict(self.cfg) or state["segment"] != self.k_seg or state["z"].shape != self.z.shape:
            raise ValueError(f"{self.ckpt} belongs to a different run (config or segment differ); "
                             "use another --out folder or delete the checkpoint.")
        with torch.no_grad():
            self.z.copy_(state["z"])
        self.opt.load_state_dict(state["opt"])
        self.g.set_state(state["generator"])
        self.start, self.history = state["iteration"], [{**h, "resumed": True} for h in state["history"]]

    def save_checkpoint(self, iteration: int) -> None:
        """Write what continuing after ``iteration`` iterations needs (nothing without a folder)."""
        if self.ckpt is not None:
            save_atomic({"z": self.z.detach().cpu(), "opt": self.opt.state_dict(), "generator": self.g.get_state(),
                         "iteration": iteration, "history": self.history, "config": asdict(self.cfg),
                         "segment": self.k_seg}, self.ckpt)


def _start_run(data: Dataset, syn: SyntheticSet, cfg: DistillConfig, train_segment: int,
               pools: list[Tensor] | None, out: str | os.PathLike | None) -> _Run:
    """Set up the distillation of segment ``train_segment`` of ``syn`` and resume it from ``out``'s checkpoint."""
    device = data.device
    k_seg = train_segment % len(syn.segments)
    pools = [p.to(device) for p in (pools if pools is not None else data.class_index)]
    if len(pools) != data.num_classes or any(len(p) == 0 for p in pools):
        raise ValueError("pools must hold a non-empty index tensor for every class.")
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    z_all = ((syn.images.to(device) - mean) / std).detach()
    z = z_all[syn.segment(k_seg)].clone().requires_grad_(True)
    run = _Run(data, syn, cfg, k_seg, pools, mean, std, z_all, z,
               opt=torch.optim.SGD([z], lr=cfg.lr_img, momentum=cfg.momentum_img),
               g=torch.Generator().manual_seed(cfg.seed), augment=cfg.augmentation(data.name) if cfg.augment else None,
               ckpt=Path(out) / "checkpoint.pt" if out is not None else None)
    run.resume()
    return run


def _matching_network(run: _Run, it: int, net_starts: list[dict[str, Tensor]] | None) -> nn.Module:
    """Outer iteration ``it``'s network: fresh (seeded by seed, segment and iteration) or loaded from ``net_starts``."""
    cfg, data = run.cfg, run.data
    torch.manual_seed(cfg.seed * 1_000_003 + run.k_seg * 10_007 + it)
    net = get_network(cfg.arch, data.channels, data.num_classes, data.im_size, **cfg.net_kwargs()).to(data.device)
    if net_starts:
        net.load_state_dict(net_starts[it % len(net_starts)])
    net.train()
    for p in net.parameters():
        p.requires_grad_(cfg.method != "dm")
    return net


def _match_step(run: _Run, net: nn.Module, rows: Tensor, batch_real: int, grad_path: str) -> Tensor:
    """Per class, a real batch from its pool against the class's decoded synthetic images (``rows``; one shared
    DSA draw); back-propagates the objective into ``run.z`` and returns it (the image step is the caller's)."""
    data, cfg, g = run.data, run.cfg, run.g
    x_dec = decode(run.full(run.z), run.syn.factor)
    if cfg.batch_syn_max and rows.shape[1] > cfg.batch_syn_max:
        rows = rows[:, torch.randperm(rows.shape[1], generator=g)[:cfg.batch_syn_max].to(data.device)]
    xs = x_dec[rows]                                   # (K, m, C, H, W)
    xr = data.normalize(_sample_real(data, run.pools, batch_real, g).flatten(0, 1)).view(
        data.num_classes, batch_real, *xs.shape[2:])
    if run.augment is not None:
        pairs = [run.augment.siamese(xr[c], xs[c], generator=g) for c in range(data.num_classes)]
        xr = torch.stack([p[0] for p in pairs])
        xs = torch.stack([p[1] for p in pairs])
    k = data.num_classes
    run.opt.zero_grad(set_to_none=True)
    if cfg.method == "dm":
        loss = distribution_match_loss(net, xr, xs)
        loss.backward()
        return loss
    yr = torch.arange(k, device=data.device).view(k, 1).expand(k, xr.shape[1])
    ys = torch.arange(k, device=data.device).view(k, 1).expand(k, xs.shape[1])
    return gradient_match_backward(net, xr, yr, xs, ys, cfg.metric, cfg.layers, grad_path)


def _update_network(run: _Run, net: nn.Module, opt: torch.optim.Optimizer, augment: DSA | None) -> None:
    """``net_steps`` updates of the matching network, on the synthetic set (``net_source="syn"``) or on real
    images drawn from the pools (``"real"``)."""
    cfg, data = run.cfg, run.data
    if cfg.net_source == "syn":
        with torch.no_grad():
            x = decode(run.full(run.z.detach()), run.syn.factor)
        y = run.syn.labels.to(data.device).repeat_interleave(run.syn.factor ** 2)
    else:
        sel = _draw_real(torch.cat(run.pools), cfg.batch_net * cfg.net_steps, run.g)
        x, y = data.normalize(data.x_train[sel]), data.y_train[sel]
    _update_net(net, opt, x, y, cfg.net_steps, cfg.batch_net, augment, run.g, cfg.cutmix_p)


def _diverged(run: _Run, loss: Tensor, it: int, step: int) -> DistillationDivergedError:
    """The error for a matching loss that became NaN or infinite, naming the checkpoint that is kept."""
    where = f"; the last good checkpoint {run.ckpt} is kept" if run.ckpt is not None and run.ckpt.exists() else ""
    return DistillationDivergedError(
        f"The matching loss became {loss.item()} at iteration {it}, step {step}{where}. "
        f"Lower the image learning rate (lr_img={run.cfg.lr_img:g}) or check the data for NaN.")


def _outer_iteration(run: _Run, it: int, net_starts: list[dict[str, Tensor]] | None,
                     grad_path: str | None) -> tuple[list[float], str]:
    """One outer iteration: a network, then ``match_steps`` matching steps each followed by its network
    updates; returns the matching losses and the gradient path (chosen on the first network)."""
    cfg, data = run.cfg, run.data
    net = _matching_network(run, it, net_starts)
    grad_path = grad_path or _grad_path(cfg, net, data.device)
    net_opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.net_momentum,
                              weight_decay=cfg.net_weight_decay)
    rows = _class_rows(run.syn.labels.to(data.device), data.num_classes, run.syn.factor)  # (K, m) into the decoded set
    batch_real = min(cfg.batch_real, min(len(p) for p in run.pools))
    net_augment = net_augmentation(run.augment, cfg.cutmix_p)
    losses = []
    for step in range(cfg.match_steps):
        loss = _match_step(run, net, rows, batch_real, grad_path)
        if not torch.isfinite(loss):
            raise _diverged(run, loss, it, step)
        run.opt.step()
        losses.append(loss.item())
        if cfg.net_steps and cfg.method != "dm" and (step < cfg.match_steps - 1 or cfg.net_after_last):
            _update_network(run, net, net_opt, net_augment)
    return losses, grad_path


def distill_segment(data: Dataset, syn: SyntheticSet, cfg: DistillConfig, *, train_segment: int = -1,
                    pools: list[Tensor] | None = None, out: str | os.PathLike | None = None,
                    progress: bool = True, desc: str | None = None,
                    callback: Callable[[dict], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    net_starts: list[dict[str, Tensor]] | None = None) -> tuple[SyntheticSet, pd.DataFrame]:
    """Learn segment ``train_segment`` of ``syn`` (the others stay frozen); return the new set and its history.

    ``pools``: per-class indices of the real training images this segment may use (default:
    all); both the real class batches and IDC's network updates draw from them. With ``out``
    set, a checkpoint is written every ``cfg.checkpoint_every`` iterations and a rerun resumes.
    ``callback(log)`` runs after every iteration (``log["snapshot"]()`` returns the set as it
    stands, for live views); ``should_stop()`` returning True ends the
    run cleanly after the current iteration, keeping what was learned. ``net_starts``: state dicts
    of the matching network (``cfg``'s architecture) that outer iteration ``it`` starts from,
    ``net_starts[it % len(net_starts)]``, instead of a fresh random network (DASM's probe-started
    matching, :class:`~dasm.sequential.DasmConfig`'s ``match_net``).
    The history has one row per iteration: ``segment``, ``iteration``, mean matching ``loss``, wall
    ``seconds`` and ``resumed`` (run by an earlier call that was interrupted; see :func:`resumed_seconds`).
    """
    run = _start_run(data, syn, cfg, train_segment, pools, out)
    bar = tqdm(total=cfg.iterations, initial=run.start, desc=desc or f"{cfg.method} ipc{cfg.ipc}",
               disable=not progress, leave=False, unit="it")
    grad_path = None
    try:
        for it in range(run.start, cfg.iterations):
            t0 = time.perf_counter()
            losses, grad_path = _outer_iteration(run, it, net_starts, grad_path)
            log = {"segment": run.k_seg, "iteration": it, "loss": sum(losses) / len(losses),
                   "seconds": time.perf_counter() - t0, "resumed": False}
            run.history.append(log)
            bar.update(1)
            bar.set_postfix(loss=f"{log['loss']:.4g}")
            if callback is not None:
                callback({**log, "snapshot": run.current})
            stop = should_stop is not None and should_stop()
            if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations or stop:
                run.save_checkpoint(it + 1)
            if stop:
                break
    finally:
        bar.close()
    return run.current(), pd.DataFrame(run.history)


def distill(data: Dataset, cfg: DistillConfig, *, out: str | os.PathLike | None = None,
            progress: bool = True, features: Tensor | None = None,
            callback: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            stamp: dict | None = None) -> tuple[SyntheticSet, pd.DataFrame]:
    """Distill ``cfg.ipc`` images per class of ``data`` with ``cfg.method``; save to ``out`` if given.

    Writes ``synthetic.pt`` (+ PNG grid), ``starts.pt``, ``history.csv`` and ``config.json`` (``stamp``,
    by default ``cfg``) in ``out``; rerunning with the same ``out`` resumes from its checkpoint. A run
    ended by ``should_stop`` writes its set as ``partial.pt`` instead, so that the next run resumes
    rather than loads it.
    """
    syn = new_synthetic_set(data, cfg.ipc, cfg.factor, cfg.init, cfg.seed, features,
                            method=cfg.method, config=asdict(cfg))
    save_starts(out, syn)
    syn, history = distill_segment(data, syn, cfg, out=out, progress=progress, callback=callback,
                                   should_stop=should_stop)
    if out is not None:
        save_run(out, syn, history, stamp or asdict(cfg), finished=len(history) >= cfg.iterations)
    return syn, history


def resumed_seconds(history: pd.DataFrame) -> float:
    """Seconds of the iterations in ``history`` that earlier, interrupted calls ran (0 for a run in one go).

    A resumed run's wall time counts only its own call; adding this gives the whole distillation's.
    """
    if "resumed" not in history:
        return 0.0
    return float(history.loc[history.resumed.eq(True), "seconds"].sum())   # a row without the flag: not resumed


PARTIAL = "partial.pt"   # the set of a stopped run, next to the checkpoint it resumes from
STARTS = "starts.pt"     # the set as it was before any matching (how far matching moved it: dasm.analysis.regime)


def save_starts(out: str | os.PathLike | None, syn: SyntheticSet) -> None:
    """Keep ``syn``, the set before matching, as ``out/starts.pt`` (once: a resumed run keeps the first)."""
    if out is not None and not (Path(out) / STARTS).exists():
        syn.save(Path(out) / STARTS, png=False)


def save_run(out: str | os.PathLike, syn: SyntheticSet, history: pd.DataFrame, stamp: dict,
             finished: bool = True) -> Path:
    """Write a run: the set (``synthetic.pt``, or ``partial.pt`` when not ``finished``), its grid,
    the loss history and, when finished, ``config.json`` (``stamp``: the settings) that marks it done."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / "history.csv", index=False)
    if not finished:
        return syn.save(out / PARTIAL)
    syn.save(out / "synthetic.pt")
    (out / "config.json").write_text(json.dumps(stamp, indent=2))
    for stale in (out / PARTIAL, (out / PARTIAL).with_suffix(".png")):
        stale.unlink(missing_ok=True)
    return out / "synthetic.pt"


def config_for(method: str, **overrides: object) -> DistillConfig:
    """The reference-style defaults of ``method`` (DC/DSA/DM/IDC) with ``overrides`` applied."""
    base = {
        "dc": dict(metric="dc", augment=False, net_source="syn", lr_img=0.1, batch_real=256),
        "dsa": dict(metric="dc", augment=True, net_source="syn", lr_img=0.1, batch_real=256),
        "dm": dict(metric="dc", augment=True, lr_img=1.0, batch_real=256, match_steps=1, net_steps=0),
        "idc": dict(metric="l1", factor=2, init="mix", augment=True, net_source="real", lr_img=1e-4,
                    batch_real=64, batch_syn_max=128, match_steps=100, net_steps=1),
    }
    if method not in base:
        raise ValueError(f"Unknown distillation method {method!r}; choose one of {', '.join(METHODS)}.")
    return replace(DistillConfig(method=method, **base[method]), **overrides)
