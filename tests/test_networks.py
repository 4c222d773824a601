"""The fast encoder computes what the textbook network computes (outputs, gradients, BatchNorm
statistics), in float64, train and eval mode, for the MNIST and CIFAR-10 LeNets and an odd size."""

import pytest
import torch

from elite_exp.networks import NetworkSpec, build_decoder, build_encoder
from elite_exp.networks.conv import ConvEncoder, PlainConvEncoder


@pytest.mark.parametrize("shape,channels,rep_dim", [((1, 28, 28), (8, 4), 32), ((3, 32, 32), (32, 64, 128), 128),
                                                    ((1, 29, 31), (8, 4), 16)])
def test_fast_encoder_equals_the_plain_network(shape, channels, rep_dim):
    torch.manual_seed(0)
    plain = PlainConvEncoder(shape, channels, rep_dim).double()
    fast = ConvEncoder(shape, channels, rep_dim).double()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(24, *shape, dtype=torch.float64)
    for _ in range(2):  # two training steps' forward / backward, then eval mode on the updated statistics
        out_plain, out_fast = plain(x), fast(x)
        torch.testing.assert_close(out_fast, out_plain, rtol=1e-10, atol=1e-12)
        g = torch.randn_like(out_plain)
        grads_plain = torch.autograd.grad(out_plain, list(plain.parameters()), g)
        grads_fast = torch.autograd.grad(out_fast, list(fast.parameters()), g)
        for a, b in zip(grads_fast, grads_plain):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(fast.buffers(), plain.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    plain.eval(), fast.eval()
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-10, atol=1e-12)


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
