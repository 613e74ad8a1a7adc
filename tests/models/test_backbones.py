"""Backbones: torchvision's ResNet18 keys, EfficientNet-Lite0's real ImageNet weights, band spreading, freezing."""

from __future__ import annotations

import pytest
import torch

from geodl_hpc.archive.sources import data_file
from geodl_hpc.errors import InputDataError
from geodl_hpc.models.backbones import (
    ResNet18,
    build_backbone,
    load_weights,
    parameter_groups,
    spread_filters,
)

# torchvision.models.resnet18().state_dict(): 122 entries, 11,689,512 parameters (1000 classes).
TORCHVISION_RESNET18_KEYS = 122
TORCHVISION_RESNET18_PARAMS = 11_689_512


def test_resnet18_has_torchvision_keys_and_size() -> None:
    model = ResNet18()
    keys = list(model.state_dict())
    assert len(keys) == TORCHVISION_RESNET18_KEYS
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_RESNET18_PARAMS
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var", "fc.bias"):
        assert key in keys


def test_resnet18_round_trip_with_band_spreading_and_fresh_head(tmp_path) -> None:
    torch.manual_seed(0)
    rgb = ResNet18(3, 1000)
    path = tmp_path / "resnet18.pth"
    torch.save({"model": rgb.state_dict()}, path)
    model = build_backbone("resnet18", 6, 7)
    adapted = load_weights(model, "resnet18", path)
    assert adapted == {"spread": ["conv1.weight"], "fresh_head": ["fc.weight", "fc.bias"]}
    w = model.conv1.weight.detach()
    assert torch.allclose(w[:, 4], rgb.conv1.weight[:, 1].detach() * 0.5)
    assert torch.equal(model.layer3[0].conv2.weight, rgb.layer3[0].conv2.weight)


def test_spread_filters_keeps_response_to_equal_bands() -> None:
    weight = torch.randn(8, 3, 3, 3)
    spread = spread_filters(weight, 6)
    assert torch.allclose(spread.sum(dim=1), weight.sum(dim=1))


def test_mismatched_weights_name_the_keys(tmp_path) -> None:
    path = tmp_path / "other.pth"
    state = ResNet18().state_dict()
    state["layer9.weight"] = torch.zeros(1)
    del state["layer1.0.bn1.bias"]
    torch.save(state, path)
    with pytest.raises(InputDataError, match=r"missing: layer1\.0\.bn1\.bias; unexpected: layer9\.weight"):
        load_weights(build_backbone("resnet18", 4, 5), "resnet18", path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputDataError, match=r"junk\.pth: not a weights-only"):
        load_weights(ResNet18(), "resnet18", tmp_path / "junk.pth")


def test_efficientnet_lite0_loads_real_imagenet_weights() -> None:
    path = data_file("efficientnet_lite0", "efficientnet-lite0-57934424.pth")
    model = build_backbone("efficientnet_lite0", 6, 7, stem_stride=1)
    adapted = load_weights(model, "efficientnet_lite0", path)
    assert adapted["spread"] == ["_conv_stem.weight"]
    # Real trained weights: BatchNorm statistics moved away from their initial mean 0 / var 1.
    assert float(model._bn1.running_var.std()) > 0.1
    model.eval()
    assert model(torch.randn(2, 6, 16, 16)).shape == (2, 7)


def test_freezing_and_discriminative_rates() -> None:
    model = build_backbone("resnet18", 6, 7)
    groups = parameter_groups(model, "resnet18", 1e-3, freeze=("conv1", "bn1", "layer1"), backbone_lr_factor=0.1)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[1]["lr"] == pytest.approx(1e-4)
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    assert model.layer2[0].conv1.weight.requires_grad
    probe = parameter_groups(build_backbone("efficientnet_lite0", 3, 2), "efficientnet_lite0", 1e-3, freeze=("*",))
    assert len(probe) == 1 and len(probe[0]["params"]) == 2
