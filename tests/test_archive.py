"""The compact archive of benchmark cells: an unchanged record leaves its committed file untouched."""

import torch

from benchmarks import archive


def _record(value: float) -> dict:
    return {"method": "idc", "seed": 0, "pred": {"test": torch.tensor([1, 2], dtype=torch.uint8)},
            "logits": {"test": torch.full((2, 3), value).half()}, "set": {"segments": [1, 2]}}


def test_rearchiving_the_same_values_leaves_the_file_as_it_is(tmp_path):
    dest = tmp_path / "idc-ipc10-seed0.pt"
    archive._keep(_record(0.5), dest)
    before, stamp = dest.read_bytes(), dest.stat().st_mtime_ns
    archive._keep(_record(0.5), dest)                       # equal values in new tensors
    assert dest.read_bytes() == before and dest.stat().st_mtime_ns == stamp
    archive._keep(_record(0.25), dest)                      # another value: written
    assert torch.equal(torch.load(dest, weights_only=False)["logits"]["test"], torch.full((2, 3), 0.25).half())
    changed = _record(0.25)
    changed["logits"]["test"] = changed["logits"]["test"].float()   # same numbers, another dtype: written
    assert not archive._same(changed, _record(0.25))


def test_an_archived_cell_keeps_its_set_predictions_and_the_threads_it_ran_with(digits, tmp_path):
    from dasm.runs import distill_run, evaluate_run

    distill_run(digits, "random", 2, tmp_path / "run", progress=False)
    evaluate_run(tmp_path / "run", digits, seeds=[0], epochs=1, progress=False)
    kept = next((tmp_path / "run" / "predictions").iterdir())
    rec = torch.load(archive.archive_cell(tmp_path / "run", kept, tmp_path / "random-ipc2-seed0.pt"),
                     weights_only=False)
    assert rec["method"] == "random" and len(rec["set"]["indices"]) == 20 and len(rec["pred"]["test"]) == len(digits.y_test)
    assert rec["environment"]["threads"] == str(torch.get_num_threads())   # a bit-for-bit rerun needs it
