"""The benchmark scripts' table logic and renderers (the suites themselves are run on purpose, not in tests)."""

import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from benchmarks import accuracy, cells, demo, distill, paper_time, report, speed, tune


def _rows(method, ipc, values, arch="convnet", dataset="fashion-mnist"):
    return [{"dataset": dataset, "method": method, "ipc": ipc, "seed": s, "arch": arch, "metric": "test_acc",
             "value": v, "protocol": "p"} for s, v in enumerate(values)]


def test_parse_cells_and_bad_cell():
    assert cells.parse_cells("idc:10, dsa:1,full") == [("idc", 10), ("dsa", 1), ("full", 0)]
    with pytest.raises(ValueError, match="method:ipc"):
        cells.parse_cells("idc10")


def test_has_row_looks_at_method_ipc_seed_and_arch():
    table = pd.DataFrame(_rows("idc", 10, [80.0, 81.0]))
    assert cells.has_row(table, "idc", 10, 1)
    assert not cells.has_row(table, "idc", 10, 2)
    assert not cells.has_row(table, "idc", 10, 0, arch="mlp")
    assert not cells.has_row(pd.DataFrame(), "idc", 10, 0)


def test_suite_skips_sequential_methods_below_two_images_per_class():
    got = accuracy.cells([1, 10], ["idc", "dasm"])
    assert got == [("idc", 1), ("idc", 10), ("dasm", 10)]
    assert accuracy.archs_for("idc", 10)[0] == "convnet" and len(accuracy.archs_for("idc", 10)) == 4
    assert accuracy.archs_for("random", 10) == ["convnet"]


def test_markdown_table_shows_mean_std_count_and_published():
    table = pd.DataFrame(_rows("idc", 10, [80.0, 82.0]) + _rows("idc", 1, [70.0]) + _rows("random", 10, [75.0])
                         + _rows("idc", 10, [50.0], arch="mlp"))
    md = accuracy.markdown_table(table, "fashion-mnist")
    idc_line = next(line for line in md.splitlines() if line.startswith("| idc |"))
    assert "81.0 ± 1.4 (2)" in idc_line and "70.0 (1)" in idc_line and "81.0/86.0/86.2" in idc_line
    assert "50.0" not in md  # the MLP row belongs to the cross-architecture table
    assert "50.0 (1)" in accuracy.cross_arch_table(table, "fashion-mnist")


def test_protocol_notes_state_the_presets_values_per_ipc():
    notes = accuracy.protocol_notes("cpu", "fashion-mnist")
    assert "iterations 100/200/100 at IPC 1/10/50" in notes and "factor 2/2/1 at IPC 1/10/50" in notes
    assert "init mix/mix/modes at IPC 1/10/50" in notes
    assert "width-32 ConvNet trained for 5 epochs" in notes   # herding's feature network (config.reference_size)
    assert "iterations 60;" in accuracy.protocol_notes("cpu", "digits")   # one value when every IPC agrees


def test_speed_table_formats_times_rates_and_the_machine():
    row = {"op": "match", "path": "stream", "ipc": 10, "width": 32, "median_s": 0.59, "gflops_per_s": 29.0,
           "frac_matmul": 0.228, "peak_mb": 89.8, "matmul_gflops_per_s": 127.2, "device": "cpu", "threads": 2,
           "torch": "2.x"}
    lines = speed.speed_table(pd.DataFrame([row, {**row, "ipc": 50, "median_s": 1.24}])).splitlines()
    assert lines[2] == "| match | stream | 10 | 32 | 590 ms | 29 | 23% | 90 MiB |" and lines[3].split(" | ")[2] == "50"
    assert lines[-1] == "Dense float32 matmul on the same machine: 127 GFLOP/s (cpu, 2 threads, torch 2.x)."


def test_distillation_table_orders_cells_and_shows_time():
    table = pd.DataFrame(_rows("dasm", 50, [84.0, 86.0]) + _rows("idc", 50, [83.0]) + _rows("random", 10, [75.0])
                         + _rows("full", 6000, [91.0])
                         + [{"dataset": "fashion-mnist", "method": "idc", "ipc": 50, "seed": 0, "arch": "-",
                             "metric": "seconds", "value": 600.0, "protocol": "distill"},
                            {"dataset": "fashion-mnist", "method": "idc", "ipc": 50, "seed": 0, "arch": "convnet",
                             "metric": "seconds", "value": 90.0, "protocol": "convnet/ep300"},
                            {"dataset": "fashion-mnist", "method": "dasm", "ipc": 50, "seed": 0, "arch": "-",
                             "metric": "probe_seconds", "value": 90.0, "protocol": "distill"},
                            {"dataset": "fashion-mnist", "method": "random", "ipc": 10, "seed": 0, "arch": "-",
                             "metric": "seconds", "value": 1.2, "protocol": "distill"}])
    lines = report.to_markdown(distill.distill_table(table)).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| random", "| idc", "| dasm", "| full"]
    assert lines[5].startswith("| full | all | 91.0 | 1 |")
    assert lines[3] == "| idc | 50 | 83.0 | 1 | 10.0 min |  |"
    assert lines[4] == "| dasm | 50 | 85.0 ± 1.4 | 2 |  | 1.5 min |"
    assert lines[2] == "| random | 10 | 75.0 | 1 | < 0.1 min |  |"  # not "0.0 min"


def test_headline_reads_the_paired_differences_and_whether_idc_saturates(monkeypatch):
    rows = (_rows("idc", 10, [80.0, 81.0, 82.0]) + _rows("dasm", 10, [81.0, 81.5, 83.0])
            + _rows("idc", 50, [85.0, 86.0, 87.0]) + _rows("dasm", 50, [85.0, 86.0, 87.0]) + _rows("full", 6000, [91.0]))
    monkeypatch.setattr(distill, "suite_tables", lambda *a, **k: pd.DataFrame(rows))
    text = distill.headline_block()
    table, reading = text.split("\n\n")
    assert table.splitlines()[2] == "| idc |  | 81.0 ± 1.0 (3) | 86.0 ± 1.0 (3) |"
    assert table.splitlines()[-1] == "| full data |  |  | 91.0 (1) |"
    assert "+0.83 ± 0.29 over 3 seeds" in reading and "excludes zero" in reading   # IPC 10: a paired gain
    assert "+0.00 ± 0.00" in reading and "IDC gains 5.0 points" in reading and "no plateau" in reading
    flat = [r for r in rows if not (r["method"] == "idc" and r["ipc"] == 50)] + _rows("idc", 50, [81.0, 81.2, 81.4])
    monkeypatch.setattr(distill, "suite_tables", lambda *a, **k: pd.DataFrame(flat))
    assert "a plateau like the published one" in distill.headline_block()


def test_every_generated_block_is_current():
    assert report.stale() == []


def test_mean_std_and_markdown_are_one_rule():
    assert report.mean_std([80.0, 82.0]) == "81.0 ± 1.4" and report.mean_std([70.0], count=True) == "70.0 (1)"
    assert report.mean_std([]) == "" and report.mean_std([1.0, 2.0, float("nan")], 2, count=True) == "1.50 ± 0.71 (2)"
    assert report.signed(-0.104) == "−0.10" and report.signed(0.5, 1) == "+0.5"
    md = report.to_markdown(pd.DataFrame({"a": [1, None], "b|c": ["x|y", 2.5]}))
    assert md.splitlines() == ["| a | b|c |", "|---|---|", "| 1.0 | x\\|y |", "|  | 2.5 |"]


def test_committed_gain_figure_table_matches_the_committed_csvs():
    from dasm.analysis.gain import gain_table

    root = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    committed = pd.read_csv(root / "gain_fashion-mnist_cpu.csv")
    expected = gain_table(distill.gain_rows(distill.suite_tables()))
    assert set(expected.ipc) == set(distill.suite_tables().query("method == 'dasm'").ipc)
    pd.testing.assert_frame_equal(committed, expected, check_dtype=False)
    assert (root / "gain_fashion-mnist_cpu.png").exists()
    assert distill.suite_tables("no-such-dataset").empty   # nothing run yet: no table, no error


def test_accuracy_tables_take_cells_from_the_distillation_suites_without_doubling_them(tmp_path, monkeypatch):
    ran = []

    def run_one(data, cell, root, **kwargs):
        ran.append((cell.method, cell.ipc, cell.seed))
        raise RuntimeError("stop here")

    monkeypatch.setattr(cells, "run_one", run_one)
    data = SimpleNamespace(name="digits", device=torch.device("cpu"))
    elsewhere = pd.DataFrame(_rows("idc", 10, [80.0]))
    table = tmp_path / "accuracy.csv"
    # a cell another suite measured is not run again; another seed of it is
    assert cells.run_cell(data, "idc", 10, 0, table, elsewhere=elsewhere, runs=tmp_path).empty
    assert ran == [] and not table.exists()
    with pytest.raises(RuntimeError, match="stop here"):
        cells.run_cell(data, "idc", 10, 1, table, elsewhere=elsewhere, runs=tmp_path)
    assert ran == [("idc", 10, 1)]
    # the rendered table counts a cell held by both suites once, this suite's row first
    fmnist = accuracy.results_for("fashion-mnist", "cpu")
    assert not fmnist.duplicated(["method", "ipc", "seed", "arch", "metric"]).any()
    idc10 = fmnist[(fmnist.method == "idc") & (fmnist.ipc == 10) & (fmnist.metric == "test_acc")
                  & (fmnist.arch == "convnet")]
    assert sorted(idc10.seed) == [0, 1, 2]


def test_a_cell_missing_only_its_cross_architecture_columns_trains_only_those(digits, tmp_path, monkeypatch):
    import dasm.runs as runs
    # a coreset: the cell's logic is the same for every method, and selecting costs nothing

    asked = []

    def evaluate_run(out, data, *, archs, seeds, **kwargs):
        asked.append(list(archs))
        return pd.DataFrame([dict(r, seed=seeds[0], protocol=a) for a in archs for r in _rows("random", 1, [70.0], a)])

    monkeypatch.setattr(runs, "evaluate_run", evaluate_run)
    elsewhere = pd.DataFrame(_rows("random", 1, [80.0, 81.0]))   # ConvNet of seeds 0 and 1, from another suite
    table = tmp_path / "accuracy.csv"
    out = cells.run_cell(digits, "random", 1, 1, table, archs=["convnet", "mlp", "resnet18"], elsewhere=elsewhere,
                         runs=tmp_path, progress=False)
    assert asked == [["mlp", "resnet18"]]
    new = out[out.arch != "-"]
    assert sorted(new.arch) == ["mlp", "resnet18"] and set(new.seed) == {1}


def test_a_cell_past_its_deadline_keeps_its_checkpoint_and_adds_no_rows(digits, tmp_path, monkeypatch):
    import dasm.runs as runs

    evaluated = []
    monkeypatch.setattr(runs, "evaluate_run", lambda *a, **k: evaluated.append(a))
    table = tmp_path / "dasm.csv"
    out = cells.run_cell(digits, "idc", 1, 0, table, runs=tmp_path, progress=False, deadline=time.monotonic())
    run = cells.folder_of(digits, "idc", 1, 0, runs=tmp_path)
    assert run.parent == tmp_path / "cpu" and run.name.startswith("digits-idc-ipc1-seed0-")
    assert out.empty and not table.exists() and evaluated == []
    assert torch.load(run / "checkpoint.pt", weights_only=False)["iteration"] == 1   # stopped after one iteration
    assert (run / "partial.pt").exists() and not (run / "synthetic.pt").exists()


def test_accuracy_rows_from_a_gpu_stay_out_of_the_cpu_tables_and_the_readme(tmp_path, monkeypatch):
    assert cells.table_path("accuracy", "digits", "cpu", "cuda").name == "accuracy_digits_cpu_cuda.csv"
    on_gpu = accuracy.results_for("fashion-mnist", "cpu", "cuda")   # the committed CUDA cells
    assert not on_gpu.empty and set(on_gpu.device) == {"cuda"}
    assert set(accuracy.results_for("fashion-mnist", "cpu").device) == {"cpu"}
    blocks = []
    monkeypatch.setattr(accuracy, "ROOT", tmp_path)
    monkeypatch.setattr(accuracy, "write_block", lambda name, *text: blocks.append(name))
    (tmp_path / "results").mkdir()
    text = accuracy.render("cpu", ["fashion-mnist"], "cuda")
    assert blocks == [] and (tmp_path / "results" / "accuracy_cpu_cuda.md").read_text() == text
    accuracy.render("cpu", ["fashion-mnist"])
    assert blocks == ["accuracy-fashion-mnist"] and (tmp_path / "results" / "accuracy_cpu.md").exists()


def test_blocks_are_rewritten_in_place_and_missing_ones_say_so(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- t:start -->\nold\n<!-- t:end -->\nafter\n")
    report.write_block("t", "new\nrows", doc)
    assert doc.read_text() == "intro\n<!-- t:start -->\nnew\nrows\n<!-- t:end -->\nafter\n"
    assert report.read_block("t", doc) == "new\nrows"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]   # written through a temporary file, renamed
    with pytest.raises(KeyError, match="no block 'other'"):
        report.write_block("other", "x", doc)
    # a new, empty block can be two markers on adjacent lines
    doc.write_text("a\n<!-- e:start -->\n<!-- e:end -->\nb\n")
    assert report.read_block("e", doc) == ""
    report.write_block("e", "rows", doc)
    assert doc.read_text() == "a\n<!-- e:start -->\nrows\n<!-- e:end -->\nb\n"
    doc.write_text("a\n<!-- e:start -->\nno end\n")
    with pytest.raises(KeyError, match="no block 'e'"):
        report.read_block("e", doc)
    with pytest.raises(KeyError, match="No generated block 'nope'"):
        report.block("nope")


def test_every_block_names_a_page_that_holds_it_and_a_renderer():
    root = Path(report.__file__).resolve().parents[1]
    for b in report.BLOCKS:
        assert (root / b.page).exists(), b
        report.read_block(b.name)   # the page has both markers
        module, _, func = b.render.partition(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func)), b


def test_tune_parses_variants_and_chooses_on_validation_not_test():
    assert tune.parse_variants("lr_img=0.1,iterations=50; policy=grow") == [
        {"lr_img": 0.1, "iterations": 50}, {"policy": "grow"}]
    assert tune.variant_name({"lr_img": 0.5, "joint": 0}) == "lr_img=0.5,joint=0"
    for bad in ("lr_img", "", "=3"):
        with pytest.raises(ValueError, match="key=value|at least one"):
            tune.parse_variants(bad)
    rows = []
    # variant a: better on validation, worse on test; b the other way round: a must be chosen
    for variant, val, test in (("a", (80.0, 82.0), (70.0, 70.0)), ("b", (79.0, 79.0), (90.0, 90.0))):
        for seed in (0, 1):
            for metric, value in (("val_acc", val[seed]), ("test_acc", test[seed])):
                rows.append({"dataset": "digits", "method": "idc", "ipc": 10, "seed": seed, "arch": "convnet",
                             "metric": metric, "value": value, "variant": variant})
    ranked = tune.rank_variants(pd.DataFrame(rows))
    assert list(ranked.variant) == ["a", "b"] and list(ranked.chosen) == [True, False]
    assert ranked.val_mean.tolist() == [81.0, 79.0] and ranked.seeds.tolist() == [2, 2]
    assert ranked.test_mean.tolist() == [70.0, 90.0]
    # variants differ between IPCs: only the pairs that were run are ranked
    mixed = tune.rank_variants(pd.DataFrame(rows + [{**r, "ipc": 1, "variant": "c"} for r in rows if r["variant"] == "a"]))
    assert sorted(zip(mixed.ipc, mixed.variant)) == [(1, "c"), (10, "a"), (10, "b")] and mixed.chosen.sum() == 2
    # with resolved configs, two labels of the same settings are one variant (named by its first label)
    keyed = pd.DataFrame(rows).assign(config=lambda t: t.variant.map({"a": "k1", "b": "k2"}), setting="s")
    keyed.loc[(keyed.variant == "a") & (keyed.seed == 1), "variant"] = "a-again"
    ranked = tune.rank_variants(keyed)
    assert list(ranked.variant) == ["a", "b"] and ranked.seeds.tolist() == [2, 2] and ranked.val_mean[0] == 81.0


def test_tune_runs_variants_on_a_held_out_split_and_resumes(tmp_path, capsys):
    argv = ["--dataset", "digits", "--method", "idc", "--ipc", "1", "--variants", "iterations=1;iterations=2",
            "--val-fraction", "0.2", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path), "--no-progress"]
    ranked = tune.main(argv)
    assert sorted(ranked.variant) == ["iterations=1", "iterations=2"] and ranked.chosen.sum() == 1
    table = pd.read_csv(tmp_path / "tune_digits_cpu.csv")
    assert set(table[table.metric == "val_acc"].variant) == {"iterations=1", "iterations=2"}
    assert (table.val_fraction.dropna() == 0.2).all()
    folders = sorted(p.name for p in (tmp_path / "runs" / "cpu" / "tune").iterdir() if p.name != "features")
    assert len(folders) == 2 and all(f.startswith("digits-idc-ipc1-seed0-") for f in folders)
    assert set(table.setting) == {f"idc ipc1 f1 real it{n}x10 lr0.01 dc convnet-w64" for n in (1, 2)}
    rows = len(table)
    tune.main(argv)   # everything done: nothing is run or appended again
    # another label for the same resolved settings (the preset's own lr_img) is done too
    tune.main([*argv[:7], "iterations=1,lr_img=0.01", *argv[8:]])
    assert len(pd.read_csv(tmp_path / "tune_digits_cpu.csv")) == rows
    out = capsys.readouterr().out
    assert "choose on val_mean" in out and "it2x10 lr0.01" in out


def test_tuning_ranking_table_shows_spread_and_the_choice():
    ranked = pd.DataFrame({"variant": ["a", "b"], "setting": ["s1", "s2"], "val_mean": [81.0, 79.0],
                           "val_std": [1.0, 0.0], "seeds": [2, 1], "test_mean": [70.0, 90.0], "chosen": [True, False]})
    lines = report.to_markdown(tune.ranking_table(ranked)).splitlines()
    assert lines[2] == "| a | s1 | 81.00 ± 1.00 | 70.00 | 2 | yes |" and lines[3] == "| b | s2 | 79.00 | 90.00 | 1 |  |"


def test_tune_keeps_each_devices_rows_and_runs_apart():
    table, runs = tune.tune_paths("res", "runs", "fashion-mnist", "cpu", "cuda")
    assert table == Path("res/tune_fashion-mnist_cpu_cuda.csv") and runs == Path("runs/cpu_cuda/tune")
    table, runs = tune.tune_paths("res", "runs", "digits", "cpu", "cpu")
    assert table.name == "tune_digits_cpu.csv" and runs == Path("runs/cpu/tune")


def test_starts_variants_pick_ipc_distinct_starts_and_complement_covers_better(digits):
    from benchmarks import starts

    feats = digits.x_train.flatten(1)
    picked = {v: starts.start_indices(digits, v, 10, 5, feats, seed=0) for v in starts.VARIANTS}
    for v, ix in picked.items():
        assert len(set(ix.tolist())) == 100, v
        assert torch.equal(torch.bincount(digits.y_train[ix], minlength=10), torch.full((10,), 10)), v
    cover = {v: starts.coverage(digits, ix, feats) for v, ix in picked.items()}
    assert cover["complement"] < cover["own"]          # fixed centres fill the gaps the own k-means leaves
    first_ten = torch.cat([ix[:10] for ix in digits.class_index])            # arbitrary starts cover worse
    assert starts.coverage(digits, first_ten, feats) > max(cover.values())


def test_rows_and_run_folders_from_another_device_are_kept_apart():
    assert cells.table_path("dasm", "fashion-mnist", "cpu", "cpu").name == "dasm_fashion-mnist_cpu.csv"
    assert cells.table_path("dasm", "fashion-mnist", "paper", "cuda").name == "dasm_fashion-mnist_paper_cuda.csv"
    assert cells.device_tag("cpu", "cuda") == "cpu_cuda" and cells.device_tag("paper", "cpu") == "paper"


def test_demo_table_and_its_collected_rows(tmp_path):
    # collect(): the demo's rows and each run's last distillation time
    (tmp_path / "idc-ipc2").mkdir()
    pd.DataFrame(_rows("idc", 2, [90.0, 92.0]) + _rows("full", 144, [98.0])).to_csv(tmp_path / "demo.csv", index=False)
    pd.DataFrame([{"method": "idc", "ipc": 2, "seed": 0, "arch": "-", "metric": "seconds", "value": v,
                   "protocol": "distill"} for v in (5.0, 7.0)]).to_csv(tmp_path / "idc-ipc2" / "results.csv", index=False)
    table = demo.collect(tmp_path)
    assert table.query("metric == 'seconds'").value.tolist() == [7.0]
    assert report.to_markdown(demo.demo_table(table)).splitlines()[2:] == ["| idc | 91.0 ± 1.4 |", "| full data (98.0) |  |"]


def test_paper_time_projects_a_measured_slice_to_the_presets_counts(digits):

    rows = pd.DataFrame(paper_time.project(digits, 5, steps=1, epochs=1))   # 5 segments of 1
    assert list(rows.part) == ["match-step", "eval-epoch", "probe-batch", "scoring-pass"]
    assert (rows.seconds_per_unit > 0).all()
    step = rows.set_index("part").loc["match-step"]
    assert step.units_full == 2000 * 100    # the paper preset's outer iterations x matching steps
    assert step.projected_hours == pytest.approx(step.seconds_per_unit * step.units_full / 3600)
    assert rows.set_index("part").loc["scoring-pass"].units_full == 4   # one pass before each later segment
    assert "| idc | 5 | match-step |" in paper_time.paper_time_table(rows.assign(machine="m", device="cpu", torch="t"))
