"""The paper preset is IDC's ``--reproduce`` protocol, value by value; the knobs it needs leave other presets alone.

References are to snu-mllab/Efficient-Dataset-Condensation (the IDC reference code), file:line, for
``python condense.py --reproduce -d fashion -f 2 --ipc 10``.
"""

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

import dasm.distill as distill_module
from dasm.config import preset_config
from dasm.cutmix import cutmix, mixed_loss, net_augmentation
from dasm.distill import DistillConfig, distill

FASHION_LR_IMG = 1e-4 * (28 / 32) ** 2   # at IPC 10; x IPC/10 otherwise


def test_paper_fashion_mnist_idc_is_the_reference_protocol():
    cfg = preset_config("paper", "fashion-mnist", "idc", 10)
    expected = {
        "method": "idc",
        "ipc": 10,                     # --ipc 10
        "factor": 2,                   # -f 2 (argument.py:159-163)
        "init": "mix",                 # factor > 1 -> init 'mix' (argument.py:346-348)
        "iterations": 2000,            # niter 2000 (misc/reproduce.py:10); n_iter = niter*100//inner_loop (condense.py:492)
        "match_steps": 100,            # inner_loop 100 (argument.py:200; condense.py:522)
        "net_steps": 8,                # n_data 500 (misc/reproduce.py:6) in batches of 64: train_epoch stops once
                                       # 500 images are seen (train.py:250-252), after 8 batches
        "net_source": "real",          # train_epoch(loader_real, ...) (condense.py:545-554)
        "net_after_last": True,        # the network update follows every inner step, the last too (condense.py:522-555)
        "lr_img": pytest.approx(FASHION_LR_IMG),   # 1e-4 (misc/reproduce.py:31-33) x tune_lr_img's (ipc/10) x
                                       # (size/32)^2, size 28 (argument.py:50-69, 290-295, 405)
        "momentum_img": 0.5,           # mom_img 0.5 (argument.py:231; condense.py:489)
        "lr_net": 0.01,                # lr 0.01 (argument.py:121; condense.py:502-505)
        "net_momentum": 0.9,           # momentum 0.9 (argument.py:122; condense.py:502-505)
        "net_weight_decay": 5e-4,      # weight decay 5e-4 (argument.py:123; condense.py:502-505)
        "cutmix_p": 0.5,               # mixup_net 'cut' (argument.py:133-137), mix_p 0.5 for fashion (argument.py:294),
                                       # CutMix in the network update (train.py:200-212)
        "batch_real": 64,              # batch_real 64 (argument.py:219-222)
        "batch_net": 64,               # the network updates iterate loader_real, batch_real 64 (condense.py:459)
        "batch_syn_max": 128,          # batch_syn_max 128 (argument.py:223-229; condense.py:528)
        "metric": "l1",                # metric l1 for fashion (misc/reproduce.py:32)
        "layers": None,                # l1's default, conv weights only: bias and fc off (argument.py:190-191;
                                       # condense.py:425-431)
        "augment": True,               # matching augments real and synthetic together (condense.py:532)
        "dsa_strategy": "color_crop_cutout",   # aug_type default (argument.py:174-178; condense.py:359-363)
        "dsa_mode": "multiple",        # colour and cutout always run, crop is the one strategy entry left
                                       # (misc/augment.py:33-41, 57-80): all three at every step
        "arch": "convnet",             # convnet (misc/reproduce.py:8)
        "width": 128,                  # int(128 * width), width 1.0 (argument.py:116; train.py:60-61)
        "depth": None,                 # None -> 3 for 28x28 (dasm.nets.default_depth); depth 3 (misc/reproduce.py:9)
        "norm": "instance",            # norm_type instance (argument.py:111-114)
        "grad_path": None,             # dasm's: how the gradients are computed, same result
        "checkpoint_every": 25,        # dasm's: checkpoints
        "seed": 0,                     # seed 0 (argument.py:124)
    }
    assert asdict(cfg) == expected


@pytest.mark.parametrize("ipc", [1, 50])
def test_paper_fashion_mnist_idc_other_ipcs(ipc):
    cfg = preset_config("paper", "fashion-mnist", "idc", ipc)
    ten = asdict(preset_config("paper", "fashion-mnist", "idc", 10))
    assert cfg.lr_img == pytest.approx(FASHION_LR_IMG * ipc / 10)   # param_ratio = ipc/10 (argument.py:64)
    assert {k: v for k, v in asdict(cfg).items() if k not in ("ipc", "lr_img")} == \
        {k: v for k, v in ten.items() if k not in ("ipc", "lr_img")}


def test_paper_mnist_idc_follows_its_own_reference_branch():
    cfg = preset_config("paper", "mnist", "idc", 10)
    assert cfg.lr_img == pytest.approx(1e-4)   # imsize_base 28 for mnist (argument.py:59-60): no size factor
    # factor > 1 on mnist: aug_type color_crop, mixup_net vanilla (misc/reproduce.py:25-30)
    assert (cfg.dsa_strategy, cfg.dsa_mode, cfg.cutmix_p) == ("color_crop", "multiple", 0.0)
    assert (cfg.net_momentum, cfg.net_weight_decay, cfg.net_after_last) == (0.9, 5e-4, True)


def test_other_presets_keep_the_engine_defaults():
    defaults = DistillConfig()
    assert (defaults.net_momentum, defaults.net_weight_decay, defaults.cutmix_p) == (0.5, 0.0, 0.0)
    assert (defaults.dsa_strategy, defaults.dsa_mode, defaults.net_after_last) == (None, "single", False)
    for preset, method in (("cpu", "idc"), ("cpu", "dsa"), ("paper", "dsa"), ("paper", "dc")):
        cfg = preset_config(preset, "fashion-mnist", method, 10)
        assert (cfg.net_momentum, cfg.net_weight_decay, cfg.cutmix_p, cfg.dsa_strategy, cfg.dsa_mode,
                cfg.net_after_last) == (0.5, 0.0, 0.0, None, "single", False), (preset, method)


def test_new_fields_are_validated():
    for bad, match in (({"net_momentum": 1.0}, "net_momentum"), ({"net_weight_decay": -1e-4}, "net_weight_decay"),
                       ({"cutmix_p": 1.5}, "cutmix_p"), ({"dsa_mode": "all"}, "unknown augmentation mode"),
                       ({"dsa_strategy": "color_blur"}, "unknown augmentation family"),
                       ({"net_after_last": 1}, "net_after_last")):
        with pytest.raises(ValueError, match=match):
            DistillConfig(**bad)


def _batch(n: int = 6, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i, its label is i."""
    y = torch.arange(n)
    return y.float().view(n, 1, 1, 1).expand(n, 1, side, side).clone(), y


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    x, y = _batch()
    boxes = 0
    for seed in range(20):
        mixed, y_pasted, keep = cutmix(x, y, 1.0, torch.Generator().manual_seed(seed))
        assert torch.equal(x, _batch()[0])   # the input is left alone
        for i in range(len(x)):
            pasted = mixed[i] != x[i]
            assert torch.all(mixed[i][pasted] == y_pasted[i].float())   # the box holds the partner's pixels
            if y_pasted[i] != y[i]:
                assert pasted.float().mean().item() == pytest.approx(1 - keep)   # its label's weight is its area
        boxes += keep < 1
        logits = torch.randn(len(x), 10, generator=torch.Generator().manual_seed(seed))
        soft = keep * F.one_hot(y, 10) + (1 - keep) * F.one_hot(y_pasted, 10)
        assert mixed_loss(logits, y, y_pasted, keep).item() == pytest.approx(F.cross_entropy(logits, soft).item())
    assert boxes > 10


def test_cutmix_is_a_no_op_that_draws_nothing_at_p_0():
    x, y = _batch()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    mixed, y_pasted, keep = cutmix(x, y, 0.0, g)
    assert mixed is x and y_pasted is y and keep == 1.0
    assert torch.equal(g.get_state(), state)


def test_network_updates_leave_cutout_to_cutmix():
    augment = preset_config("paper", "fashion-mnist", "idc", 10).augmentation("fashion-mnist")
    assert (augment.families, augment.mode) == (("color", "crop", "cutout"), "multiple")
    net = net_augmentation(augment, 0.5)   # aug_type less cutout when mixup_net is 'cut' (condense.py:365-369)
    assert (net.families, net.mode) == (("color", "crop"), "multiple")
    assert net_augmentation(augment, 0.0) is augment


def test_default_fields_keep_the_cpu_preset_bit_for_bit(digits):
    """The cpu preset's digits set as it was before the paper preset's knobs existed (one thread: the
    exact values; another thread count moves the sum by about 1e-6)."""
    syn, hist = distill(digits, preset_config("cpu", "digits", "idc", 2, iterations=2), progress=False)
    images = syn.images.double().cpu()
    assert images.sum().item() == pytest.approx(403.7675886005163, abs=1e-5)
    picks = images.flatten()[[0, 17, 100, 555, -1]].tolist()
    assert picks == pytest.approx([0.0007180273532867432, 0.249581441283226, -0.04603928327560425,
                                   1.0020012855529785, 0.004550755023956299], abs=1e-6)
    assert hist.loss.tolist() == pytest.approx([91.35655670166015, 73.2845401763916], rel=1e-5)


def test_paper_preset_runs_an_outer_iteration_on_digits(digits, monkeypatch):
    cfg = preset_config("paper", "digits", "idc", 2, iterations=1, match_steps=2)
    keeps: list[float] = []

    def spy(*args, **kwargs):
        out = cutmix(*args, **kwargs)
        keeps.append(out[2])
        return out

    monkeypatch.setattr(distill_module, "cutmix", spy)
    syn, hist = distill(digits, cfg, progress=False)
    assert len(hist) == 1 and torch.isfinite(syn.images).all()
    assert len(keeps) == cfg.match_steps * cfg.net_steps   # a network update after each step, the last too
    assert any(k < 1 for k in keeps)                      # and some of its batches were CutMixed
