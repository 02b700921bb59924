"""dasm.matching: distances against direct computation, every gradient path agrees, gradients flow."""

import pytest
import torch
import torch.nn.functional as F

from dasm.matching import (GRAD_PATHS, METRICS, distribution_match_loss, gradient_match_backward,
                           gradient_match_loss, layer_distance, matched_parameters)
from dasm.nets import get_network


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    net = get_network("convnet", 1, 3, 8, width=8, depth=2)
    xr = torch.randn(3, 6, 1, 8, 8)
    xs = torch.randn(3, 2, 1, 8, 8, requires_grad=True)
    y = lambda n: torch.arange(3).view(3, 1).expand(3, n)  # noqa: E731
    return net, xr, y(6), xs, y(2)


def test_layer_distances_against_direct_formulas():
    gr, gs = torch.randn(2, 4, 3, 3, 3), torch.randn(2, 4, 3, 3, 3)
    assert layer_distance(gr, gs, "mse")[0] == pytest.approx((gr[0] - gs[0]).pow(2).sum().item(), rel=1e-5)
    assert layer_distance(gr, gs, "l1")[1] == pytest.approx((gr[1] - gs[1]).abs().sum().item(), rel=1e-5)
    a, b = gr[0].reshape(4, -1), gs[0].reshape(4, -1)
    expected = (1 - F.cosine_similarity(a, b, dim=1)).sum().item()
    assert layer_distance(gr, gs, "dc")[0] == pytest.approx(expected, rel=1e-4)
    assert layer_distance(gr, gr, "dc").abs().max() < 1e-5  # identical gradients: distance 0
    with pytest.raises(ValueError, match="choose one of dc, mse, l1, cos"):
        layer_distance(gr, gs, "kl")


def test_matched_layers(tiny):
    net = tiny[0]
    conv = matched_parameters(net, "conv")
    everything = matched_parameters(net, "all")
    assert all(".weight" in n for n in everything) and len(conv) == 2 and len(everything) == 3
    assert not any("bias" in n for n in everything)  # biases and norm parameters are skipped


@pytest.mark.parametrize("metric", METRICS)
def test_every_gradient_path_gives_the_same_loss_and_pixel_gradients(tiny, metric):
    net, xr, yr, xs, ys = tiny
    z = xs.detach().clone().requires_grad_(True)   # pixels behind a shared op, as decode/augment make them
    results = {}
    for path in GRAD_PATHS:
        z.grad = None
        loss = gradient_match_backward(net, xr, yr, torch.tanh(z) * 2, ys, metric, path=path)
        results[path] = (loss.item(), z.grad.clone())
    reference = gradient_match_loss(net, xr, yr, torch.tanh(z) * 2, ys, metric).item()
    for path, (loss, grad) in results.items():
        assert loss == pytest.approx(reference, rel=1e-5), path
        assert torch.allclose(grad, results["loop"][1], rtol=1e-3, atol=1e-5), path
        assert grad.abs().sum() > 0


def test_unknown_gradient_path_is_refused(tiny):
    net, xr, yr, xs, ys = tiny
    with pytest.raises(ValueError, match="gradient path"):
        gradient_match_backward(net, xr, yr, xs, ys, path="fast")


def test_gradient_matching_with_itself_is_zero(tiny):
    net, xr, yr, xs, ys = tiny
    same = gradient_match_loss(net, xr, yr, xr.clone().requires_grad_(), yr, "dc").item()
    other = gradient_match_loss(net, xr, yr, xs, ys, "dc").item()
    assert same < 0.01 * other  # only the 1e-6 guard of the cosine keeps it from exactly 0


def test_per_class_loss_is_the_sum_of_single_class_losses(tiny):
    net, xr, yr, xs, ys = tiny
    whole = gradient_match_loss(net, xr, yr, xs, ys, "mse", batched=False).item()
    parts = sum(gradient_match_loss(net, xr[c:c + 1], yr[c:c + 1], xs[c:c + 1], ys[c:c + 1], "mse").item()
                for c in range(3))
    assert whole == pytest.approx(parts, rel=1e-5)


def test_distribution_matching(tiny):
    net, xr, _, xs, _ = tiny
    loss = distribution_match_loss(net, xr, xs)
    loss.backward()
    assert xs.grad.abs().sum() > 0
    with torch.no_grad():
        e_r = net.embed(xr[1]).mean(0)
        e_s = net.embed(xs[1]).mean(0)
    direct = sum((net.embed(xr[c]).mean(0) - net.embed(xs[c]).mean(0)).pow(2).sum() for c in range(3))
    assert loss.item() == pytest.approx(direct.item(), rel=1e-5)
    assert (e_r - e_s).pow(2).sum() <= loss.item() + 1e-6
