"""Per-sample difficulty scores of real data: one float per sample, higher = harder.

Net-based scores (computed batched, in eval mode, without gradients, averaged over one or
several networks): ``loss`` (cross-entropy), ``el2n`` (Paul et al. 2021), ``margin``,
``grand`` (GraNd restricted to the last linear layer, in closed form) and ``learnability``
(loss under a probe minus loss under a reference net trained on all real data).
``forgetting`` (Toneva et al. 2019) is a property of a training run instead: see
:class:`ForgettingTracker` and :func:`forgetting_scores`.

Every function returns a float32 tensor of shape ``(N,)`` on the device of ``x``; the
networks may live on another device (each chunk is moved to the network's device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data import Dataset
from .device import seed_everything
from .evaluate import make_augment
from .nets import get_network
from .train import Recipe, TrainingDivergedError, predict, train_model

SCORES = ("loss", "el2n", "margin", "grand", "forgetting", "learnability")

Normalize = Callable[[Tensor], Tensor] | None
Nets = nn.Module | Sequence[nn.Module]


# ---------------------------------------------------------------------------------------
# Validation and the batched forward pass shared by every net-based score
# ---------------------------------------------------------------------------------------

def _as_net_list(nets: Nets) -> list[nn.Module]:
    if isinstance(nets, nn.Module):
        return [nets]
    out = list(nets)
    if not out:
        raise ValueError("Got an empty list of networks: pass at least one network to score with.")
    for i, net in enumerate(out):
        if not isinstance(net, nn.Module):
            raise ValueError(f"nets[{i}] is a {type(net).__name__}, not a torch nn.Module.")
    return out


def _check_xy(x: Tensor, y: Tensor) -> None:
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels.")
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must be a 1-D tensor of integer class labels, got dtype {y.dtype} "
                         f"and shape {tuple(y.shape)} (soft labels are not supported here).")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def _net_device(net: nn.Module, fallback: torch.device) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else fallback


@torch.no_grad()
def _per_net(nets: Nets, x: Tensor, y: Tensor, normalize: Normalize, batch_size: int,
             fn: Callable[[nn.Module, Tensor, Tensor], Tensor]) -> Tensor:
    """Mean over ``nets`` of ``fn(net, x_chunk, y_chunk)`` computed chunk by chunk in eval mode."""
    nets = _as_net_list(nets)
    _check_xy(x, y)
    _check_batch_size(batch_size)
    total = torch.zeros(len(x), dtype=torch.float32, device=x.device)
    for net in nets:
        was_training = net.training
        net.eval()
        dev = _net_device(net, x.device)
        try:
            parts = []
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size].to(dev)
                yb = y[i:i + batch_size].to(dev)
                if normalize is not None:
                    xb = normalize(xb)
                parts.append(fn(net, xb, yb).float().to(x.device))
        finally:
            net.train(was_training)
        if parts:
            total += torch.cat(parts)
    out = total / len(nets)
    return _check_not_nan(out)


def _check_not_nan(scores: Tensor) -> Tensor:
    if torch.isnan(scores).any():
        raise FloatingPointError(f"{int(torch.isnan(scores).sum())} difficulty scores are NaN: the network's "
                                 "outputs are not finite (check the inputs and the network's weights).")
    return scores


def _check_labels(logits: Tensor, y: Tensor) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
        raise ValueError(f"Labels must lie in [0, {logits.shape[1] - 1}] for a network with "
                         f"{logits.shape[1]} outputs; got labels in [{int(y.min())}, {int(y.max())}].")


def _residual(logits: Tensor, y: Tensor) -> Tensor:
    """softmax(logits) - onehot(y), in float32."""
    _check_labels(logits, y)
    p = torch.softmax(logits.float(), dim=1)
    return p - F.one_hot(y, logits.shape[1]).to(p.dtype)


# ---------------------------------------------------------------------------------------
# Net-based scores
# ---------------------------------------------------------------------------------------

def _loss_of(logits: Tensor, y: Tensor) -> Tensor:
    logits = logits.float()
    _check_labels(logits, y)
    return F.cross_entropy(logits, y, reduction="none")


def _loss_fn(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return _loss_of(net(x), y)


def loss_scores(nets: Nets, x: Tensor, y: Tensor, normalize: Normalize = None,
                batch_size: int = 1024) -> Tensor:
    """Cross-entropy loss of each sample; with several nets, the mean over the nets."""
    return _per_net(nets, x, y, normalize, batch_size, _loss_fn)


def el2n_scores(nets: Nets, x: Tensor, y: Tensor, normalize: Normalize = None,
                batch_size: int = 1024) -> Tensor:
    """EL2N: the L2 norm of softmax(logits) - onehot(y) per sample, averaged over the nets (Paul et al. 2021)."""
    return _per_net(nets, x, y, normalize, batch_size, lambda net, xb, yb: _el2n_of(net(xb), yb))


def _el2n_of(logits: Tensor, y: Tensor) -> Tensor:
    return _residual(logits, y).norm(dim=1)


def _margin_of(logits: Tensor, y: Tensor) -> Tensor:
    logits = logits.float()
    _check_labels(logits, y)
    if logits.shape[1] < 2:
        raise ValueError("The margin score needs at least two classes.")
    true = logits.gather(1, y[:, None]).squeeze(1)
    wrong = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return wrong - true


def _margin_fn(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return _margin_of(net(x), y)


def margin_scores(nets: Nets, x: Tensor, y: Tensor, normalize: Normalize = None,
                  batch_size: int = 1024) -> Tensor:
    """Hardness by margin: the largest wrong-class logit minus the true-class logit (positive =
    misclassified), averaged over the nets."""
    return _per_net(nets, x, y, normalize, batch_size, _margin_fn)


def _grand_fn(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    embed, head = getattr(net, "embed", None), getattr(net, "classifier", None)
    if not callable(embed) or not isinstance(head, nn.Linear):
        raise ValueError(f"GraNd needs a network with .embed(x) and a final nn.Linear .classifier; "
                         f"{type(net).__name__} has not (build it with dasm.nets.get_network).")
    h = embed(x).float()
    r = _residual(head(h), y).norm(dim=1)
    sq = h.pow(2).sum(dim=1) + (1.0 if head.bias is not None else 0.0)
    return r * sq.sqrt()


def grand_scores(nets: Nets, x: Tensor, y: Tensor, normalize: Normalize = None,
                 batch_size: int = 1024) -> Tensor:
    """GraNd restricted to the last layer: the norm of the per-sample cross-entropy gradient w.r.t. the
    classifier's weight and bias, ||p - onehot|| * sqrt(||h||^2 + 1) with h = net.embed(x); averaged over nets."""
    return _per_net(nets, x, y, normalize, batch_size, _grand_fn)


def learnability_scores(probe: nn.Module, reference: nn.Module, x: Tensor, y: Tensor,
                        normalize: Normalize = None, batch_size: int = 1024) -> Tensor:
    """Loss under ``probe`` minus loss under ``reference`` (a net trained on all real data): high means
    the sample is learnable but the probe has not learned it yet."""
    if reference is None:
        raise ValueError("learnability needs a reference network trained on all real data "
                         "(see dasm.difficulty.reference_network).")
    return (loss_scores(probe, x, y, normalize, batch_size)
            - loss_scores(reference, x, y, normalize, batch_size))


# ---------------------------------------------------------------------------------------
# Forgetting events
# ---------------------------------------------------------------------------------------

class ForgettingTracker:
    """Per-example correctness at every presentation during training, counting forgetting events
    (correct at one presentation, wrong at the next) as in Toneva et al. 2019.

    The first presentation of a sample can never be a forgetting event. Samples never classified
    correctly (including samples never presented) are "never learned": the reference gives them
    infinite forgetting; :meth:`scores` ranks them just above every learned sample instead.
    """

    def __init__(self, n: int, device: str | torch.device | None = None):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int (the number of samples), got {n!r}.")
        self.n = n
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._forgets = torch.zeros(n, dtype=torch.long, device=self.device)
        self._presented = torch.zeros(n, dtype=torch.long, device=self.device)
        self._last = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._ever = torch.zeros(n, dtype=torch.bool, device=self.device)

    def update(self, indices: Tensor, correct: Tensor) -> None:
        """Record one presentation of the samples ``indices`` (distinct) with boolean ``correct``."""
        indices = torch.as_tensor(indices).to(self.device).long().reshape(-1)
        correct = torch.as_tensor(correct).to(self.device).bool().reshape(-1)
        if len(indices) != len(correct):
            raise ValueError(f"indices has {len(indices)} entries but correct has {len(correct)}.")
        if len(indices) == 0:
            return
        if int(indices.min()) < 0 or int(indices.max()) >= self.n:
            raise ValueError(f"indices must lie in [0, {self.n - 1}], got values in "
                             f"[{int(indices.min())}, {int(indices.max())}].")
        if len(torch.unique(indices)) != len(indices):
            raise ValueError("indices repeats a sample within one update(); present each sample once per call.")
        forgot = self._last[indices] & ~correct
        self._forgets[indices] += forgot.long()
        self._presented[indices] += 1
        self._ever[indices] |= correct
        self._last[indices] = correct

    def presentations(self) -> Tensor:
        """How many times each sample was presented (long)."""
        return self._presented.clone()

    def counts(self) -> Tensor:
        """Number of forgetting events (correct -> wrong transitions) per sample, as float32."""
        return self._forgets.float()

    def never_learned(self) -> Tensor:
        """Boolean mask of the samples never classified correctly in any presentation."""
        return ~self._ever

    def scores(self) -> Tensor:
        """Forgetting counts, with never-learned samples set to (max count among learned samples + 1)
        so that they rank hardest and sort cleanly (0 + 1 when no sample was ever learned)."""
        s = self.counts()
        never = self.never_learned()
        learned = s[~never]
        top = float(learned.max()) if len(learned) else 0.0
        s[never] = top + 1.0
        return s


def forgetting_scores(data_or_x: Dataset | Tensor, y: Tensor | None = None, arch: str = "convnet",
                      epochs: int = 10, seed: int = 0, normalize: Normalize = None, batch_size: int = 128,
                      progress: bool = False, *, num_classes: int | None = None,
                      **net_kwargs) -> tuple[Tensor, Tensor]:
    """Train a fresh seeded ``arch`` on ``(x, y)`` with plain SGD (lr 0.01, momentum 0.9, wd 5e-4, no
    augmentation) for ``epochs``, recording every mini-batch's correctness before its update;
    return ``(scores, never_learned_mask)`` from a :class:`ForgettingTracker`.

    ``data_or_x`` is a :class:`Dataset` (its training split and ``normalize`` are used; ``y`` may be
    omitted) or an image tensor with labels ``y``; ``num_classes`` defaults to the dataset's, or
    ``y.max() + 1``.
    """
    if isinstance(data_or_x, Dataset):
        data = data_or_x
        x = data.x_train
        y = data.y_train if y is None else y
        normalize = data.normalize if normalize is None else normalize
        num_classes = data.num_classes if num_classes is None else num_classes
    else:
        x = data_or_x
        if y is None:
            raise ValueError("forgetting_scores needs labels y when given an image tensor instead of a Dataset.")
    _check_xy(x, y)
    _check_batch_size(batch_size)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    if len(x) == 0:
        raise ValueError("Cannot compute forgetting scores of an empty set.")
    if x.dim() != 4:
        raise ValueError(f"x must be an NCHW image tensor, got shape {tuple(x.shape)}.")
    if num_classes is None:
        num_classes = int(y.max()) + 1

    g = seed_everything(seed)
    net = get_network(arch, int(x.shape[1]), num_classes, (int(x.shape[2]), int(x.shape[3])),
                      **net_kwargs).to(x.device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tracker = ForgettingTracker(len(x), device=x.device)
    n, bs = len(x), min(batch_size, len(x))
    net.train()
    bar = tqdm(total=epochs * math.ceil(n / bs), desc="forgetting", disable=not progress,
               leave=False, unit="step")
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g).to(x.device)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if normalize is not None:
                xb = normalize(xb)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"Training loss became {loss.item()} at epoch {epoch} "
                                            "while recording forgetting events; check the inputs for NaN.")
            tracker.update(idx, logits.detach().argmax(1) == yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    return tracker.scores(), tracker.never_learned()



def probe_forgetting(data: Dataset, x: Tensor, y: Tensor, recipe: Recipe, seed: int, *, checkpoints: int = 10,
                     arch: str = "convnet", **net_kwargs) -> Tensor:
    """Forgetting of every real training sample of ``data`` while a fresh seeded ``arch`` trains on ``(x, y)``
    (e.g. a synthetic set) with ``recipe``: the real samples' correctness is checked ``checkpoints`` times."""
    tracker = ForgettingTracker(len(data.y_train), device=data.device)
    every = max(1, recipe.epochs // checkpoints)
    torch.manual_seed(seed)
    net = get_network(arch, data.channels, data.num_classes, data.im_size, **net_kwargs).to(data.device)
    all_ix = torch.arange(len(data.y_train), device=data.device)

    def check(log: dict) -> None:
        if (log["epoch"] + 1) % every == 0:
            tracker.update(all_ix, predict(net, data.x_train, data.normalize).argmax(1) == data.y_train)

    train_model(net, x, y, recipe, normalize=data.normalize, augment=make_augment(data, recipe),
                generator=torch.Generator().manual_seed(seed), progress=False, callback=check)
    return tracker.scores()

# ---------------------------------------------------------------------------------------
# The reference network and the dispatcher
# ---------------------------------------------------------------------------------------

def reference_network(data: Dataset, arch: str = "convnet", epochs: int = 20, seed: int = 0,
                      progress: bool = False, *, recipe: Recipe | None = None, desc: str = "reference",
                      **net_kwargs) -> nn.Module:
    """A fresh seeded ``arch`` trained on all real training data with the evaluation recipe
    (``Recipe(epochs=epochs)`` unless ``recipe`` is given, DSA augmentation), returned in eval mode.
    ``desc`` labels its progress bar."""
    recipe = Recipe(epochs=epochs) if recipe is None else recipe
    g = seed_everything(seed)
    net = get_network(arch, data.channels, data.num_classes, data.im_size, **net_kwargs).to(data.device)
    train_model(net, data.x_train, data.y_train, recipe, normalize=data.normalize,
                augment=make_augment(data, recipe), generator=g, progress=progress,
                desc=f"{desc} {arch}")
    return net.eval()


LOGIT_SCORES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"loss": _loss_of, "el2n": _el2n_of, "margin": _margin_of}


def scores_from_logits(score: str, logits: Tensor, y: Tensor) -> Tensor:
    """``loss``, ``el2n`` or ``margin`` of each sample from one network's logits (already computed, e.g.
    by :func:`dasm.train.predict`, so the pass that measures a probe's accuracy also scores the data)."""
    if score not in LOGIT_SCORES:
        raise ValueError(f"{score!r} is not computed from logits alone; these are: {', '.join(LOGIT_SCORES)}.")
    _check_xy(logits, y)
    out = LOGIT_SCORES[score](logits, y).float()
    return _check_not_nan(out)


_NET_SCORES: dict[str, Callable[..., Tensor]] = {
    "loss": loss_scores, "el2n": el2n_scores, "margin": margin_scores, "grand": grand_scores,
}


def score_samples(score: str, nets: Nets, x: Tensor, y: Tensor, normalize: Normalize = None,
                  reference: nn.Module | None = None, batch_size: int = 1024) -> Tensor:
    """Score every sample with the net-based score named ``score`` (one of ``SCORES`` but ``forgetting``);
    ``learnability`` uses ``nets`` (its first net if several) as the probe against ``reference``."""
    key = score.strip().lower() if isinstance(score, str) else score
    if key not in SCORES:
        raise ValueError(f"Unknown difficulty score {score!r}; valid scores: {', '.join(SCORES)}.")
    if key == "forgetting":
        raise ValueError("'forgetting' is not computed from trained networks: it records a training run. "
                         "Use dasm.difficulty.forgetting_scores(data_or_x, y, ...) instead.")
    if key == "learnability":
        if reference is None:
            raise ValueError("The 'learnability' score needs reference=<a network trained on all real data> "
                             "(see dasm.difficulty.reference_network).")
        probe = _as_net_list(nets)[0]
        return learnability_scores(probe, reference, x, y, normalize, batch_size)
    return _NET_SCORES[key](nets, x, y, normalize, batch_size)
