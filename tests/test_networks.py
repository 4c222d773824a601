"""The fast encoder computes what the textbook network computes (``networks.reference``: outputs,
gradients, forward-mode tangents, BatchNorm statistics; train mode with and without running statistics,
as the training loop trains, and eval mode), for the MNIST and CIFAR-10 LeNets, odd sizes and without
BatchNorm; it runs channels-last and under torch.func."""

from contextlib import nullcontext

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call, stack_module_state, vmap

from elite_exp.methods.training import untracked_batch_norm
from elite_exp.networks import NetworkSpec, build_decoder, build_encoder
from elite_exp.networks.conv import ConvEncoder
from elite_exp.networks.reference import plain_conv_encoder

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
NETS = [((1, 28, 28), (8, 4), 32, True), ((3, 32, 32), (32, 64, 128), 128, True), ((1, 29, 31), (8, 4), 16, True),
        ((3, 16, 16), (8, 4), 16, False)]


def pair(shape, channels, rep_dim, batch_norm, dtype, device):
    torch.manual_seed(0)
    plain = plain_conv_encoder(shape, channels, rep_dim, batch_norm).to(device, dtype)
    fast = ConvEncoder(shape, channels, rep_dim, batch_norm).to(device, dtype)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


def images(shape, dtype, device, n=24):
    """Random images with a flat zero background in half of them (exact ties in every pooling window)."""
    x = torch.randn(n, *shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    x[: n // 2, :, : shape[1] // 2] = 0.0
    return x.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("running_statistics", [True, False], ids=["tracked", "untracked"])
@pytest.mark.parametrize("shape,channels,rep_dim,batch_norm", NETS)
def test_fast_encoder_equals_the_plain_network(shape, channels, rep_dim, batch_norm, running_statistics, dtype, tol,
                                               device):
    """``untracked``: batch statistics without running statistics, as ``methods.training`` trains (the MNIST
    LeNet's stages then run ``networks.batch_norm`` on CPU)."""
    plain, fast = pair(shape, channels, rep_dim, batch_norm, dtype, device)
    x = images(shape, dtype, device)
    def mode():
        return nullcontext() if running_statistics else untracked_batch_norm([plain, fast])

    def close(a, b):  # within tol of the reference's largest magnitude (float32 rounding is not elementwise-relative)
        torch.testing.assert_close(a, b, rtol=0, atol=tol * max(b.abs().max().item(), 1e-12))

    for _ in range(2):  # two training steps' forward / backward, then eval mode on the updated statistics
        with mode():
            out_plain, out_fast = plain(x), fast(x)
        close(out_fast, out_plain)
        g = torch.randn_like(out_plain)
        grads_plain = torch.autograd.grad(out_plain, list(plain.parameters()), g)
        grads_fast = torch.autograd.grad(out_fast, list(fast.parameters()), g)
        for a, b in zip(grads_fast, grads_plain):
            close(a, b)
    for a, b in zip(fast.buffers(), plain.buffers()):
        close(a.double(), b.double())
    plain.eval(), fast.eval()
    close(fast(x), plain(x))


@pytest.mark.parametrize("running_statistics", [True, False], ids=["tracked", "untracked"])
def test_forward_mode_tangents_equal_the_plain_network(running_statistics):
    """ELITE's meta-gradient is a forward-mode tangent along parameter directions: the same for both (ELITE
    computes it untracked)."""
    plain, fast = pair((1, 28, 28), (8, 4), 32, True, torch.float64, "cpu")
    x = images((1, 28, 28), torch.float64, "cpu")
    params = dict(plain.named_parameters())
    direction = {k: torch.randn_like(v) for k, v in params.items()}
    out = {}
    for name, net in (("plain", plain), ("fast", fast)):
        with nullcontext() if running_statistics else untracked_batch_norm([net]), fwAD.dual_level():
            duals = {k: fwAD.make_dual(v, direction[k]) for k, v in params.items()}
            primal, tangent = fwAD.unpack_dual(functional_call(net, duals, (x,), strict=False))
            out[name] = (primal.detach(), tangent)
    for a, b in zip(out["fast"], out["plain"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_convolutions_run_channels_last(shape):
    """Every convolution of the encoder and the decoder sees and returns channels-last tensors (stride 1
    on the channels, also for a 1-channel input, which ``Tensor.contiguous`` would leave as it is)."""
    spec = NetworkSpec(kind="conv", channels=(8, 4), rep_dim=32)
    enc = build_encoder(spec, shape)
    dec = build_decoder(spec, shape, enc)
    seen = []
    for m in [*enc.modules(), *dec.modules()]:
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda m, inputs, out: seen.append((inputs[0].stride(1), out.stride(1))))
    dec(enc(torch.randn(5, *shape)))
    assert len(seen) == 4 and all(strides == (1, 1) for strides in seen)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_encoder_and_decoder_work_stacked_under_vmap(shape):
    """Two models stacked with torch.func (as packed training maps them) give each model's own output."""
    spec = NetworkSpec(kind="conv", channels=(8, 4), rep_dim=16)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        enc = build_encoder(spec, shape)
        models.append(torch.nn.Sequential(enc, build_decoder(spec, shape, enc)).eval())
    params, buffers = stack_module_state(models)
    x = torch.randn(2, 6, *shape)
    out = vmap(lambda p, b, xb: functional_call(models[0], (p, b), (xb,)))(params, buffers, x)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(x[i]), rtol=1e-5, atol=1e-6)
