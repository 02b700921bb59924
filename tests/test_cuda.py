"""The CUDA path: every method distills, evaluates and saves on a GPU, and agrees with the CPU.

Skipped where CUDA is absent (CI); run on a GPU machine with ``python -m pytest tests/test_cuda.py``.
The same code runs on both devices: what may differ is float rounding, never a draw (every
random draw is made on the CPU from seeded generators and moved), so the checks compare values
across devices with float tolerances. cuDNN's TF32 convolutions (on by default in PyTorch) round
to 10 mantissa bits; they are switched off here so that the comparison is of float32 against float32.
"""

import pytest
import torch

from dasm.config import preset_config
from dasm.coreset import cached_features, select_coreset
from dasm.difficulty import score_samples
from dasm.distill import config_for, distill
from dasm.evaluate import Protocol, train_and_test
from dasm.matching import GRAD_PATHS, gradient_match_backward
from dasm.nets import get_network
from dasm.runs import distill_run, evaluate_run
from dasm.sequential import DasmConfig, dasm_distill
from dasm.synthetic import SyntheticSet
from dasm.train import Recipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

FAST = dict(width=32, iterations=4, match_steps=3, net_steps=2, batch_real=32, checkpoint_every=2)
EVAL = Protocol(recipe=Recipe(epochs=40), net_kwargs=(("width", 32),))


@pytest.fixture(autouse=True)
def float32_convolutions(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


@pytest.fixture(scope="module")
def gpu_digits(digits):
    return digits.to("cuda")


@pytest.mark.parametrize("method", ["dc", "dsa", "dm", "idc"])
def test_every_method_distills_on_cuda_like_on_the_cpu(digits, gpu_digits, method):
    cfg = config_for(method, ipc=2, **FAST)
    cpu, cpu_hist = distill(digits, cfg, progress=False)
    gpu, gpu_hist = distill(gpu_digits, cfg, progress=False)
    assert gpu.images.device.type == "cuda" and torch.isfinite(gpu.images).all()
    # the same draws on both devices: the two runs differ by rounding only
    torch.testing.assert_close(gpu.images.cpu(), cpu.images, atol=2e-3, rtol=0)
    assert gpu_hist.loss.tolist() == pytest.approx(cpu_hist.loss.tolist(), rel=1e-3, abs=1e-4)


def test_gradient_paths_agree_on_cuda_and_with_the_cpu():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = get_network("convnet", 1, 3, (28, 28), width=16)
    xr, xs = torch.randn(3, 8, 1, 28, 28, generator=gen), torch.randn(3, 2, 1, 28, 28, generator=gen)
    yr = torch.arange(3).view(3, 1).expand(3, 8)
    ys = torch.arange(3).view(3, 1).expand(3, 2)
    results = {}
    for device in ("cpu", "cuda"):
        net_d = net.to(device)
        for path in GRAD_PATHS:
            leaf = xs.clone().to(device).requires_grad_(True)  # a fresh leaf per path: no gradient carried over
            loss = gradient_match_backward(net_d, xr.to(device), yr.to(device), leaf, ys.to(device), "dc", "all", path)
            results[device, path] = (loss.item(), leaf.grad.cpu())
    ref_loss, ref_grad = results["cpu", "stream"]
    for key, (loss, grad) in results.items():
        assert loss == pytest.approx(ref_loss, rel=1e-4), key
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-3, msg=str(key))


def test_seeded_cuda_runs_repeat(gpu_digits):
    cfg = config_for("idc", ipc=1, **FAST)
    first, _ = distill(gpu_digits, cfg, progress=False)
    second, _ = distill(gpu_digits, cfg, progress=False)
    torch.testing.assert_close(first.images, second.images, atol=1e-4, rtol=0)


def test_dasm_on_cuda_freezes_earlier_segments(gpu_digits, tmp_path):
    cfg = DasmConfig(config_for("dsa", ipc=2, **FAST), segments=2, probe_epochs=5, iterations_per_segment=2,
                     joint=0.0)
    snapshots = []
    syn, hist, segs = dasm_distill(gpu_digits, cfg, out=tmp_path, progress=False,
                                   on_segment=lambda log, s: snapshots.append(s.images.detach().clone()))
    assert syn.images.device.type == "cuda" and syn.segments == [(0, 10), (10, 20)]
    assert torch.equal(snapshots[0][:10], syn.images[:10])
    assert segs.pool_size.iloc[1] < len(gpu_digits.y_train) and segs.probe_real_acc.iloc[1:].notna().all()


def test_a_run_made_on_cuda_loads_and_evaluates_on_the_cpu(digits, gpu_digits, tmp_path):
    syn = distill_run(gpu_digits, "idc", 2, tmp_path / "run", preset="cpu", seed=0, progress=False, iterations=3)
    assert syn.images.device.type == "cuda"
    back = SyntheticSet.load(tmp_path / "run" / "synthetic.pt", device="cpu")
    assert back.images.device.type == "cpu"
    torch.testing.assert_close(back.images, syn.images.cpu())
    rows = evaluate_run(tmp_path / "run", gpu_digits, preset="cpu", seeds=[0], epochs=30, progress=False)
    assert rows.device.iloc[0] == "cuda" and rows[rows.metric == "test_acc"].value.iloc[0] > 50


def test_cpu_preset_runs_on_cuda(gpu_digits):
    cfg = preset_config("cpu", "digits", "idc", 1, iterations=10, width=32)
    syn, _ = distill(gpu_digits, cfg, progress=False)
    x, y = syn.decoded()
    acc = train_and_test(gpu_digits, x, y, EVAL, seed=0, progress=False)["test_acc"]
    assert acc > 60, acc


def test_scores_and_coresets_on_cuda_match_the_cpu(digits, gpu_digits, tmp_path):
    torch.manual_seed(0)
    net = get_network("convnet", 1, 10, (8, 8), width=16)
    cpu = score_samples("el2n", net, digits.x_train, digits.y_train, digits.normalize)
    gpu = score_samples("el2n", net.to("cuda"), gpu_digits.x_train, gpu_digits.y_train, gpu_digits.normalize)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    feats = cached_features(gpu_digits, tmp_path, width=16, epochs=1, seed=0, progress=False)
    idx = select_coreset(gpu_digits, "herding", 5, seed=0, features=feats)
    assert feats.device.type == "cuda" and len(idx) == 50 and len(set(idx.tolist())) == 50
