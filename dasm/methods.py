"""The method registry: every method's name, family, evaluation protocol and whether it takes segments.

This table is the one place a method is named. Every caller (the run functions, the presets, the
CLI, the panels, the analysis, the benchmarks) asks it instead of spelling out its own tuple.

Families:

- ``coreset``: a selection of real images (``random``, ``herding``, ``kcenter``);
- ``starts``: the images a distiller starts from, before any matching (the control that tells
  what matching adds);
- ``distiller``: one pass of a matching objective (``dc``, ``dsa``, ``dm``, ``idc``);
- ``sequential``: a base distiller run in difficulty-aligned segments (DASM) or its ablations
  (``dasm-nodifficulty``: the same segments without difficulty; ``static-prune``: drop the easiest
  real samples by a full-data network, then distill once).

``protocol`` names the evaluation recipe's lr schedule (:data:`dasm.evaluate.PROTOCOLS`): IDC's
for IDC and everything built on it, DC's otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("coreset", "starts", "distiller", "sequential")


@dataclass(frozen=True)
class Method:
    """One row of the registry."""

    name: str
    family: str
    protocol: str
    segments: bool = False
    uses_features: bool = False
    summary: str = ""


REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("random", "coreset", "dc", summary="random real images of each class"),
    Method("herding", "coreset", "dc", uses_features=True,
           summary="real images whose running mean tracks the class mean in a trained network's embedding"),
    Method("kcenter", "coreset", "dc", uses_features=True,
           summary="real images that cover the class (greedy k-center) in a trained network's embedding"),
    Method("idc-starts", "starts", "idc", summary="the images IDC starts from, not distilled"),
    Method("dc", "distiller", "dc", summary="gradient matching (Zhao et al. 2021)"),
    Method("dsa", "distiller", "dc", summary="gradient matching with siamese augmentation (Zhao & Bilen 2021)"),
    Method("dm", "distiller", "dc", summary="distribution matching (Zhao & Bilen 2023)"),
    Method("idc", "distiller", "idc", summary="gradient matching with multi-formation (Kim et al. 2022)"),
    Method("dasm", "sequential", "idc", segments=True,
           summary="difficulty-aligned sequential matching: segments matched against real data of their difficulty"),
    Method("dasm-nodifficulty", "sequential", "idc", segments=True,
           summary="DASM's segments, every one matched against all real data"),
    Method("static-prune", "sequential", "idc",
           summary="drop the easiest real samples by a full-data network, then distill once"),
)}


def method(name: str) -> Method:
    """The registry's row for ``name`` (case-insensitive); a clear error naming the methods otherwise."""
    key = str(name).lower()
    if key not in REGISTRY:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[key]


def method_names(family: str | None = None, *, segments: bool | None = None) -> tuple[str, ...]:
    """Names of the registered methods, in the registry's order, of one ``family`` and/or by ``segments``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}; choose one of {', '.join(FAMILIES)}.")
    return tuple(m.name for m in REGISTRY.values()
                 if (family is None or m.family == family) and (segments is None or m.segments == segments))


def starts_method(base: str) -> str:
    """The ``starts`` method that stands for ``base``'s starting images (``idc`` -> ``idc-starts``)."""
    name = f"{base}-starts"
    method(name)
    return name


__all__ = ["FAMILIES", "Method", "REGISTRY", "method", "method_names", "starts_method"]
