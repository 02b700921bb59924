"""dasm.analysis.figures and benchmarks/figures.py: every figure with its controls, the numbers, and the caches
that make a second call train nothing."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dasm.analysis.figures import difficulty_reference, fast_runs, make_figures  # noqa: E402
from dasm.difficulty import loss_scores  # noqa: E402

STEMS = {"difficulty_hist_loss", "difficulty_hist_forgetting", "gradient_alignment", "embedding", "redundancy"}


@pytest.fixture(scope="module")
def runs(digits, tmp_path_factory):
    return fast_runs(digits, tmp_path_factory.mktemp("runs"), ipc=2, iterations=2)


def _no_training(monkeypatch):
    """Make every way a figure could train a network fail loudly."""
    import dasm.difficulty
    import dasm.evaluate
    from dasm.analysis import errors

    def boom(*args, **kwargs):
        raise AssertionError("trained a network although everything was cached")
    for module in (errors, dasm.evaluate, dasm.difficulty):
        monkeypatch.setattr(module, "train_model", boom)
    monkeypatch.setattr(dasm.difficulty, "forgetting_scores", boom)


def test_only_draws_the_chosen_figures(digits, runs, tmp_path):
    files = make_figures(digits, runs, tmp_path / "figs", fast=True, only=["saturation", "redundancy"])
    assert {f.stem for f in files} == {"saturation", "gain_over_idc", "redundancy", "numbers"}
    assert not list((tmp_path / "figs" / "cache").glob("difficulty-*"))   # no figure asked for the reference
    with pytest.raises(ValueError, match="Unknown figures"):
        make_figures(digits, runs, tmp_path / "figs", only=["umap"])


def test_every_figure_has_its_controls_and_a_second_call_trains_nothing(digits, runs, tmp_path, monkeypatch):
    out = tmp_path / "figs"
    files = make_figures(digits, runs, out, fast=True, only=["histograms", "alignment", "embeddings", "redundancy"])
    assert {f.stem for f in files} == STEMS | {"numbers"}
    for score in ("loss", "forgetting"):
        errors = pd.read_csv(out / f"difficulty_hist_{score}.csv")
        assert {"random", "idc-starts", "idc", "dasm", "full"} <= set(errors["set"])
    assert {"random", "idc-starts", "full"} <= set(pd.read_csv(out / "gradient_alignment.csv")["set"])
    assert {"random", "idc-starts", "real"} <= set(pd.read_csv(out / "embedding.csv")["set"])
    redundancy = pd.read_csv(out / "redundancy.csv")
    assert "random" in set(redundancy["set"]) and redundancy["seed"].nunique() == 3   # over three seeds
    numbers = pd.read_csv(out / "numbers.csv", keep_default_na=False, na_values=[""])
    assert {"errors_loss", "errors_forgetting", "alignment", "embedding", "redundancy"} == set(numbers["figure"])
    assert set(numbers.loc[numbers["baseline"].notna(), "baseline"]) == {"random", "full"}
    _no_training(monkeypatch)
    again = make_figures(digits, runs, out, fast=True, only=["histograms", "alignment", "embeddings", "redundancy"])
    assert {f.stem for f in again} == STEMS | {"numbers"}
    pd.testing.assert_frame_equal(pd.read_csv(out / "numbers.csv", keep_default_na=False, na_values=[""]), numbers)


def test_difficulty_reference_is_cached_and_reloads_the_same_network(digits, tmp_path):
    net, loss, forget, never = difficulty_reference(digits, epochs=1, width=16, cache_dir=tmp_path)
    assert list(tmp_path.glob("difficulty-digits-w16-e1-s0.pt"))
    net2, loss2, forget2, never2 = difficulty_reference(digits, epochs=1, width=16, cache_dir=tmp_path)
    assert torch.equal(loss, loss2) and torch.equal(forget, forget2) and torch.equal(never, never2)
    assert torch.allclose(loss_scores(net2, digits.x_train, digits.y_train, digits.normalize), loss)
    assert len(loss) == len(forget) == len(digits.y_train)


# ---------------------------------------------------------------------------------------
# benchmarks/figures.py: the same figures from an archive
# ---------------------------------------------------------------------------------------

def fake_archive(data, folder, runs, ipc=2, seeds=(0, 1), epochs=2):
    """A digits archive in benchmarks/archive.py's format: two full-data networks (seed 0's weights only in its
    run folder's predictions file), and random, idc-starts (indices) and idc (images) sets per seed."""
    from dasm.config import preset_protocol
    from dasm.difficulty import reference_network
    from dasm.evaluate import save_predictions
    from dasm.files import save_atomic
    from dasm.train import Recipe, predict

    for s in (0, 1):
        net = reference_network(data, seed=s, width=16, recipe=Recipe(epochs=1, augment="none"))
        train, test = predict(net, data.x_train, data.normalize), predict(net, data.x_test, data.normalize)
        save_atomic({"method": "full", "ipc": 143, "seed": s, "arch": "convnet", "dataset": data.name,
                     "pred": {"test": test.argmax(1).to(torch.uint8)}, "logits": {"test": test.half()},
                     "train_loss": F.cross_entropy(train, data.y_train, reduction="none").half()},
                    folder / f"full-seed{s}.pt")
        if s == 0:
            full = get_full(data)
            save_predictions(runs / "digits-full" / "predictions" / "full-ipc143-convnet-seed0-abcd1234.pt",
                             {"test": test, "train": train}, net=full.state_dict(), method="full", seed=0,
                             dataset=data.name, ipc=143, arch="convnet")
    g = torch.Generator().manual_seed(0)
    for s in seeds:
        for method in ("random", "idc-starts", "idc"):
            idx = torch.cat([ix[torch.randperm(len(ix), generator=g)[:ipc]] for ix in data.class_index])
            rec = {"method": method, "ipc": ipc, "seed": s, "arch": "convnet", "dataset": data.name,
                   "protocol": preset_protocol("cpu", data.name, method, epochs=epochs).id,
                   "pred": {"test": data.y_test.to(torch.uint8)},                  # its evaluation: 100% right
                   "set": {"labels": data.y_train[idx].to(torch.uint8), "num_classes": 10, "factor": 1,
                           "segments": [(0, len(idx))]}}
            if method == "idc":
                rec["set"]["images"] = (data.x_train[idx] * 0.8 + 0.1).half()
            else:
                rec["set"]["indices"] = idx.to(torch.int32)
            save_atomic(rec, folder / f"{method}-ipc{ipc}-seed{s}.pt")


def get_full(data):
    """A width-128 ConvNet (the archived full-data network's shape), barely trained."""
    from dasm.difficulty import reference_network
    from dasm.train import Recipe

    return reference_network(data, seed=0, recipe=Recipe(epochs=1, augment="none"))


def test_archive_figures_draw_every_figure_with_controls_and_retrain_nothing(digits, tmp_path, monkeypatch):
    from benchmarks import figures as bench
    from benchmarks.archive import reference_net_path

    folder, runs, out = tmp_path / "digits_cpu", tmp_path / "runs", tmp_path / "figs"
    folder.mkdir()
    fake_archive(digits, folder, runs)
    files, numbers = bench.archive_figures(digits, 2, [0, 1], folder=folder, out=out, runs=runs, progress=False,
                                           embed_method="pca", forgetting_epochs=2, epochs=2)
    assert {f.stem for f in files} == {f"{s}_ipc2" for s in STEMS}
    assert reference_net_path(folder, 0).exists()                    # the weights were archived on first use
    errors = pd.read_csv(out / "difficulty_hist_loss_ipc2.csv")
    assert set(errors["set"]) == {"random", "idc-starts", "idc", "full"} and set(errors["seed"]) == {0, 1}
    assert set(pd.read_csv(out / "gradient_alignment_ipc2.csv")["set"]) == {"random", "idc-starts", "idc", "full"}
    redundancy = pd.read_csv(out / "redundancy_ipc2.csv")
    whole = redundancy[(redundancy["subset"] == "A+B") & (redundancy["metric"] == "test_acc")]
    assert (whole["value"] == 100.0).all()                           # the archived evaluation, not retrained
    table = bench.update_numbers(numbers, tmp_path / "figures.csv")
    assert {"dataset", "preset", "ipc", "figure", "set", "seed", "metric", "baseline", "value"} == set(table.columns)
    block = bench.figure_table(table, "errors_loss")
    assert block["set"].tolist() == ["full", "random", "idc-starts", "idc"]
    assert block.set_index("set").loc["random", "reading"] == "control"
    assert "interval" in block.set_index("set").loc["idc", "reading"]
    _no_training(monkeypatch)
    monkeypatch.setattr(bench, "forgetting_scores", lambda *a, **k: (_ for _ in ()).throw(AssertionError("forgot")))
    again, numbers2 = bench.archive_figures(digits, 2, [0, 1], folder=folder, out=out, runs=runs, progress=False,
                                            embed_method="pca", forgetting_epochs=2, epochs=2)
    pd.testing.assert_frame_equal(numbers2, numbers)
    with pytest.raises(ValueError, match="random"):
        bench.archive_figures(digits, 2, [0], folder=folder, out=out, methods=["idc"], only=["alignment"])


def test_figures_block_renders_the_numbers_and_says_when_nothing_is_measured(tmp_path, monkeypatch):
    from benchmarks import figures as bench

    monkeypatch.setattr(bench, "table_path", lambda *a, **k: tmp_path / "figures.csv")
    assert "Not measured yet" in bench.figures_block()
    rows = [{"dataset": "fashion-mnist", "preset": "cpu", "ipc": 50, "figure": "redundancy", "set": name, "seed": s,
             "metric": "gain", "baseline": b, "value": v}
            for s in range(3) for name, b, v in (("random", "", 5.0 + s), ("random", "random", 0.0),
                                                 ("idc", "", 2.0 + s), ("idc", "random", -3.0 - 0.1 * s))]
    pd.DataFrame(rows).to_csv(tmp_path / "figures.csv", index=False)
    text = bench.figures_block()
    assert text.startswith("**IPC 50: Redundancy")
    assert "](figures/redundancy_ipc50.png)" in text        # the drawing the numbers come from, on the page
    line = next(ln for ln in text.splitlines() if ln.startswith("| idc |"))
    assert "-3.10 ± 0.10" in line and "halves more redundant than random's" in line


def test_dasm_figures_draws_from_an_archive(digits, tmp_path, monkeypatch, capsys):
    from dasm.cli import main

    folder = tmp_path / "digits_cpu"   # an archive folder is named <dataset>_<preset>
    folder.mkdir()
    fake_archive(digits, folder, tmp_path / "runs", seeds=(0,))
    import benchmarks.figures

    monkeypatch.setattr(benchmarks.figures, "table_path", lambda kind, dataset, preset: tmp_path / f"{kind}.csv")
    assert main(["figures", "--archive", str(folder), "--ipc", "2", "--seeds", "0", "--only", "alignment,saturation",
                 "--out", str(tmp_path / "figs"), "--no-progress"]) == 0
    assert "gradient_alignment_ipc2.png" in capsys.readouterr().out
    numbers = pd.read_csv(tmp_path / "figures.csv")
    assert set(numbers["figure"]) == {"alignment"} and {"random", "full", "idc"} <= set(numbers["set"])


def test_archived_training_predictions_stand_for_the_sets_networks(digits, tmp_path, monkeypatch):
    """A cell whose evaluation kept its answers on the training images is not trained again for the histograms."""
    from benchmarks import figures as bench
    from dasm.files import save_atomic

    folder, runs, out = tmp_path / "digits_cpu", tmp_path / "runs", tmp_path / "figs"
    folder.mkdir()
    fake_archive(digits, folder, runs, seeds=(0,))
    for f in folder.glob("*-ipc2-seed0.pt"):   # every set's evaluation network got every training image right
        rec = torch.load(f, weights_only=False)
        rec["pred"]["train"] = digits.y_train.to(torch.uint8)
        save_atomic(rec, f)
    trained = []
    monkeypatch.setattr(bench, "set_predictions", lambda *a, **k: trained.append(a) or digits.y_train)
    bench.archive_figures(digits, 2, [0], folder=folder, out=out, runs=runs, progress=False, only=["histograms"],
                          forgetting_epochs=1, epochs=2)
    errors = pd.read_csv(out / "difficulty_hist_loss_ipc2.csv")
    assert trained == [] and (errors[errors["set"] != "full"]["error"] == 0).all()


def test_a_redrawn_figure_writes_the_same_bytes(tmp_path):
    """An unchanged figure saved twice leaves its files byte-identical, so a redraw leaves git clean."""
    import time

    import matplotlib.pyplot as plt
    import pandas as pd

    from dasm.analysis.figures import save_figure

    def draw(out):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        return save_figure(fig, pd.DataFrame({"x": [0, 1]}), out, "f")

    first = [p.read_bytes() for p in draw(tmp_path / "a")]
    time.sleep(1.1)   # a creation date in seconds would differ
    assert [p.read_bytes() for p in draw(tmp_path / "b")] == first


def test_the_readme_reading_names_each_distilled_sets_key_number_and_its_interval(tmp_path, monkeypatch):
    from benchmarks import figures as bench

    rows = [{"dataset": "fashion-mnist", "preset": "cpu", "ipc": ipc, "figure": "redundancy", "set": name, "seed": s,
             "metric": "gain", "baseline": "random", "value": v}
            for ipc, seeds in ((10, [0]), (50, [0, 1, 2])) for s in seeds
            for name, v in (("random", 0.0), ("idc-starts", 1.0), ("idc", -3.0 - 0.1 * s), ("dasm", 0.5 - s))]
    lines = bench.figures_reading(pd.DataFrame(rows))
    assert len(lines) == 2 and all(ln.startswith("Redundancy, IPC ") for ln in lines)
    assert "idc-starts" not in lines[0] and lines[0].endswith(", 1 seed, no interval: idc −3.00; dasm +0.50.")
    assert "idc −3.10 (halves more redundant than random's, 95% interval" in lines[1]
    assert "dasm −0.50 (no bias visible, 95% interval" in lines[1]
    monkeypatch.setattr(bench, "table_path", lambda kind, *a, **k: tmp_path / f"{kind}.csv")
    pd.DataFrame(rows).to_csv(tmp_path / "figures.csv", index=False)
    block = bench.readme_block()
    assert block.splitlines()[0].startswith("- Not measured yet") and block.count("\n- Redundancy, IPC") == 2


def test_each_figures_numbers_land_before_the_next_figure_is_drawn(digits, tmp_path, monkeypatch):
    from benchmarks import figures as bench

    folder = tmp_path / "digits_cpu"
    folder.mkdir()
    fake_archive(digits, folder, tmp_path / "runs", seeds=(0,))
    monkeypatch.setattr(bench, "_redundancy", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):   # a long figure interrupted ...
        bench.draw_and_record(digits, 2, [0], ["alignment", "redundancy"], folder=folder, out=tmp_path / "figs",
                              runs=tmp_path / "runs", table=tmp_path / "figures.csv", progress=False)
    assert set(pd.read_csv(tmp_path / "figures.csv")["figure"]) == {"alignment"}   # ... keeps the earlier ones'
