"""Matching objectives: gradient matching (DC/DSA/IDC distances) and distribution matching (DM).

Inputs are stacked by class: ``x`` has shape (K, B, C, H, W) and ``y`` (K, B), one row per
class. Gradient matching needs each class's own network gradient. Three paths give the same
loss and pixel gradients (tested to 1e-5); :func:`gradient_match_backward` takes one by name:

- ``stream``: one class at a time: its real and synthetic gradients, its distance, and the
  backward of that distance, so only one class's double-backward graph is alive at once;
- ``loop``  : every class's gradients first (a loop over classes), then one backward of the sum;
- ``vmap``  : every class's gradients in one vectorised pass (``torch.func.vmap`` over the class
  axis), then one backward.

``benchmarks/speed.py`` times them (``DEFAULT_PATHS``): on a 2-core CPU ``stream`` ties with
``loop`` at IPC 10, is the fastest at width 64 and needs the least memory; on an H200 GPU ``vmap``
is 4-5x faster than the other two. Only the pixels get a gradient: the parameter-gradient half
of the double backward is never computed.

Distances between a real gradient ``gr`` and a synthetic one ``gs`` of one layer:

- ``dc``  : DC/DSA's "ours": per output channel 1 - cos(gr_o, gs_o), summed (weights of
            conv and linear layers; biases and norm parameters are skipped);
- ``mse`` : sum (gr - gs)^2, ``l1``: sum |gr - gs|, ``cos``: per output channel 1 - cos —
            IDC's options, over conv weights only by default (``layers="conv"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

METRICS = ("dc", "mse", "l1", "cos")
GRAD_PATHS = ("stream", "loop", "vmap")
DEFAULT_PATHS = {"cpu": "stream", "cuda": "vmap"}   # by device type; benchmarks/speed.py has the timings
LAYERS = ("all", "conv")
DEFAULT_LAYERS = {"dc": "all", "mse": "conv", "l1": "conv", "cos": "conv"}


def matched_parameters(net: nn.Module, layers: str = "all") -> list[str]:
    """Names of the parameters whose gradients are matched: weights of conv (and, for ``all``, linear) layers."""
    if layers not in LAYERS:
        raise ValueError(f"Unknown layers {layers!r}; choose one of {', '.join(LAYERS)}.")
    keep = 4 if layers == "conv" else 2
    names = [n for n, p in net.named_parameters() if p.dim() >= 2 and (layers == "all" or p.dim() == keep)]
    if not names:
        raise ValueError(f"{type(net).__name__} has no parameters to match with layers={layers!r}.")
    return names


def layer_distance(gr: Tensor, gs: Tensor, metric: str) -> Tensor:
    """Distance between real and synthetic gradients of one layer, per class: (K, *shape) -> (K,)."""
    k, out = gr.shape[0], gr.shape[1]
    if metric == "mse":
        return (gr - gs).pow(2).reshape(k, -1).sum(1)
    if metric == "l1":
        return (gr - gs).abs().reshape(k, -1).sum(1)
    if metric in ("dc", "cos"):
        a, b = gr.reshape(k, out, -1), gs.reshape(k, out, -1)
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-6)
        return (1 - cos).sum(1)
    raise ValueError(f"Unknown matching metric {metric!r}; choose one of {', '.join(METRICS)}.")


def gradient_distance(g_real: dict[str, Tensor], g_syn: dict[str, Tensor], metric: str) -> Tensor:
    """Per-class distance summed over layers: dicts of (K, *shape) gradients -> (K,)."""
    return sum(layer_distance(g_real[n], g_syn[n], metric) for n in g_real)


def class_gradients(net: nn.Module, x: Tensor, y: Tensor, names: list[str], batched: bool = True,
                    create_graph: bool = False) -> dict[str, Tensor]:
    """Gradient of each class's mean cross-entropy w.r.t. the parameters ``names``: {name: (K, *shape)}.

    The result stays differentiable w.r.t. ``x`` when ``create_graph`` is set (the synthetic side).
    """
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = dict(net.named_buffers())
    if batched:
        def loss(p_sel: dict[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
            return F.cross_entropy(functional_call(net, ({**params, **p_sel}, buffers), (xb,)), yb)

        sel = {n: params[n] for n in names}
        g = vmap(grad(loss), in_dims=(None, 0, 0))(sel, x, y)
        return g if create_graph else {n: t.detach() for n, t in g.items()}
    chosen = [p for n, p in net.named_parameters() if n in set(names)]
    per_class = []
    for xb, yb in zip(x, y):
        loss = F.cross_entropy(net(xb), yb)
        per_class.append(torch.autograd.grad(loss, chosen, create_graph=create_graph))
    return {n: torch.stack([gs[i] for gs in per_class]) for i, n in enumerate(names)}


def gradient_match_loss(net: nn.Module, x_real: Tensor, y_real: Tensor, x_syn: Tensor, y_syn: Tensor,
                        metric: str = "dc", layers: str | None = None, batched: bool = True) -> Tensor:
    """Sum over classes of the distance between real and synthetic class gradients of ``net``."""
    if metric not in METRICS:
        raise ValueError(f"Unknown matching metric {metric!r}; choose one of {', '.join(METRICS)}.")
    names = matched_parameters(net, layers or DEFAULT_LAYERS[metric])
    g_real = class_gradients(net, x_real, y_real, names, batched, create_graph=False)
    g_syn = class_gradients(net, x_syn, y_syn, names, batched, create_graph=True)
    return gradient_distance(g_real, g_syn, metric).sum()


def gradient_match_backward(net: nn.Module, x_real: Tensor, y_real: Tensor, x_syn: Tensor, y_syn: Tensor,
                            metric: str = "dc", layers: str | None = None, path: str = "stream") -> Tensor:
    """Backpropagate the gradient-matching loss into ``x_syn`` (and whatever it was computed from); return its value.

    The value is detached: check it for NaN before stepping the optimiser. ``path`` is one of
    :data:`GRAD_PATHS`; all give the same loss and gradients. Only the pixels get a gradient: the
    network's parameters are left untouched (their share of the double backward is never computed).
    """
    if path not in GRAD_PATHS:
        raise ValueError(f"Unknown gradient path {path!r}; choose one of {', '.join(GRAD_PATHS)}.")
    if metric not in METRICS:
        raise ValueError(f"Unknown matching metric {metric!r}; choose one of {', '.join(METRICS)}.")
    # Classes share whatever made x_syn (decoding, augmentation): differentiate with respect to a
    # detached copy, then send the pixel gradient through that shared graph once.
    if path != "stream":
        leaf = x_syn.detach().requires_grad_(True)
        loss = gradient_match_loss(net, x_real, y_real, leaf, y_syn, metric, layers, batched=path == "vmap")
        (pixel_grad,) = torch.autograd.grad(loss, leaf)
    else:   # one class at a time, so only one class's double-backward graph is alive at once
        names = matched_parameters(net, layers or DEFAULT_LAYERS[metric])
        loss, grads = x_syn.new_zeros(()), []
        for c in range(x_real.shape[0]):
            leaf = x_syn[c:c + 1].detach().requires_grad_(True)
            g_real = class_gradients(net, x_real[c:c + 1], y_real[c:c + 1], names, False, create_graph=False)
            g_syn = class_gradients(net, leaf, y_syn[c:c + 1], names, False, create_graph=True)
            dist = gradient_distance(g_real, g_syn, metric).sum()
            grads.append(torch.autograd.grad(dist, leaf)[0])
            loss += dist.detach()
        pixel_grad = torch.cat(grads)
    if x_syn.requires_grad:
        x_syn.backward(pixel_grad)
    return loss.detach()


def distribution_match_loss(net: nn.Module, x_real: Tensor, x_syn: Tensor) -> Tensor:
    """DM: sum over classes of the squared distance between mean real and mean synthetic embeddings."""
    k = x_real.shape[0]
    with torch.no_grad():
        e_real = net.embed(x_real.flatten(0, 1)).reshape(k, x_real.shape[1], -1).mean(1)
    e_syn = net.embed(x_syn.flatten(0, 1)).reshape(k, x_syn.shape[1], -1).mean(1)
    return (e_real - e_syn).pow(2).sum()
