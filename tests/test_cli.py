"""The `dasm` command: listing datasets, full-data training, the demo, and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from dasm.cli import main
from dasm.synthetic import SyntheticSet

def test_datasets_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "svhn"):
        assert name in out
    assert "bundled with scikit-learn" in out


def test_train_real_writes_a_results_table(tmp_path, capsys):
    out = tmp_path / "real"
    code = main(["train-real", "--dataset", "digits", "--arch", "mlp", "--epochs", "3", "--seeds", "0,1",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    acc = df[df.metric == "test_acc"]
    assert list(acc.seed) == [0, 1] and set(acc.method) == {"full"} and set(acc.arch) == {"mlp"}
    assert acc.protocol.str.startswith("mlp/ep3-").all() and set(df.device) == {"cpu"}
    assert not list((out / "checkpoints").glob("*.ckpt"))  # finished runs clean up their checkpoints
    assert "full" in capsys.readouterr().out


def test_demo_prints_a_table(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--ipcs", "2,4", "--seeds", "0", "--epochs", "3",
                 "--real-epochs", "2", "--iterations", "2", "--segments", "2", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Test accuracy on digits" in out and all(m in out for m in ("random", "idc", "dasm", "full"))
    df = pd.read_csv(tmp_path / "demo.csv")
    assert set(df[df.method == "dasm"].ipc) == {2, 4} and set(df[df.method == "random"].ipc) == {2, 4}
    assert len(list(tmp_path.glob("digits-dasm-ipc4-seed0-*/synthetic.png"))) == 1


def test_bad_input_gives_one_clear_error(capsys):
    assert main(["train-real", "--dataset", "imagenet", "--no-progress"]) == 2
    assert "Unknown dataset 'imagenet'" in capsys.readouterr().err
    assert main(["train-real", "--dataset", "digits", "--arch", "transformer", "--no-progress"]) == 2
    assert "convnet" in capsys.readouterr().err
    assert main(["train-real", "--dataset", "digits", "--epochs", "-1", "--no-progress"]) == 2
    assert "epochs must be a positive integer" in capsys.readouterr().err
    assert main(["demo", "--ipcs", "500", "--no-progress", "--real-epochs", "1"]) == 2
    assert "largest IPC" in capsys.readouterr().err


def test_python_dash_m_works():
    res = subprocess.run([sys.executable, "-m", "dasm", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "train-real" in res.stdout


def test_distill_then_evaluate(tmp_path, capsys):
    out = tmp_path / "dsa"
    code = main(["distill", "--method", "dsa", "--dataset", "digits", "--ipc", "1", "--out", str(out),
                 "--iterations", "2", "--width", "16", "--eval-seeds", "0", "--eval-epochs", "3", "--no-progress"])
    assert code == 0
    assert (out / "synthetic.pt").exists() and (out / "synthetic.png").exists() and (out / "history.csv").exists()
    assert "Accuracy on digits" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--seeds", "0,1", "--epochs", "3", "--archs", "convnet,mlp",
                 "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    acc = df[df.metric == "test_acc"]
    assert sorted(zip(acc.arch, acc.seed)) == [("convnet", 0), ("convnet", 1), ("mlp", 0), ("mlp", 1)]
    assert (df[df.protocol == "distill"].metric == "seconds").all()


def test_validation_split_is_held_out_and_reported(tmp_path, capsys):
    out = tmp_path / "idc"
    code = main(["distill", "--method", "idc", "--dataset", "digits", "--ipc", "2", "--out", str(out),
                 "--iterations", "2", "--width", "16", "--eval-seeds", "0", "--eval-epochs", "3",
                 "--val-fraction", "0.2", "--split-seed", "3", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "val_acc" in printed and "test_acc" in printed
    syn = SyntheticSet.load(out / "synthetic.pt")
    assert syn.meta["val_split"] == [0.2, 3]
    assert json.loads((out / "config.json").read_text())["val_split"] == [0.2, 3]
    # evaluate reloads the same split by itself: rows for a second seed carry val_acc and the fraction
    assert main(["evaluate", str(out), "--seeds", "0,1", "--epochs", "3", "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    val = df[df.metric == "val_acc"]
    assert sorted(val.seed) == [0, 1] and (val.val_fraction == 0.2).all()
    # the same folder distilled without the split is a different run
    assert main(["distill", "--method", "idc", "--dataset", "digits", "--ipc", "2", "--out", str(out),
                 "--iterations", "2", "--width", "16", "--no-eval", "--no-progress"]) == 2
    assert "different run" in capsys.readouterr().err


def test_distill_dasm_from_the_command_line(tmp_path):
    out = tmp_path / "dasm"
    code = main(["distill", "--method", "dasm", "--dataset", "digits", "--ipc", "2", "--segments", "2",
                 "--base", "dsa", "--iterations", "3", "--width", "16", "--probe-epochs", "3", "--window", "0.4",
                 "--joint", "0.5", "--out", str(out), "--no-eval", "--no-progress"])
    assert code == 0
    segs = pd.read_csv(out / "segments.csv")
    assert list(segs.segment) == [0, 1, 2] and segs.pool_size.iloc[1] < 1437
    assert list(segs.stage) == ["segment", "segment", "joint"]


def test_distill_and_evaluate_errors(tmp_path, capsys):
    assert main(["distill", "--method", "mtt", "--dataset", "digits", "--ipc", "1", "--out", str(tmp_path),
                 "--no-progress"]) == 2
    assert "choose one of random, herding, kcenter" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--no-progress"]) == 2
    assert "holds no synthetic.pt" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert main(["evaluate", str(tmp_path / "junk.pt"), "--no-progress"]) == 2
    assert "not a readable torch file" in capsys.readouterr().err


def test_figures_fast_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figs"
    extra = tmp_path / "more.csv"   # another results table (e.g. a benchmark's), given twice: counted once
    pd.DataFrame([{"dataset": "digits", "method": "herding", "ipc": 2, "seed": 0, "arch": "convnet",
                   "metric": "test_acc", "value": 80.0, "protocol": "p"}]).to_csv(extra, index=False)
    assert main(["figures", "--fast", "--ipc", "2", "--out", str(out), "--no-progress",
                 "--results", str(extra), str(extra)]) == 0
    names = {p.name for p in out.iterdir()}
    expected = ["difficulty_hist_loss", "difficulty_hist_forgetting", "gradient_alignment", "embedding",
                "redundancy", "saturation"]
    for stem in expected:
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.csv"} <= names, stem
    assert "gradient_alignment.png" in capsys.readouterr().out
    errors = pd.read_csv(out / "difficulty_hist_loss.csv")   # every set next to its controls
    assert {"random", "idc-starts", "idc", "dasm", "full"} <= set(errors["set"])
    assert (errors.groupby(["set", "seed"])["n"].sum() == 1437).all()
    assert "contrast" in set(pd.read_csv(out / "numbers.csv")["metric"])
    # figures are drawn from saved tables: the saturation table has a row per method
    saturation = pd.read_csv(out / "saturation.csv")
    assert {"random", "idc", "dasm", "herding"} <= set(saturation.method)
    assert saturation.set_index("method").loc["herding", "count"] == 1


def test_figures_needs_runs(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--fast" in capsys.readouterr().err
    assert main(["figures", "--runs", str(tmp_path), "--out", str(tmp_path), "--no-progress"]) == 2
    assert "No synthetic.pt found" in capsys.readouterr().err


def test_sweep_draws_the_saturation_curve(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--dataset", "digits", "--ipcs", "1,2", "--methods", "random,dasm", "--iterations", "1",
                 "--epochs", "3", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "saturation.csv")
    assert {(m, i) for m, i in zip(table.method, table.ipc)} == {("random", 1), ("random", 2), ("dasm", 1), ("dasm", 2)}
    assert (out / "saturation.png").exists() and (out / "saturation.pdf").exists()
    assert "saturation curve" in capsys.readouterr().out


def test_a_foreign_file_given_as_a_published_set_gets_one_line_naming_it(tmp_path, capsys):
    garbage = tmp_path / "res_DSA_garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    assert main(["evaluate", str(garbage), "--import-format", "dc", "--dataset", "digits", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(garbage) in err and "res_*.pt" in err
    import torch

    torch.save({"something": 1}, tmp_path / "data.pt")   # a readable torch file of another shape
    assert main(["evaluate", str(tmp_path / "data.pt"), "--import-format", "idc", "--dataset", "digits",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "IDC data.pt" in err


def test_a_dataset_that_contradicts_the_sets_own_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["distill", "--method", "random", "--dataset", "digits", "--ipc", "1", "--out", str(out),
                 "--no-eval", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", "fashion-mnist", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "distilled from 'digits'" in err and "fashion-mnist" in err
    assert main(["evaluate", str(out), "--dataset", "digits", "--seeds", "0", "--epochs", "1", "--no-progress"]) == 0
