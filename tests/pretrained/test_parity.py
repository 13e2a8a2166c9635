"""Converted checkpoints reproduce the reference implementations' logits.

For each architecture a reference PyTorch model gets random weights and random BatchNorm
statistics, its state dict is saved the way the real checkpoints are (safetensors for timm, a
DataParallel training checkpoint for the official CBAM/BAM code), the zoo model loads it
through `attention_zoo.get(..., weights=path)`, and both run on the same images: logits agree
to 1e-4 relative error and every source tensor is consumed (the loader refuses leftovers).
Fewer blocks per stage for the larger models and 64x64 inputs keep it fast.
"""

import numpy as np
import pytest

import attention_zoo
from attention_zoo import pretrained
from tests.pretrained.conftest import import_timm

pytestmark = pytest.mark.parity

SIZE, BATCH = 64, 2
TIMM_CBAM = dict(mlp_bias=False, pool_order="mean_max", spatial_gamma_init="ones")

# Full depth for ResNet-18/50, SE-ResNet-50 and the SK-ResNets (every tensor of a real
# checkpoint's layout); fewer blocks elsewhere (same key patterns: first blocks with
# projection shortcuts, later ones without).
REDUCED = (1, 1, 2, 1)

# id: (timm model name, timm kwargs, zoo model name, zoo overrides)
TIMM_CASES = {
    "resnet18": ("resnet18", {}, "resnet18", {}),
    "resnet50": ("resnet50", {}, "resnet50", {}),
    "seresnet50": ("seresnet50", {}, "se_resnet50", {}),
    "seresnext50_32x4d": ("seresnext50_32x4d", {"layers": REDUCED}, "se_resnext50_32x4d", {"layers": REDUCED}),
    "senet154": ("senet154", {"layers": REDUCED}, "senet154", {"layers": REDUCED}),
    "legacy_seresnet50": ("legacy_seresnet50", {"layers": list(REDUCED)}, "legacy_se_resnet50", {"layers": REDUCED}),
    "legacy_seresnext50_32x4d": (
        "legacy_seresnext50_32x4d",
        {"layers": list(REDUCED)},
        "legacy_se_resnext50_32x4d",
        {"layers": REDUCED},
    ),
    "legacy_senet154": (
        "legacy_senet154",
        {"layers": list(REDUCED)},
        "senet154",
        {"layers": REDUCED, "stem_pool": "ceil"},
    ),
    "skresnet18": ("skresnet18", {}, "sk_resnet18", {}),
    "skresnet34": ("skresnet34", {}, "sk_resnet34", {}),
    "skresnext50_32x4d": ("skresnext50_32x4d", {"layers": REDUCED}, "sknet50", {"layers": REDUCED}),
    "resnet50_cbam_timm_layout": (
        "resnet50",
        {"layers": REDUCED, "block_args": {"attn_layer": "cbam"}},
        "cbam_resnet50",
        {"layers": REDUCED, "attention_options": TIMM_CBAM},
    ),
    # The official pooling order: the loader swaps the spatial kernel's two input channels.
    "resnet50_cbam_into_official_pool_order": (
        "resnet50",
        {"layers": REDUCED, "block_args": {"attn_layer": "cbam"}},
        "cbam_resnet50",
        {"layers": REDUCED, "attention_options": dict(mlp_bias=False, pool_order="max_mean")},
    ),
    # timm's EcaModule picks k from the channel count, as the zoo's ECA does with kernel_size=None.
    "resnet50_eca": (
        "resnet50",
        {"layers": REDUCED, "block_args": {"attn_layer": "eca"}},
        "eca_resnet50",
        {"layers": REDUCED, "attention_options_per_stage": None},
    ),
}


@pytest.fixture(scope="module")
def torch_and_timm():
    timm, torch = import_timm()
    torch.set_num_threads(2)
    return timm, torch


def randomize_torch(module, torch, seed):
    """Random BatchNorm affine parameters and statistics and random biases: nothing stays at the
    1/0 a fresh model starts with (timm even zeroes each block's last BN gamma)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    def normal(tensor, std):
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                uniform(layer.weight, 0.5, 1.5)
                normal(layer.bias, 0.1)
                normal(layer.running_mean, 0.1)
                uniform(layer.running_var, 0.5, 1.5)
            elif getattr(layer, "bias", None) is not None and isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                normal(layer.bias, 0.1)
    return module.eval()


def images(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, SIZE, SIZE, 3)).astype("float32")


def torch_logits(module, torch, x):
    with torch.no_grad():
        return module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def zoo_logits(name, weights, overrides):
    model = attention_zoo.get(name, weights=weights, input_shape=(SIZE, SIZE, 3), **overrides)
    return model, np.asarray(model(images(), training=False))


def relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def state_dict_numpy(module):
    return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


@pytest.mark.parametrize("case", sorted(TIMM_CASES))
def test_timm_checkpoint_reproduces_timm_logits(case, torch_and_timm, tmp_path):
    timm, torch = torch_and_timm
    timm_name, timm_kwargs, zoo_name, overrides = TIMM_CASES[case]
    torch.manual_seed(0)
    reference = randomize_torch(timm.create_model(timm_name, pretrained=False, **timm_kwargs), torch, seed=1)
    state = state_dict_numpy(reference)
    path = tmp_path / f"{case}.safetensors"
    from safetensors.numpy import save_file

    save_file(state, str(path))

    # Every source tensor has a destination (num_batches_tracked aside) and nothing is left over.
    converted = pretrained.convert(pretrained.read_state_dict(path))
    assert set(converted.sources.values()) == {key for key in state if not key.endswith("num_batches_tracked")}

    model, logits = zoo_logits(zoo_name, str(path), overrides)
    assert model.pretrained_weights.loaded == len(model.weights) == len(converted.tensors)
    expected = torch_logits(reference, torch, images())
    assert logits.shape == expected.shape == (BATCH, 1000)
    assert relative_error(logits, expected) <= 1e-4


# --- the official CBAM / BAM code (Jongchan/attention-module), re-stated in PyTorch ----------
# Module names and shapes follow MODELS/model_resnet.py, cbam.py and bam.py so the state dict
# has the official keys; the forward passes follow the official ones. One deliberate change:
# the official ImageNet head pools with AvgPool2d(7), which equals global average pooling at
# 224x224 only, so these models pool globally to run at 64x64.


def official_modules(torch):
    nn, functional = torch.nn, torch.nn.functional

    class Flatten(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)

    class ChannelGate(nn.Module):  # CBAM: shared MLP on avg- and max-pooled vectors, summed
        def __init__(self, channels, reduction=16):
            super().__init__()
            self.mlp = nn.Sequential(
                Flatten(), nn.Linear(channels, channels // reduction), nn.ReLU(), nn.Linear(channels // reduction, channels)
            )

        def forward(self, x):
            logits = self.mlp(functional.adaptive_avg_pool2d(x, 1)) + self.mlp(functional.adaptive_max_pool2d(x, 1))
            return x * torch.sigmoid(logits)[:, :, None, None]

    class BasicConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
            self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

        def forward(self, x):
            return self.bn(self.conv(x))

    class SpatialGate(nn.Module):  # channel max, then channel mean (ChannelPool)
        def __init__(self):
            super().__init__()
            self.spatial = BasicConv()

        def forward(self, x):
            pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
            return x * torch.sigmoid(self.spatial(pooled))

    class CBAM(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.ChannelGate = ChannelGate(channels)
            self.SpatialGate = SpatialGate()

        def forward(self, x):
            return self.SpatialGate(self.ChannelGate(x))

    class BamChannel(nn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            hidden = channels // reduction
            self.gate_c = nn.Sequential()
            self.gate_c.add_module("flatten", Flatten())
            self.gate_c.add_module("gate_c_fc_0", nn.Linear(channels, hidden))
            self.gate_c.add_module("gate_c_bn_1", nn.BatchNorm1d(hidden))
            self.gate_c.add_module("gate_c_relu_1", nn.ReLU())
            self.gate_c.add_module("gate_c_fc_final", nn.Linear(hidden, channels))

        def forward(self, x):
            return self.gate_c(functional.avg_pool2d(x, x.shape[2], stride=x.shape[2]))[:, :, None, None]

    class BamSpatial(nn.Module):
        def __init__(self, channels, reduction=16, dilation=4):
            super().__init__()
            hidden = channels // reduction
            self.gate_s = nn.Sequential()
            self.gate_s.add_module("gate_s_conv_reduce0", nn.Conv2d(channels, hidden, 1))
            self.gate_s.add_module("gate_s_bn_reduce0", nn.BatchNorm2d(hidden))
            self.gate_s.add_module("gate_s_relu_reduce0", nn.ReLU())
            for i in range(2):
                conv = nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)
                self.gate_s.add_module(f"gate_s_conv_di_{i}", conv)
                self.gate_s.add_module(f"gate_s_bn_di_{i}", nn.BatchNorm2d(hidden))
                self.gate_s.add_module(f"gate_s_relu_di_{i}", nn.ReLU())
            self.gate_s.add_module("gate_s_conv_final", nn.Conv2d(hidden, 1, 1))

        def forward(self, x):
            return self.gate_s(x)

    class BAM(nn.Module):  # the released code multiplies the two branches
        def __init__(self, channels):
            super().__init__()
            self.channel_att = BamChannel(channels)
            self.spatial_att = BamSpatial(channels)

        def forward(self, x):
            return x * (1 + torch.sigmoid(self.channel_att(x) * self.spatial_att(x)))

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride, downsample, use_cbam):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.downsample = downsample
            self.cbam = CBAM(planes * 4) if use_cbam else None

        def forward(self, x):
            out = functional.relu(self.bn1(self.conv1(x)))
            out = functional.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            residual = x if self.downsample is None else self.downsample(x)
            if self.cbam is not None:
                out = self.cbam(out)
            return functional.relu(out + residual)

    class ResidualNet(nn.Module):  # ResNet-50 for ImageNet, att_type "CBAM" or "BAM"
        def __init__(self, att_type, layers=(3, 4, 6, 3)):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.bams = att_type == "BAM"
            if self.bams:
                self.bam1, self.bam2, self.bam3 = BAM(256), BAM(512), BAM(1024)
            inplanes = 64
            for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers), start=1):
                stride = 1 if stage == 1 else 2
                projection = nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False)
                downsample = nn.Sequential(projection, nn.BatchNorm2d(planes * 4))
                blocks = [Bottleneck(inplanes, planes, stride, downsample, att_type == "CBAM")]
                blocks += [Bottleneck(planes * 4, planes, 1, None, att_type == "CBAM") for _ in range(depth - 1)]
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
                inplanes = planes * 4
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(functional.relu(self.bn1(self.conv1(x))))
            for stage in (1, 2, 3, 4):
                x = getattr(self, f"layer{stage}")(x)
                if self.bams and stage < 4:
                    x = getattr(self, f"bam{stage}")(x)
            return self.fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))

    return ResidualNet


@pytest.mark.parametrize("att_type, zoo_name", [("CBAM", "cbam_resnet50"), ("BAM", "bam_resnet50")])
def test_official_training_checkpoint_reproduces_the_official_forward(att_type, zoo_name, torch_and_timm, tmp_path):
    _, torch = torch_and_timm
    torch.manual_seed(0)
    reference = randomize_torch(official_modules(torch)(att_type, layers=REDUCED), torch, seed=2)
    # What train_imagenet.py's save_checkpoint writes for a DataParallel model.
    state = {f"module.{key}": value for key, value in reference.state_dict().items()}
    checkpoint = {"epoch": 100, "arch": "resnet", "state_dict": state, "best_prec1": 77.6, "optimizer": {"state": {}}}
    path = tmp_path / f"RESNET50_{att_type}_checkpoint.pth.tar"
    torch.save(checkpoint, path)

    model, logits = zoo_logits(zoo_name, str(path), {"layers": REDUCED})
    attention_keys = [key for key in state if ".cbam." in key or key.startswith("module.bam")]
    assert attention_keys and model.pretrained_weights.loaded == len(model.weights)
    assert relative_error(logits, torch_logits(reference, torch, images())) <= 1e-4


def test_a_pickle_that_would_run_code_is_refused(torch_and_timm, tmp_path):
    _, torch = torch_and_timm

    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "extra": Payload()}, path)
    with pytest.raises(pretrained.CorruptWeightsError, match="weights_only=True"):
        attention_zoo.get("resnet18", weights=str(path), input_shape=(SIZE, SIZE, 3))


def test_a_timm_pytorch_file_loads_like_its_safetensors_twin(torch_and_timm, tmp_path):
    timm, torch = torch_and_timm
    reference = randomize_torch(timm.create_model("skresnet18", pretrained=False), torch, seed=3)
    torch.save(reference.state_dict(), tmp_path / "skresnet18.pth")
    _, logits = zoo_logits("sk_resnet18", str(tmp_path / "skresnet18.pth"), {})
    assert relative_error(logits, torch_logits(reference, torch, images())) <= 1e-4
