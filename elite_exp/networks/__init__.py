"""Networks: bias-free encoders (Deep SVDD / Deep SAD LeNets, MLP) and mirrored decoders."""

from elite_exp.networks.factory import NetworkSpec, build_decoder, build_encoder, default_spec, normal_spec

__all__ = ["NetworkSpec", "build_decoder", "build_encoder", "default_spec", "normal_spec"]
