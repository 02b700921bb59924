"""Tests for dasm.augment (Differentiable Siamese Augmentation)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from dasm.augment import DEFAULT_STRATEGY, FAMILIES, NO_FLIP_DATASETS, DSA, AugParams

ALL_STRATEGIES = [*FAMILIES, DEFAULT_STRATEGY]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 4, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=gen(seed))


def params(ops, n=1, size=(32, 32), families=("manual",)) -> AugParams:
    return AugParams(families=families, n=n, size=size, ops=tuple(ops))


# ---------------------------------------------------------------------------- siamese


@pytest.mark.parametrize("mode", ["single", "multiple"])
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_siamese_same_transform_for_every_sample(strategy, mode):
    dsa = DSA(strategy=strategy, mode=mode)
    real, syn = images(5, seed=1), images(3, seed=2)
    for seed in range(6):  # several draws, so flip is seen both ways
        out_real, out_syn = dsa.siamese(real, syn, generator=gen(seed))
        joint = dsa.apply(torch.cat([real, syn]), dsa.sample(1, (32, 32), gen(seed)))
        torch.testing.assert_close(out_real, joint[:5])
        torch.testing.assert_close(out_syn, joint[5:])
        # identical inputs in different batches get identical outputs
        twin_a, twin_b = dsa.siamese(real[:2], real[:2].clone(), generator=gen(seed))
        torch.testing.assert_close(twin_a, twin_b)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_same_seed_reproduces(strategy):
    dsa = DSA(strategy=strategy)
    x = images()
    torch.testing.assert_close(dsa.siamese(x, generator=gen(7))[0], dsa.siamese(x, generator=gen(7))[0])
    torch.testing.assert_close(dsa(x, generator=gen(7)), dsa(x, generator=gen(7)))


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_different_seeds_differ(strategy):
    dsa = DSA(strategy=strategy)
    x = images()
    outs = [dsa.siamese(x, generator=gen(s))[0] for s in range(8)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_single_mode_picks_one_family_uniformly():
    dsa = DSA()
    g = gen(0)
    counts = Counter()
    for _ in range(600):
        p = dsa.sample(1, (32, 32), g)
        assert len(p.families) == 1
        counts[p.families[0]] += 1
    assert set(counts) == set(FAMILIES)
    assert all(60 <= c <= 140 for c in counts.values()), counts


def test_multiple_mode_applies_every_family_in_order():
    p = DSA(mode="multiple").sample(3, (32, 32), gen(0))
    assert p.families == FAMILIES
    names = [name for name, _ in p.ops]
    assert names == ["brightness", "saturation", "contrast", "crop", "cutout", "flip", "scale", "rotate"]
    assert all(t.shape[0] == 3 for _, t in p.ops)
    assert DSA(mode="M").mode == "multiple" and DSA(mode="S").mode == "single"


# ---------------------------------------------------------------------------- per sample


@pytest.mark.parametrize("strategy", ["crop", "color", "cutout", "scale", "rotate"])
def test_per_sample_draws_differ_within_batch(strategy):
    dsa = DSA(strategy=strategy)
    x = images(1).expand(16, -1, -1, -1).contiguous()
    out = dsa(x, generator=gen(3))
    assert out.shape == x.shape
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 1


def test_per_sample_flip_mixes():
    out = DSA(strategy="flip")(images(1).expand(64, -1, -1, -1), generator=gen(0))
    flipped = sum(torch.equal(o, images(1)[0].flip(2)) for o in out)
    assert 10 < flipped < 54


def test_shared_draw_broadcasts_to_any_batch_size():
    dsa = DSA(mode="multiple")
    p = dsa.sample(1, (32, 32), gen(0))
    for n in (1, 2, 7):
        assert dsa.apply(images(n), p).shape == (n, 3, 32, 32)
    with pytest.raises(ValueError, match="n=3"):
        dsa.apply(images(5), dsa.sample(3, (32, 32), gen(0)))
    with pytest.raises(ValueError, match="size"):
        dsa.apply(images(2, h=28, w=28), p)


# ---------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("mode", ["single", "multiple"])
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_gradients_reach_input(strategy, mode):
    dsa = DSA(strategy=strategy, mode=mode, prob_flip=1.0)
    weights = torch.randn(4, 3, 32, 32, generator=gen(9))
    for augment in (lambda x: dsa(x, generator=gen(1)), lambda x: dsa.siamese(x, generator=gen(1))[0]):
        x = images().requires_grad_(True)
        (augment(x) * weights).sum().backward()
        assert x.grad is not None
        assert torch.isfinite(x.grad).all()
        assert x.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("dataset", ["digits", "mnist", "svhn", "MNIST"])
def test_no_flip_for_digit_datasets(dataset):
    dsa = DSA.for_dataset(dataset)
    assert "flip" not in dsa.families
    assert dsa.describe() == "dsa:color_crop_cutout_scale_rotate/single"
    assert DSA.for_dataset(dataset, strategy="flip").is_identity


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10", "cifar100"])
def test_flip_kept_for_other_datasets(dataset):
    dsa = DSA.for_dataset(dataset, mode="multiple")
    assert dsa.families == FAMILIES
    assert dsa.describe() == "dsa:color_crop_cutout_flip_scale_rotate/multiple"
    assert NO_FLIP_DATASETS == {"digits", "mnist", "svhn"}


def test_describe_is_stable_and_marks_non_defaults():
    assert repr(DSA()) == "dsa:color_crop_cutout_flip_scale_rotate/single"
    assert DSA("none").describe() == "dsa:none"
    assert DSA(strategy="crop", crop=0.25).describe() == "dsa:crop/single(crop=0.25)"


# ---------------------------------------------------------------------------- ranges


def test_crop_moves_a_pixel_by_at_most_s():
    s = int(32 * 0.125 + 0.5)
    x = torch.zeros(400, 1, 32, 32)
    x[:, :, 16, 16] = 1.0
    out = DSA(strategy="crop")(x, generator=gen(0))
    flat = out.flatten(1).argmax(dim=1)
    assert torch.all(out.flatten(1).max(dim=1).values == 1.0)  # never pushed off the image
    dy, dx = flat // 32 - 16, flat % 32 - 16
    assert dy.abs().max() == s and dx.abs().max() == s  # whole range used, never exceeded
    assert (dy != dx).any()  # axes are independent


def test_crop_zero_fills():
    x = torch.ones(1, 2, 8, 8)
    out = DSA(strategy="crop").apply(x, params([("crop", torch.tensor([[2, -1]]))], size=(8, 8)))
    # out[i, j] = x[i + 2, j - 1]: the last 2 rows and the first column are zero.
    expected = torch.zeros(8, 8)
    expected[:6, 1:] = 1.0
    assert torch.equal(out[0, 0], expected) and torch.equal(out[0, 1], expected)


@pytest.mark.parametrize("side", [32, 28, 30])
def test_cutout_zeroes_a_square(side):
    size = int(side * 0.5 + 0.5)
    dsa = DSA(strategy="cutout")
    x = torch.ones(300, 3, side, side)
    p = dsa.sample(300, (side, side), gen(0))
    out = dsa.apply(x, p)
    box = p.get("cutout")
    assert torch.all(box[:, 2] - box[:, 0] == size) and torch.all(box[:, 3] - box[:, 1] == size)
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))  # all channels cut together
    assert torch.equal((out == 0).sum(dim=(1, 2, 3)), 3 * zeros)
    inside = (box[:, :2] >= 0).all(dim=1) & (box[:, 2:] <= side).all(dim=1)
    assert inside.any() and (~inside).any()
    assert torch.all(zeros[inside] == size * size)
    assert torch.all(zeros <= size * size) and torch.all(zeros > 0)
    # the zeros form the (clipped) box
    for i in range(0, 300, 37):
        t, l, b, r = (int(v) for v in box[i])
        mask = torch.ones(side, side)
        mask[max(t, 0) : b, max(l, 0) : r] = 0
        assert torch.equal(out[i, 0], mask)


def test_flip_with_probability_one_and_zero():
    x = images()
    torch.testing.assert_close(DSA(strategy="flip", prob_flip=1.0)(x, generator=gen(0)), torch.flip(x, [3]))
    torch.testing.assert_close(DSA(strategy="flip", prob_flip=0.0)(x, generator=gen(0)), x)


def test_color_ranges():
    dsa = DSA(strategy="color")
    p = dsa.sample(2000, (8, 8), gen(0))
    b, s, c = p.get("brightness"), p.get("saturation"), p.get("contrast")
    assert b.min() >= -0.5 and b.max() < 0.5 and b.min() < -0.45 and b.max() > 0.45
    assert s.min() >= 0.0 and s.max() < 2.0
    assert c.min() >= 0.5 and c.max() < 1.5
    x = images(2000, h=8, w=8)
    assert dsa.apply(x, p).shape == x.shape


def test_brightness_on_constant_image_shifts_by_at_most_half():
    # On an image constant across pixels and channels, saturation and contrast are no-ops.
    x = torch.full((256, 3, 16, 16), 0.3)
    out = DSA(strategy="color")(x, generator=gen(0))
    delta = out - x
    assert out.shape == x.shape
    assert delta.abs().max() <= 0.5 + 1e-6
    assert delta.abs().max() > 0.4
    torch.testing.assert_close(delta, delta[:, :1, :1, :1].expand_as(delta))  # uniform shift


def test_saturation_and_contrast_ops():
    x = images(2)
    dsa = DSA(strategy="color")
    gray = dsa.apply(x, params([("saturation", torch.tensor([0.0]))]))
    torch.testing.assert_close(gray, x.mean(dim=1, keepdim=True).expand_as(x))
    flat = dsa.apply(x, params([("contrast", torch.tensor([0.0]))]))
    torch.testing.assert_close(flat, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x))


def test_scale_and_rotate_ranges():
    p = DSA(strategy="scale").sample(2000, (32, 32), gen(0)).get("scale")
    assert p.shape == (2000, 2)
    assert p.min() >= 1 / 1.2 - 1e-6 and p.max() <= 1.2 + 1e-6
    assert not torch.allclose(p[:, 0], p[:, 1])  # independent sx, sy
    angle = DSA(strategy="rotate").sample(2000, (32, 32), gen(0)).get("rotate")
    assert angle.abs().max() <= math.radians(15) + 1e-6 and angle.abs().max() > math.radians(14)


def test_affine_identity_and_quarter_turn():
    x = images(2, h=9, w=9)
    dsa = DSA(strategy="scale_rotate")
    ident = params([("scale", torch.tensor([[1.0, 1.0]])), ("rotate", torch.tensor([0.0]))], size=(9, 9))
    torch.testing.assert_close(dsa.apply(x, ident), x)
    quarter = dsa.apply(x, params([("rotate", torch.tensor([math.pi / 2]))], size=(9, 9)))
    torch.testing.assert_close(quarter, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- validation


def test_unknown_family_raises_with_valid_names():
    with pytest.raises(ValueError, match="'blur'") as info:
        DSA(strategy="crop_blur")
    for name in FAMILIES:
        assert name in str(info.value)


def test_unknown_mode_raises_with_valid_names():
    with pytest.raises(ValueError, match="single.*multiple"):
        DSA(mode="both")


@pytest.mark.parametrize("strategy", ["none", "None", ""])
def test_none_strategy_is_identity(strategy):
    dsa = DSA(strategy=strategy)
    x = images()
    assert dsa.is_identity
    assert torch.equal(dsa(x, generator=gen(0)), x)
    a, b = dsa.siamese(x, x + 1, generator=gen(0))
    assert torch.equal(a, x) and torch.equal(b, x + 1)
    assert torch.equal(dsa.apply(x, dsa.sample(1, (32, 32))), x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seeded_draws_match_between_cpu_and_cuda():
    dsa = DSA(mode="multiple")
    x = images()
    cpu = dsa.siamese(x, generator=gen(5))[0]
    gpu = dsa.siamese(x.cuda(), generator=gen(5))[0]
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dsa(x.cuda(), generator=gen(5)).cpu(), dsa(x, generator=gen(5)), atol=1e-4, rtol=1e-4)
