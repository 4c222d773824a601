"""Build an encoder / decoder pair from an input shape and a :class:`NetworkSpec`."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from elite_exp.errors import ConfigError
from elite_exp.networks.conv import ConvDecoder, ConvEncoder
from elite_exp.networks.mlp import MLPDecoder, MLPEncoder


@dataclass(frozen=True)
class NetworkSpec:
    """``kind`` is ``conv`` (images ``(C, H, W)``) or ``mlp`` (vectors ``(D,)``).
    ``channels`` are the conv stages, ``hidden`` the MLP hidden sizes."""

    kind: str = "conv"
    channels: tuple[int, ...] = (8, 4)
    hidden: tuple[int, ...] = (128, 64)
    rep_dim: int = 32
    batch_norm: bool = True


def default_spec(input_shape: tuple[int, ...]) -> NetworkSpec:
    """Deep SVDD's networks: the small MNIST LeNet for grey images, the CIFAR-10 LeNet
    (32-64-128, 128-d) for colour images, Deep SAD's MLP for vectors."""
    if len(input_shape) == 1:
        return NetworkSpec(kind="mlp", hidden=(128, 64), rep_dim=32)
    if len(input_shape) == 3 and input_shape[0] == 1:
        return NetworkSpec(kind="conv", channels=(8, 4), rep_dim=32)
    if len(input_shape) == 3:
        return NetworkSpec(kind="conv", channels=(32, 64, 128), rep_dim=128)
    raise ConfigError(f"input shape {input_shape} is not supported; use (N, D) vectors or (N, C, H, W) images")


def _is_size(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) and v >= 1


def normal_spec(spec: NetworkSpec, kind_known: bool = True) -> NetworkSpec:
    """``spec`` checked, with its sizes as tuples of Python ints (lists and numpy integers are accepted); ConfigError
    naming the first bad field: ``kind`` conv or mlp, ``channels`` / ``hidden`` lists of whole numbers >= 1 (conv
    needs one stage at least, checked when ``kind_known``), ``rep_dim`` a whole number >= 1, ``batch_norm`` true or
    false."""
    if spec.kind not in ("conv", "mlp"):
        raise ConfigError(f"kind={spec.kind!r} is not allowed; a network's kind is conv or mlp")
    sizes = {}
    for name in ("channels", "hidden"):
        given = getattr(spec, name)
        given = given.tolist() if isinstance(given, np.ndarray) and given.ndim == 1 else given
        if not (isinstance(given, list | tuple) and all(_is_size(v) for v in given)):
            shown = [v.item() if isinstance(v, np.generic) else v for v in given] if isinstance(given, list | tuple) \
                else given
            raise ConfigError(f"{name}={shown!r} is not allowed; a network's {name} is a list of whole numbers >= 1")
        sizes[name] = tuple(int(v) for v in given)
    if kind_known and spec.kind == "conv" and not sizes["channels"]:
        raise ConfigError("channels=[] is not allowed; a conv network needs one stage at least")
    if not _is_size(spec.rep_dim):
        raise ConfigError(f"rep_dim={spec.rep_dim!r} is not allowed; the embedding needs a whole number rep_dim >= 1")
    if not isinstance(spec.batch_norm, bool | np.bool_):
        raise ConfigError(f"batch_norm={spec.batch_norm!r} is not allowed; it must be true or false")
    return dataclasses.replace(spec, **sizes, rep_dim=int(spec.rep_dim), batch_norm=bool(spec.batch_norm))


def _check(spec: NetworkSpec, input_shape: tuple[int, ...]) -> None:
    normal_spec(spec)
    if spec.kind == "mlp" and len(input_shape) != 1:
        raise ConfigError(f"network kind 'mlp' needs vector inputs (N, D), got samples of shape {input_shape}")
    if spec.kind == "conv":
        if len(input_shape) != 3:
            raise ConfigError(f"network kind 'conv' needs images (N, C, H, W), got samples of shape {input_shape}")
        if min(input_shape[1:]) < 2 ** len(spec.channels):
            raise ConfigError(f"images of size {input_shape[1:]} are too small for {len(spec.channels)} pooling "
                              f"stages: they need {2 ** len(spec.channels)} pixels a side at least (data.image_size), "
                              f"or fewer stages (channels)")


def build_encoder(spec: NetworkSpec, input_shape: tuple[int, ...]) -> nn.Module:
    _check(spec, input_shape)
    if spec.kind == "mlp":
        return MLPEncoder(input_shape[0], tuple(spec.hidden), spec.rep_dim, spec.batch_norm)
    return ConvEncoder(tuple(input_shape), tuple(spec.channels), spec.rep_dim, spec.batch_norm)


def build_decoder(spec: NetworkSpec, input_shape: tuple[int, ...], encoder: nn.Module) -> nn.Module:
    if spec.kind == "mlp":
        return MLPDecoder(input_shape[0], tuple(spec.hidden), spec.rep_dim, spec.batch_norm)
    return ConvDecoder(tuple(input_shape), encoder.feature_shape, tuple(spec.channels), spec.rep_dim, spec.batch_norm)
