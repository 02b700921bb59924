"""CutMix in the network updates of matching, as IDC's updates do it.

IDC trains the matching network on the synthetic set with CutMix (``--mixup_net cut``, probability
0.5 for Fashion-MNIST, box share from Beta(1, 1)) and, while CutMix is on, without DSA's cutout.
This module holds the mix, the loss it calls for, and the augmentation it leaves; ``distill``'s
network update applies them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .augment import DSA


def cutmix(x: Tensor, y: Tensor, p: float, g: torch.Generator) -> tuple[Tensor, Tensor, float]:
    """With probability ``p``, CutMix the batch ``(x, y)`` as IDC's network updates do.

    A box is cut from every image of ``x`` and filled with the same box of another image of the
    batch (a random permutation). Returns the images, the labels of the pasted images and the
    weight of ``y`` in the loss: 1 - the box's area over the image's (``y``'s partner gets the
    rest). The box's area share is drawn from Beta(1, 1) (uniform: IDC's ``--beta 1``), its
    centre uniformly over the pixels; its sides, ``int(side * sqrt(share))``, are clipped at the
    border. Random numbers come from ``g`` only, and none at all when ``p`` is 0; without a box
    ``(x, y, 1.0)`` comes back unchanged.
    """
    if p <= 0 or float(torch.rand(1, generator=g)) >= p:
        return x, y, 1.0
    n, _, h, w = x.shape
    cut = math.sqrt(1.0 - float(torch.rand(1, generator=g)))
    cy, cx = (int(torch.randint(side, (1,), generator=g)) for side in (h, w))
    top, bottom = max(cy - int(h * cut) // 2, 0), min(cy + int(h * cut) // 2, h)
    left, right = max(cx - int(w * cut) // 2, 0), min(cx + int(w * cut) // 2, w)
    perm = torch.randperm(n, generator=g).to(x.device)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    return mixed, y[perm], 1.0 - (bottom - top) * (right - left) / (h * w)


def mixed_loss(logits: Tensor, y: Tensor, y_pasted: Tensor, keep: float) -> Tensor:
    """Cross-entropy against ``y`` weighted ``keep`` plus against ``y_pasted`` weighted ``1 - keep``."""
    loss = F.cross_entropy(logits, y)
    return loss if keep == 1.0 else loss * keep + F.cross_entropy(logits, y_pasted) * (1.0 - keep)


def net_augmentation(augment: DSA | None, cutmix_p: float) -> DSA | None:
    """The network updates' DSA: matching's, less cutout while CutMix is on (IDC's rule)."""
    if augment is None or cutmix_p == 0 or "cutout" not in augment.families:
        return augment
    return DSA(strategy="_".join(f for f in augment.families if f != "cutout") or "none", mode=augment.mode)
