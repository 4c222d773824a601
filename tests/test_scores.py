import math
import re

import pytest
import torch
import torch.nn.functional as F

from elite_exp.errors import ConfigError
from elite_exp.networks import NetworkSpec, build_encoder, default_spec
from elite_exp.scores import AEScore, RotationScore, SVDDScore, batch_statistics, score_in_batches


def test_networks_are_bias_free_and_shapes():
    for shape in [(1, 28, 28), (3, 32, 32), (64,)]:
        spec = default_spec(shape)
        enc = build_encoder(spec, shape)
        assert all("bias" not in name for name, _ in enc.named_parameters())
        assert enc(torch.randn(5, *shape)).shape == (5, spec.rep_dim)


def test_svdd_center_and_score():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    m = SVDDScore(default_spec((1, 28, 28)), (1, 28, 28))
    m.prepare(x)
    assert torch.all(m.center.abs() >= 0.1 - 1e-7)
    with batch_statistics(m), torch.no_grad():
        z = m.embed(x)
        s = m(x)
    assert torch.allclose(s, (z - m.center).norm(dim=1), atol=1e-5)
    m.squared = True
    with batch_statistics(m), torch.no_grad():
        assert torch.allclose(m(x), (z - m.center).pow(2).sum(1), rtol=1e-5)


def test_ae_score_is_summed_squared_error():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    m = AEScore(default_spec((3, 32, 32)), (3, 32, 32)).eval()
    with torch.no_grad():
        rec = m.reconstruct(x)
        assert rec.shape == x.shape
        assert torch.allclose(m(x), ((rec - x) ** 2).sum(dim=(1, 2, 3)), rtol=1e-5)


def test_ae_handles_odd_image_sizes():
    spec = NetworkSpec(kind="conv", channels=(8, 4), rep_dim=16)
    m = AEScore(spec, (1, 30, 30)).eval()
    assert m(torch.randn(2, 1, 30, 30)).shape == (2,)


def test_batch_statistics_leaves_running_stats_alone():
    m = SVDDScore(default_spec((64,)), (64,)).eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with batch_statistics(m):
        out = m(torch.randn(16, 64) * 5 + 3)
    assert torch.isfinite(out).all()
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not any(mod.training for mod in m.modules())  # eval mode restored


def test_score_in_batches_matches_one_pass_in_eval_mode():
    m = SVDDScore(default_spec((64,)), (64,))
    x = torch.randn(50, 64)
    m.eval()
    with torch.no_grad():
        full = m(x)
    m.train()
    assert torch.allclose(score_in_batches(m, x, batch_size=7), full, atol=1e-6)
    assert m.training


def test_rotation_score_is_summed_cross_entropy_of_the_four_rotations():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 32, 32)
    m = RotationScore(default_spec((3, 32, 32)), (3, 32, 32)).eval()  # eval: each copy scored on its own
    with torch.no_grad():
        expected = sum(F.cross_entropy(m.head(F.leaky_relu(m.encoder(torch.rot90(x, r, dims=(2, 3))), 0.01)),
                                       torch.full((6,), r), reduction="none") for r in range(4))
        assert torch.allclose(m(x), expected, rtol=1e-5)
        # an image every rotation leaves as it is gets one prediction for all four: score >= 4 ln 4
        flat = torch.randn(5, 1, 1, 1).expand(5, 1, 28, 28)
        m1 = RotationScore(default_spec((1, 28, 28)), (1, 28, 28)).eval()
        assert (m1(flat) >= 4 * math.log(4) - 1e-5).all()
    with batch_statistics(m), torch.no_grad():  # training mode: the 4N copies share BatchNorm statistics
        together = m.head(F.leaky_relu(m.encoder(torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])), 0.01))
        expected = F.cross_entropy(together, torch.arange(4).repeat_interleave(6), reduction="none")
        assert torch.allclose(m(x), expected.view(4, 6).sum(0), rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 28, 30), (64,)])
def test_rotation_score_needs_square_images(shape):
    with pytest.raises(ConfigError, match=r"the rotation score needs square images \(N, C, S, S\); got samples "
                                          rf"of shape {re.escape(str(shape))}"):
        RotationScore(NetworkSpec(kind="conv" if len(shape) == 3 else "mlp"), shape)
