"""Backbone registry: names, offline ImageNet weights, loading a local state dict (xception), clear errors."""
from __future__ import annotations

import pytest
import torch

from models.backbones import BackboneWeightsError, UnknownBackbone, create_backbone, list_backbones


def test_registry_lists_the_three_backbones_and_rejects_unknown_names():
    assert {"mobilenet_v2", "mobilenet_v2_1280", "xception", "tiny"} <= set(list_backbones())
    with pytest.raises(UnknownBackbone) as e:
        create_backbone("resnet9000")
    assert "resnet9000" in str(e.value) and "mobilenet_v2" in str(e.value) and "xception" in str(e.value)


def test_tiny_backbone_is_frozen_deterministic_and_normalises_inside():
    a, b = create_backbone("tiny"), create_backbone("tiny")
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        fa = a(x)
    assert fa.shape == (2, 16, 7, 7) and a.preprocess.feature_size == (7, 7)
    torch.testing.assert_close(fa, b(x).detach())  # "imagenet" for tiny = a fixed seeded initialisation
    assert not any(p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training
    with torch.no_grad():  # the backbone's own mean/std are applied: same as normalising by hand
        by_hand = a.features((x - a.mean) / a.std)
    torch.testing.assert_close(fa, by_hand)


def test_mobilenet_v2_uses_torchvisions_official_imagenet_weights_offline():
    """mobilenet_v2_1280 equals torchvision's ImageNet MobileNetV2 features on normalised input, and with
    torchvision's own classifier the coffee photo is a cup or espresso (ImageNet classes 967/968); the default
    mobilenet_v2 is the same network one layer earlier (320 channels, before the 1×1 expansion)."""
    from skimage.data import coffee
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    full, light = create_backbone("mobilenet_v2_1280"), create_backbone("mobilenet_v2")
    assert full.preprocess.weights == light.preprocess.weights == "imagenet"
    assert (full.out_channels, light.out_channels) == (1280, 320)
    ref = mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1).eval()
    img = torch.from_numpy(coffee()).permute(2, 0, 1).float().div(255)[None]
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    normalised = ((img - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                  / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    with torch.no_grad():
        feats, light_feats = full(img), light(img)
        expected_light = ref.features[:-1](normalised)
        expected = ref.features[-1](expected_light)
        logits = ref.classifier(feats.mean(dim=(2, 3)))
    torch.testing.assert_close(light_feats, expected_light)
    torch.testing.assert_close(feats, expected)
    assert light_feats.shape == (1, 320, 7, 7)
    assert {967, 968} & set(logits.topk(5).indices[0].tolist())


def test_xception_loads_imagenet_weights_from_a_local_state_dict(tmp_path):
    import timm

    torch.manual_seed(4)
    src = timm.create_model("legacy_xception", pretrained=False)  # with its 1000-class classifier, like the file
    path = tmp_path / "xception-imagenet.pth"
    torch.save(src.state_dict(), path)
    bb = create_backbone("xception", weights_file=str(path))
    assert bb.out_channels == 2048 and bb.preprocess.mean == (0.5, 0.5, 0.5) and bb.preprocess.weights == path.name
    loaded = bb.features.net.state_dict()
    for k, v in src.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(loaded[k], v), k
    x = torch.rand(1, 3, 64, 64)  # small input: the check is the loading path, not ImageNet resolution
    with torch.no_grad():
        expected = src.eval().forward_features((x - 0.5) / 0.5)
        torch.testing.assert_close(bb(x), expected)
    # a checkpoint wrapper {"state_dict": ...} is unwrapped too
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": src.state_dict()}, wrapped)
    assert create_backbone("xception", weights_file=str(wrapped)).out_channels == 2048


def test_xception_weight_errors_are_clear(tmp_path):
    with pytest.raises(BackboneWeightsError, match="backbone_weights"):
        create_backbone("xception")  # ImageNet weights only from a local file: nothing is downloaded
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        create_backbone("xception", weights_file=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "tiny.pth"
    torch.save(create_backbone("tiny").features.state_dict(), wrong)
    with pytest.raises(BackboneWeightsError, match="do not fit"):
        create_backbone("xception", weights_file=str(wrong))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneWeightsError, match="cannot read"):
        create_backbone("xception", weights_file=str(garbage))
