"""Named presets and one resolved configuration per run.

A preset turns (dataset, method, IPC) into a :class:`~dasm.distill.DistillConfig` and names the
evaluation :class:`~dasm.evaluate.Protocol` that goes with it; :func:`resolve` turns (preset,
dataset, method, IPC, overrides) into one frozen :class:`RunConfig`, every setting a run uses.
Everything a preset sets can be overridden (``resolve(..., iterations=50)``; ``--iterations 50``).

``paper``: the reference implementations' settings (DC/DSA: 1000 iterations with outer/inner loops
by IPC; DM: 20,000 iterations at lr 1; IDC: its ``--reproduce`` protocol, pinned value by value in
``tests/test_paper_preset.py``), evaluated for 1000 epochs. Meant for a GPU.

``cpu``: the same algorithms with a smaller matching network and budget so that one distillation
fits in minutes on a laptop. How each of its settings was chosen, on which split and with which
measurements, is ``docs/presets.md``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

from .data import canonical_name
from .distill import METHODS, DistillConfig, config_for
from .evaluate import PROTOCOLS, Protocol
from .methods import REGISTRY, method_names
from .methods import method as method_spec
from .train import Recipe

PRESETS = ("cpu", "paper")

def _paper_loops(method: str, ipc: int) -> dict:
    """DC/DSA's outer_loop (matching steps per network) and inner_loop (network updates) by IPC;
    IDC's niter x inner_loop, with a network update after every matching step, the last included."""
    if method in ("dc", "dsa"):
        outer, inner = (1, 1) if ipc == 1 else (10, 50) if ipc <= 10 else (50, 10)
        return {"match_steps": outer, "net_steps": inner, "iterations": 1000}
    if method == "dm":
        return {"iterations": 20000}
    return {"iterations": 2000, "match_steps": 100, "net_after_last": True}


def _paper(dataset: str, method: str, ipc: int) -> dict:
    """The reference implementations' settings; for IDC those of its ``--reproduce`` runs (factor 2).

    Where each IDC value comes from in snu-mllab/Efficient-Dataset-Condensation is cited in
    ``tests/test_paper_preset.py``, which pins them.
    """
    over = _paper_loops(method, ipc)
    if method != "idc":
        return over
    # network updates: SGD (lr 0.01, momentum 0.9, weight decay 5e-4) on 500 real images (8 batches of 64),
    # each batch CutMixed with p 0.5, which takes cutout's place in its augmentation; matching augments
    # with colour, crop and cutout together, one draw shared by a class's real and synthetic batch
    over.update(net_steps=8, batch_net=64, net_momentum=0.9, net_weight_decay=5e-4, cutmix_p=0.5,
                dsa_strategy="color_crop_cutout", dsa_mode="multiple")
    if dataset == "fashion-mnist":   # lr_img x IPC/10 x (28/32)^2: IDC sizes Fashion-MNIST against 32x32
        over.update(metric="l1", lr_img=1e-4 * ipc / 10 * (28 / 32) ** 2)
    elif dataset == "mnist":         # MNIST is its own 28x28 base; with factor 2, neither CutMix nor cutout
        over.update(metric="l1", lr_img=1e-4 * ipc / 10, dsa_strategy="color_crop", cutmix_p=0.0)
    elif dataset == "digits":        # not in IDC: MNIST's lr_img, the default augmentation and CutMix
        over.update(metric="l1", lr_img=1e-4 * ipc / 10)
    else:
        over.update(metric="mse", lr_img=5e-3)
    return over


def _cpu(dataset: str, method: str, ipc: int) -> dict:
    small = dataset == "digits"
    over: dict = {"width": 64 if small else 32, "checkpoint_every": 10}
    if method in ("dc", "dsa"):
        over.update(iterations=60 if small else 100, match_steps=min(max(ipc, 1), 10), net_steps=10,
                    batch_real=64 if small else 128)
    elif method == "dm":
        over.update(iterations=300 if small else 1000, batch_real=64 if small else 128)
    else:  # idc
        # IDC's loop (fresh net, matching steps interleaved with network updates on real data) with
        # DC's distance. Up to IPC 10 on 28x28 and larger data: multi-formation (factor 2, mix init),
        # 200 iterations above IPC 1; above IPC 10: single formation from k-means modes of each class
        # in the preset's full-data embedding; on 8x8 digits: single formation from real images.
        # lr_img scales with IPC (an image's share of its class's gradient is 1/IPC): 0.03 x IPC (at
        # least 0.1) with factor 2, 0.01 x IPC with factor 1. docs/presets.md has the measurements.
        multi = ipc <= 10 and not small
        iterations = 60 if small else 200 if multi and ipc > 1 else 100
        init = "mix" if multi else "real" if small else "modes"
        over.update(iterations=iterations, match_steps=10, net_steps=2, batch_net=128, batch_real=64,
                    factor=2 if multi else 1, init=init, metric="dc", layers="all",
                    lr_img=max(0.1, 0.03 * ipc) if multi else 0.01 * ipc)
    return over


def _given(overrides: dict) -> dict:
    """The overrides that say something: ``None`` means "the preset's value"."""
    return {k: v for k, v in overrides.items() if v is not None}


def preset_config(preset: str, dataset: str, method: str, ipc: int, **overrides: object) -> DistillConfig:
    """The :class:`DistillConfig` of ``preset`` for distilling ``ipc`` images per class of ``dataset`` with ``method``.

    ``overrides`` replace the preset's fields; an override of ``None`` keeps the preset's value.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if method not in METHODS:
        raise ValueError(f"Unknown distillation method {method!r}; choose one of {', '.join(METHODS)}.")
    name = canonical_name(dataset)
    base = (_paper if preset == "paper" else _cpu)(name, method, ipc)
    return config_for(method, ipc=ipc, **{**base, **_given(overrides)})


def dasm_preset_config(preset: str, dataset: str, ipc: int, base: str = "idc", **overrides: object):
    """The :class:`~dasm.sequential.DasmConfig` of ``preset``: its base distiller config plus DASM's own knobs.

    ``overrides`` may name fields of either (``segments=5``, ``iterations=200``); the base's
    iteration budget is split over the segments and the joint pass, so DASM does as many
    matching steps as the plain base distiller. The cpu preset trains smaller probes (width 32, 100 epochs);
    with ``match_net="probe"`` the probes take the matching network's width unless ``probe_width`` is given.
    """
    from dataclasses import fields

    from .sequential import DasmConfig

    overrides = _given(overrides)
    dasm_fields = {f.name for f in fields(DasmConfig)} - {"base"}
    dasm_over = {k: v for k, v in overrides.items() if k in dasm_fields}
    base_over = {k: v for k, v in overrides.items() if k not in dasm_fields}
    base_cfg = preset_config(preset, dataset, base, ipc, **base_over)
    if preset == "cpu":
        # on a base that starts from k-means modes, the set starts at the base's own modes, dealt to
        # the segments by the probe's loss (docs/presets.md)
        starts = {"modes": "joint"} if base_cfg.init == "modes" else {}
        dasm_over = {"probe_epochs": 100, "probe_width": 32, "reference_epochs": 5, **starts, **dasm_over}
    if dasm_over.get("match_net") == "probe" and "probe_width" not in overrides:
        dasm_over["probe_width"] = base_cfg.width   # the probes ARE the matching networks' starts
    return DasmConfig(base_cfg, **dasm_over)


def reference_size(preset: str, dataset: str) -> dict[str, int]:
    """``width`` and ``epochs`` of ``preset``'s full-data networks: DASM's reference network, which also
    scores static pruning and embeds the data for herding and k-center (cpu: 32 and 5; paper: 128 and 20)."""
    ref = dasm_preset_config(preset, dataset, 1, segments=1)
    return {"width": ref.probe_width, "epochs": ref.reference_epochs}


def preset_protocol(preset: str, dataset: str, method: str = "idc", **recipe_overrides: object) -> Protocol:
    """The evaluation protocol that goes with ``preset`` (IDC's lr schedule for IDC/DASM, DC's otherwise)."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    spec = REGISTRY.get(str(method).lower())   # a published set's method may be one the registry lacks
    base = PROTOCOLS[spec.protocol if spec is not None else "dc"]
    recipe = base.recipe
    if preset == "cpu":
        recipe = replace(recipe, epochs=300)
    if recipe_overrides:
        recipe = replace(recipe, **recipe_overrides)
    return replace(base, recipe=recipe)


def describe(cfg: DistillConfig) -> str:
    """One line with the knobs that matter most, for logs and tables."""
    return (f"{cfg.method} ipc{cfg.ipc} f{cfg.factor} {cfg.init} it{cfg.iterations}x{cfg.match_steps} "
            f"lr{cfg.lr_img:g} {cfg.metric} {cfg.arch}-w{cfg.width}")


# What each overridable setting means: the CLI's --help and the panel's tooltips (tests check every
# field of the configs a run is made of has its sentence here).
KNOB_HELP = {
    "base": "base distiller of DASM's segments and of static pruning",
    "factor": "multi-formation factor: each stored image decodes into factor^2 images",
    "init": "where the images start: noise, real images, mix (factor^2 real images in one), k-means modes",
    "iterations": "outer iterations (a fresh matching network each)",
    "match_steps": "synthetic updates per outer iteration",
    "net_steps": "network updates after each matching step",
    "net_source": "what the network updates train on: real data (IDC) or the synthetic set (DC, DSA)",
    "lr_img": "image learning rate",
    "momentum_img": "momentum of the image optimiser",
    "lr_net": "learning rate of the network updates",
    "net_after_last": "also update the network after the last matching step (IDC)",
    "net_momentum": "momentum of the network updates",
    "net_weight_decay": "weight decay of the network updates",
    "cutmix_p": "probability of CutMix on a network-update batch",
    "dsa_strategy": "DSA families joined by _ (None: the dataset's default)",
    "dsa_mode": "one DSA family per draw (single) or all of them together (multiple)",
    "batch_real": "real images per class in each matching step",
    "batch_net": "batch size of the network updates",
    "batch_syn_max": "at most this many decoded synthetic images per class in a match (0: all)",
    "metric": "gradient distance: dc (1 - cosine per output channel), mse, l1, cos",
    "layers": "which layers' gradients are matched (None: the metric's default; all)",
    "augment": "siamese augmentation (DSA) during matching",
    "arch": "matching network",
    "width": "matching ConvNet's width",
    "depth": "matching ConvNet's depth (None: leave a 4x4 map before the head)",
    "norm": "matching ConvNet's normalisation",
    "grad_path": "how per-class gradients are taken (all give the same result; None: the fastest measured)",
    "checkpoint_every": "iterations between checkpoints",
    "segments": "number of segments K",
    "sizes": "images per class of each segment (None: as equal as possible)",
    "score": "difficulty score of a real sample",
    "policy": "how a segment's real pool is chosen from the scores (none: all real data)",
    "window": "fraction of each class in a segment's pool",
    "probe_epochs": "epochs of each probe network (trained on the earlier segments)",
    "probe_width": "ConvNet width of the probes (and of DASM's full-data reference and modes embedding)",
    "reference_epochs": "epochs of the full-data reference network",
    "iterations_per_segment": "outer iterations of each segment (None: the base budget shared out)",
    "scale_lr": "segment k's image lr = lr_img x (images so far) / IPC (None: on for an IDC base)",
    "init_from": "where a segment's starting real images come from: all of the class or its pool",
    "joint": "fraction of the iterations kept for a last pass over all segments against all real data",
    "match_net": "what segment k's matching networks start from: fresh, or the probe",
    "modes": "with init modes: own k-means per segment, complement of the earlier starts, or the base's "
             "own starts dealt to the segments by difficulty (joint)",
    "drop": "static pruning: fraction of each class's easiest samples dropped",
    "reference_width": "static pruning: ConvNet width of the full-data reference network",
    "feature_width": "ConvNet width of the embedding herding and k-center select in",
    "feature_epochs": "epochs of that embedding's network",
}


def _choices() -> dict[str, tuple]:
    from .difficulty import SCORES
    from .matching import GRAD_PATHS, METRICS
    from .nets import NORMS, list_networks
    from .pools import POLICIES
    from .sequential import INIT_FROM, MATCH_NETS, MODES
    from .synthetic import INITS

    return {"init": INITS, "metric": METRICS, "score": SCORES, "policy": POLICIES, "init_from": INIT_FROM,
            "match_net": MATCH_NETS, "modes": MODES, "net_source": ("real", "syn"), "grad_path": GRAD_PATHS,
            "norm": NORMS, "arch": tuple(list_networks()),
            "dsa_mode": ("single", "multiple")}


# ---------------------------------------------------------------------------------------
# One resolved configuration per run
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prune:
    """Static pruning's choices: drop the easiest ``drop`` of each class by ``score`` under a full-data
    ConvNet of ``reference_width`` trained for ``reference_epochs``."""

    drop: float = 0.3
    score: str = "loss"
    reference_epochs: int = 20
    reference_width: int = 128


@dataclass(frozen=True)
class Features:
    """The embedding herding, k-center and ``init="modes"`` work in: a ConvNet of ``feature_width`` trained
    on all real training data for ``feature_epochs`` (no augmentation), cached per seed."""

    feature_width: int = 128
    feature_epochs: int = 20


@dataclass(frozen=True)
class RunConfig:
    """Every setting one run uses, resolved from (preset, dataset, method, IPC, overrides) by :func:`resolve`.

    ``distill`` is the (base) distiller's configuration (a sequential method's segments and a starts
    method's init use it too); ``sequential`` DASM's choices (its ``base`` is ``distill``); ``prune``
    static pruning's; ``features`` the embedding a coreset selects in or modes start from. What a run
    folder's ``config.json`` holds is :meth:`to_dict`; its name carries :meth:`key`.
    """

    dataset: str
    method: str
    ipc: int
    preset: str = "cpu"
    seed: int = 0
    distill: DistillConfig | None = None
    sequential: "DasmConfig | None" = None
    prune: Prune | None = None
    features: Features | None = None
    val_split: tuple[float, int] | None = None

    @property
    def family(self) -> str:
        """The method's family in the registry (coreset, starts, distiller, sequential)."""
        return method_spec(self.method).family

    def to_dict(self) -> dict:
        """Plain JSON values of every setting (``config.json``)."""
        return json.loads(json.dumps(asdict(self), default=str))

    def key(self) -> str:
        """Eight hex digits naming every setting but the seed: two runs share it when they differ in seed only."""
        settings = _without_seeds(self.to_dict())
        return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]

    def name(self) -> str:
        """The run folder's name: ``<dataset>-<method>-ipc<ipc>-seed<seed>-<key>``."""
        return f"{self.dataset}-{self.method}-ipc{self.ipc}-seed{self.seed}-{self.key()}"

    def iterations(self) -> tuple[int, int]:
        """(outer iterations the whole run makes, those of one segment); (0, 0) for a selection."""
        if self.sequential is not None:
            per = self.sequential.segment_iterations()
            return per * self.sequential.segments + self.sequential.joint_iterations(), per
        if self.family in ("coreset", "starts") or self.distill is None:
            return 0, 0
        return self.distill.iterations, self.distill.iterations

    def protocol(self, **recipe_overrides: object) -> Protocol:
        """The evaluation protocol of this run (see :func:`preset_protocol`)."""
        return preset_protocol(self.preset, self.dataset, self.method, **recipe_overrides)


def _without_seeds(settings: object) -> object:
    """``settings`` without its seeds, at any depth (a sequential run nests its base config)."""
    if isinstance(settings, dict):
        return {k: _without_seeds(v) for k, v in settings.items() if k != "seed"}
    return settings


@dataclass(frozen=True)
class Knob:
    """One setting a user may override: its name, type, where it lands, and a sentence of help."""

    name: str
    type: object
    scope: str            # distill, sequential, prune, features or run
    help: str
    choices: tuple | None = None


def _knobs() -> dict[str, Knob]:
    """Every overridable setting, generated from the fields of the configs a run is made of."""
    from typing import get_type_hints

    from .sequential import DasmConfig

    choices = _choices()
    out: dict[str, Knob] = {"base": Knob("base", str, "run", KNOB_HELP["base"], method_names("distiller"))}
    for scope, cls, skip in (("distill", DistillConfig, {"method", "ipc", "seed"}), ("sequential", DasmConfig, {"base"}),
                             ("prune", Prune, set()), ("features", Features, set())):
        hints = get_type_hints(cls)
        for f in fields(cls):
            if f.name in skip or (f.name in out and out[f.name].scope != "run"):
                continue
            out[f.name] = Knob(f.name, hints[f.name], scope, KNOB_HELP.get(f.name, ""), choices.get(f.name))
    return out


@functools.cache
def knobs() -> dict[str, Knob]:
    """Every setting :func:`resolve` takes as an override (the CLI's flags and the panel's controls)."""
    return _knobs()


def knob_scopes(method: str) -> tuple[str, ...]:
    """The scopes whose knobs apply to ``method``."""
    m = method_spec(method)
    if m.family == "coreset":
        return ("features",) if m.uses_features else ()
    if m.family in ("starts", "distiller"):
        return ("distill",)
    if m.segments:
        return ("run", "distill", "sequential")
    return ("run", "distill", "prune")


def resolve(preset: str, dataset: str, method: str, ipc: int, *, seed: int = 0,
            val_split: tuple[float, int] | None = None, **overrides: object) -> RunConfig:
    """The one configuration of a run: ``preset``'s settings for ``method`` at ``ipc`` on ``dataset``,
    with ``overrides`` (any :func:`knobs`; ``None`` keeps the preset's value) applied.

    Raises a ValueError naming the problem for an unknown preset, method or setting, a setting the
    method does not take, or an IPC below one.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    spec = method_spec(method)
    if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
        raise ValueError(f"IPC (images per class) must be a positive integer, got {ipc!r}.")
    dataset = canonical_name(dataset)
    given = _given(overrides)
    table, scopes = knobs(), knob_scopes(spec.name)
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(table)}.")
    foreign = sorted(set(given) - set(applicable(spec.name, given)))
    if foreign:
        takes = ", ".join(k for k in table if k in applicable(spec.name, {k: 0 for k in table})) or "no settings"
        raise ValueError(f"{spec.name} (a {spec.family} method) takes no setting {', '.join(foreign)}; "
                         f"it takes: {takes}.")
    split = tuple(val_split) if val_split is not None else None
    run = {"dataset": dataset, "method": spec.name, "ipc": ipc, "preset": preset, "seed": seed, "val_split": split}
    ref = reference_size(preset, dataset)
    if spec.family == "coreset":
        feats = Features(int(given.get("feature_width", ref["width"])), int(given.get("feature_epochs", ref["epochs"])))
        return RunConfig(**run, features=feats if spec.uses_features else None)
    base = str(given.pop("base", "idc"))
    if spec.family == "starts":
        base = spec.name.removesuffix("-starts")
    own = {k: v for k, v in given.items() if table[k].scope == "distill"}
    if spec.segments:
        rest = {k: v for k, v in given.items() if table[k].scope == "sequential"}
        if spec.name == "dasm-nodifficulty":
            rest["policy"] = "none"
        cfg = dasm_preset_config(preset, dataset, ipc, base, seed=seed, **own, **rest)
        feats = Features(cfg.probe_width, cfg.reference_epochs) if cfg.base.init == "modes" else None
        return RunConfig(**run, distill=cfg.base, sequential=cfg, features=feats)
    distill_cfg = preset_config(preset, dataset, spec.name if spec.family == "distiller" else base, ipc, seed=seed,
                                **own)
    feats = Features(ref["width"], ref["epochs"]) if distill_cfg.init == "modes" else None
    prune = None
    if spec.name == "static-prune":
        p = {k: v for k, v in given.items() if table[k].scope == "prune" or _shared(k, ("prune",))}
        prune = Prune(drop=float(p.get("drop", 0.3)), score=str(p.get("score", "loss")),
                      reference_epochs=int(p.get("reference_epochs", ref["epochs"])),
                      reference_width=int(p.get("reference_width", ref["width"])))
    return RunConfig(**run, distill=distill_cfg, prune=prune, features=feats)


def applicable(method: str, overrides: dict) -> dict:
    """The ``overrides`` (``None`` dropped) that ``method`` takes: a grid's settings reach only the methods they
    concern (``segments`` only DASM, ``iterations`` no coreset)."""
    scopes, table = knob_scopes(method), knobs()
    return {k: v for k, v in _given(overrides).items()
            if k in table and (table[k].scope in scopes or _shared(k, scopes))}


def _shared(name: str, scopes: tuple[str, ...]) -> bool:
    """Whether ``name`` is also a field of a scope in ``scopes`` (``score``, ``reference_epochs``: DASM and
    static pruning both have them)."""
    return ("prune" in scopes and name in {f.name for f in fields(Prune)}) or \
        ("sequential" in scopes and name in _sequential_fields())


def _sequential_fields() -> set[str]:
    from .sequential import DasmConfig

    return {f.name for f in fields(DasmConfig)} - {"base"}


__all__ = ["PRESETS", "preset_config", "dasm_preset_config", "reference_size", "preset_protocol",
           "describe", "Recipe", "RunConfig", "Prune", "Features", "Knob", "knobs", "knob_scopes", "resolve"]
