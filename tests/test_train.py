"""dasm.train and dasm.evaluate: the recipe, learning digits, NaN, checkpoint/resume, tidy results."""

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from dasm.coreset import check_ipc, random_indices
from dasm.evaluate import (PROTOCOLS, RESULT_COLUMNS, Protocol, append_results, evaluate_set,
                           make_augment, summarize, train_and_test)
from dasm.nets import get_network
from dasm.train import Recipe, TrainingDivergedError, accuracy, train_model

SMALL = {"width": 32}


def test_recipe_validates_inputs():
    for bad in ({"epochs": 0}, {"epochs": -3}, {"epochs": 2.5}, {"batch_size": 0}, {"lr": -1.0},
                {"lr": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Recipe(**bad)
    with pytest.raises(ValueError, match="choose one of dc, idc"):
        Recipe(schedule="step")


def test_lr_schedules():
    dc = Recipe(epochs=10, schedule="dc")
    assert [dc.lr_factor(e) for e in (0, 4, 5, 9)] == [1.0, 1.0, 0.1, 0.1]
    idc = Recipe(epochs=12, schedule="idc")
    assert [idc.lr_factor(e) for e in (0, 7, 8, 9, 10, 11)] == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04])
    cos = Recipe(epochs=4, schedule="cosine")
    assert cos.lr_factor(0) == 1.0 and cos.lr_factor(2) == pytest.approx(0.5)
    assert "ep300-bs256-sgd0.01m0.9wd0.0005-dc-dsa" == Recipe().describe()


def test_training_learns_digits(digits):
    torch.manual_seed(0)
    net = get_network("convnet", 1, 10, 8, **SMALL)
    before = accuracy(net, digits.x_test, digits.y_test, digits.normalize)
    logs = train_model(net, digits.x_train, digits.y_train, Recipe(epochs=15, batch_size=64, augment="none"),
                       normalize=digits.normalize, progress=False)
    after = accuracy(net, digits.x_test, digits.y_test, digits.normalize)
    assert before < 30 and after > 90
    assert logs[-1]["loss"] < logs[0]["loss"] and len(logs) == 15
    assert logs[-1]["lr"] == pytest.approx(0.001)  # dc schedule dropped the lr at half


def test_soft_labels_train(digits):
    torch.manual_seed(0)
    net = get_network("convnet", 1, 10, 8, **SMALL)
    soft = torch.nn.functional.one_hot(digits.y_train, 10).float() * 0.9 + 0.01
    train_model(net, digits.x_train, soft, Recipe(epochs=8, batch_size=64, augment="none"),
                normalize=digits.normalize, progress=False)
    assert accuracy(net, digits.x_test, digits.y_test, digits.normalize) > 80


def test_nan_is_caught_with_advice(digits):
    x = digits.x_train[:64].clone()
    x[0, 0, 0, 0] = float("nan")
    net = get_network("convnet", 1, 10, 8, **SMALL)
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        train_model(net, x, digits.y_train[:64], Recipe(epochs=1), progress=False)
    with pytest.raises(ValueError, match="labels"):
        train_model(net, x, digits.y_train[:10], Recipe(epochs=1), progress=False)


class _Stop(Exception):
    pass


def test_checkpoint_resume_matches_uninterrupted_run(digits, tmp_path):
    x, y = digits.x_train[:300], digits.y_train[:300]
    recipe = Recipe(epochs=4, batch_size=64)
    aug = make_augment(digits, recipe)

    def run(callback=None, ckpt=None):
        torch.manual_seed(0)
        net = get_network("convnet", 1, 10, 8, **SMALL)
        g = torch.Generator().manual_seed(0)
        train_model(net, x, y, recipe, normalize=digits.normalize, augment=aug, generator=g,
                    checkpoint=ckpt, progress=False, callback=callback)
        return net

    reference = run()

    def crash(log):
        if log["epoch"] == 1:
            raise _Stop

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Stop):
        run(callback=crash, ckpt=ckpt)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # epoch 0 was saved, epoch 1 was not
    resumed = run(ckpt=ckpt)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="different recipe"):
        torch.manual_seed(0)
        train_model(get_network("convnet", 1, 10, 8, **SMALL), x, y, replace(recipe, epochs=5),
                    checkpoint=ckpt, progress=False)


def test_seeded_evaluation_is_reproducible(digits):
    proto = Protocol(recipe=Recipe(epochs=3), net_kwargs=(("width", 16),))
    idx = random_indices(digits, 10, seed=0)
    a = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], proto, seed=3, progress=False)
    b = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], proto, seed=3, progress=False)
    assert a["test_acc"] == b["test_acc"] and a["train_acc"] == b["train_acc"]
    assert proto.id == "convnet-width16/ep3-bs256-sgd0.01m0.9wd0.0005-dc-dsa"


def test_resumed_evaluation_reports_the_whole_training_time(digits, tmp_path):
    proto = Protocol(recipe=Recipe(epochs=3), net_kwargs=(("width", 16),))
    idx = random_indices(digits, 10, seed=0)
    ckpt = tmp_path / "eval.ckpt"
    first = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], proto, checkpoint=ckpt, progress=False)
    epochs = torch.load(ckpt, weights_only=False)["logs"]
    assert first["seconds"] == pytest.approx(sum(log["seconds"] for log in epochs)) and first["seconds"] > 0
    # the checkpoint holds all 3 epochs: a rerun trains nothing, yet reports the same accuracy and time
    again = train_and_test(digits, digits.x_train[idx], digits.y_train[idx], proto, checkpoint=ckpt, progress=False)
    assert again["test_acc"] == first["test_acc"] and again["seconds"] == pytest.approx(first["seconds"])


def test_evaluate_set_returns_tidy_rows(digits, tmp_path):
    idx = random_indices(digits, 5, seed=0)
    proto = Protocol(recipe=Recipe(epochs=2), net_kwargs=(("width", 16),))
    df = evaluate_set(digits, digits.x_train[idx], digits.y_train[idx], method="random", ipc=5,
                      protocol=proto, seeds=[0, 1], archs=["convnet", "mlp"], progress=False, segments=1)
    assert list(df.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS and "segments" in df.columns
    assert len(df) == 2 * 2 * 3  # archs x seeds x (test_acc, train_acc, seconds)
    acc = df[df.metric == "test_acc"]
    assert acc.value.between(0, 100).all() and set(acc.arch) == {"convnet", "mlp"}
    assert set(df.protocol) == {proto.id, proto.with_arch("mlp").id}
    path = tmp_path / "results.csv"
    append_results(df, path)
    table = append_results(df, path)
    assert len(table) == 2 * len(df) and len(pd.read_csv(path)) == len(table)
    s = summarize(table)
    assert set(s["count"]) == {4} and {"mean", "std"} <= set(s.columns)


def test_protocols_match_the_references():
    assert PROTOCOLS["dc"].recipe.lr_factor(499) == 1.0 and PROTOCOLS["dc"].recipe.lr_factor(500) == 0.1
    r = PROTOCOLS["idc"].recipe
    assert (r.lr, r.momentum, r.weight_decay) == (0.01, 0.9, 5e-4)
    assert math.isclose(r.lr_factor(999), 0.04)


def test_ipc_checks(digits):
    with pytest.raises(ValueError, match="largest IPC here is"):
        random_indices(digits, 1000)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            check_ipc(digits, bad)
    idx = random_indices(digits, 7, seed=4)
    assert torch.bincount(digits.y_train[idx]).tolist() == [7] * 10
    assert torch.equal(idx, random_indices(digits, 7, seed=4))
