"""EngagementNet / EngagementHead: shapes for any clip length, padding, frozen backbone, input gradients."""
from __future__ import annotations

import pytest
import torch

from models.network import EngagementNet, build_engagement_net, create_engagement_head
from models.settings import ModelSettings
from models.training import make_optimizer
from pe_udfs.errors import ModelError


@pytest.fixture(scope="module")
def tiny_net() -> EngagementNet:
    torch.manual_seed(0)
    return build_engagement_net(ModelSettings(backbone="tiny"), frame_chunk=4).eval()


@pytest.mark.parametrize("s", [1, 3, 7])
def test_clips_of_any_length_give_one_prediction_per_clip(tiny_net, s):
    clips = torch.rand(2, s, 3, 224, 224)
    feats = tiny_net.features(clips)
    assert feats.shape == (2, s, 16, 7, 7)
    out = tiny_net(clips)
    assert out.shape == (2,) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_head_on_precomputed_features_equals_full_network(tiny_net):
    clips = torch.rand(2, 5, 3, 224, 224)
    with torch.no_grad():
        full = tiny_net(clips)
        cached = tiny_net.head(tiny_net.features(clips))
        # frame_chunk changes only the batching of frames, not the result
        tiny_net.frame_chunk = 10
        rechunked = tiny_net(clips)
        tiny_net.frame_chunk = 4
    torch.testing.assert_close(cached, full)
    torch.testing.assert_close(rechunked, full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_padded_and_masked_batch_equals_each_clip_alone(padding):
    torch.manual_seed(1)
    head = create_engagement_head(in_channels=6, conv_filters=5, dense_units=7, dropout=0.0, padding=padding).eval()
    a, b = torch.randn(3, 6, 4, 4), torch.randn(6, 6, 4, 4)
    padded = torch.zeros(2, 6, 6, 4, 4)
    padded[0, :3], padded[1] = a, b
    padded[0, 3:] = 50.0  # garbage in the padding must not matter
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    with torch.no_grad():
        together = head(padded, mask)
        alone = torch.stack([head(a[None])[0], head(b[None])[0]])
        unmasked = head(padded)
    torch.testing.assert_close(together, alone)
    assert not torch.allclose(unmasked[0], alone[0])  # without the mask the padding would change the answer


@pytest.mark.parametrize("padding, pad", [("same", 1), ("valid", 0)])
def test_head_matches_hand_computation(padding, pad):
    """Conv3d → ReLU → global max → Linear → ReLU → Linear, checked against an explicit computation."""
    torch.manual_seed(2)
    head = create_engagement_head(in_channels=2, conv_filters=3, dense_units=4, dropout=0.0, padding=padding).eval()
    feats = torch.randn(1, 4, 2, 3, 3)
    with torch.no_grad():
        conv = torch.nn.functional.conv3d(feats.permute(0, 2, 1, 3, 4), head.conv.weight, head.conv.bias, padding=pad)
        pooled = conv.clamp(min=0).flatten(2).max(dim=2).values
        l1, l2 = head.mlp[0], head.mlp[3]
        expected = (pooled @ l1.weight.T + l1.bias).clamp(min=0) @ l2.weight.T + l2.bias
        torch.testing.assert_close(head(feats), expected.squeeze(-1))


def test_training_step_leaves_backbone_unchanged_and_moves_head():
    torch.manual_seed(3)
    net = build_engagement_net(ModelSettings(backbone="tiny"))
    before_backbone = {k: v.clone() for k, v in net.backbone.state_dict().items()}  # incl. batch-norm statistics
    before_head = {k: v.clone() for k, v in net.head.state_dict().items()}
    opt = make_optimizer(net, learning_rate=1e-2, weight_decay=0.0)
    assert all(p.requires_grad for p in net.head.parameters())
    assert not any(p.requires_grad for p in net.backbone.parameters())
    net.train()
    assert not net.backbone.training and net.head.training  # a frozen backbone stays in eval mode
    loss = ((net(torch.rand(2, 3, 3, 224, 224)) - torch.tensor([1.0, -1.0])) ** 2).mean()
    loss.backward()
    opt.step()
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, before_backbone[k]), k
    assert any(not torch.equal(v, before_head[k]) for k, v in net.head.state_dict().items())


def test_gradients_reach_the_input_pixels_through_the_frozen_backbone(tiny_net):
    clips = torch.rand(1, 2, 3, 224, 224, requires_grad=True)
    tiny_net(clips).sum().backward()
    assert clips.grad is not None and clips.grad.shape == clips.shape and clips.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_net.backbone.parameters())


@pytest.mark.parametrize("shape", [(3, 3, 224, 224), (1, 0, 3, 224, 224), (1, 2, 4, 224, 224)])
def test_bad_clip_shapes_raise_model_error(tiny_net, shape):
    with pytest.raises(ModelError) as e:
        tiny_net(torch.rand(*shape))
    assert e.value.reason == "bad_clip" and e.value.stage == "model"


def test_valid_padding_is_the_papers_and_needs_three_seconds():
    head = create_engagement_head(in_channels=2, conv_filters=3, dense_units=4, padding="valid")
    assert head.conv.padding == (0, 0, 0)
    assert head(torch.randn(2, 3, 2, 7, 7)).shape == (2,)  # (S−2, 5, 5) after the convolution
    with pytest.raises(ModelError, match="at least 3 seconds"):
        head(torch.randn(1, 2, 2, 7, 7))
    with pytest.raises(ModelError, match="at least 3 seconds"):
        head(torch.randn(2, 4, 2, 7, 7), torch.tensor([[True] * 4, [True, True, False, False]]))
    with pytest.raises(ValueError, match="padding"):
        create_engagement_head(in_channels=2, padding="causal")
    net = build_engagement_net(ModelSettings(backbone="tiny", conv_padding="valid"), weights=None)
    assert net.head.conv.padding == (0, 0, 0) and net.config()["model"]["conv_padding"] == "valid"


def test_mask_without_any_real_frame_is_rejected(tiny_net):
    with pytest.raises(ModelError, match="at least one unmasked frame"):
        tiny_net.head(torch.rand(1, 2, 16, 7, 7), torch.zeros(1, 2, dtype=torch.bool))


def test_mobilenet_v2_network_shapes_and_config():
    net = build_engagement_net(ModelSettings())
    assert net.preprocess.feature_channels == 320 and net.preprocess.feature_size == (7, 7)
    assert net.head.conv.in_channels == 320 and net.head.conv.out_channels == 128
    assert net.head.conv.kernel_size == (3, 3, 3) and net.head.conv.padding == (1, 1, 1)
    assert net.head.mlp[0].out_features == 256 and net.head.mlp[2].p == pytest.approx(0.1)
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 2, 3, 224, 224)).shape == (1,)
    cfg = net.config()
    assert cfg["model"]["backbone"] == "mobilenet_v2" and cfg["preprocess"]["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_extract_features_matches_the_differentiable_path():
    from models.backbones import create_backbone
    from models.network import backbone_features, extract_features

    bb = create_backbone("tiny")
    frames = torch.rand(5, 3, 224, 224)
    with torch.no_grad():
        exact = backbone_features(bb, frames, 2)
    fp32 = extract_features(bb, frames, chunk=3, precision="float32")
    torch.testing.assert_close(fp32, exact, rtol=1e-5, atol=1e-5)
    bf16 = extract_features(bb, frames, chunk=3, precision="bfloat16")
    assert bf16.dtype == torch.float32 and bf16.shape == exact.shape and not bf16.requires_grad
    # bfloat16 keeps ~3 significant digits: well within 2% of the feature scale
    assert float((bf16 - exact).abs().max()) < 0.02 * float(exact.abs().max())
    with pytest.raises(ValueError, match="precision"):
        extract_features(bb, frames, precision="int8")
