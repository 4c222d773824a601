import torch

from elite_exp.networks import NetworkSpec, build_encoder, default_spec
from elite_exp.scores import AEScore, SVDDScore, batch_statistics, score_in_batches


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
