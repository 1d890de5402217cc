"""fp32 is the reference; bf16 keeps p_fake within 0.01 of it (a map's probabilities within 0.02), for every family
and the localizer; a model running in bf16 keeps its linears in bf16 and gives what autocast over float32 weights
gave, bit for bit; auto picks bf16 only where it is fast."""

import ctypes
import ctypes.util

import numpy as np
import pytest
import torch
from torch import nn
from transformers.activations import QuickGELUActivation

import clipforensics
from clipforensics.inference import runtime
from clipforensics.models.precision import PackedLinear, pack_linears, packs_linears
from clipforensics.models.towers.activations import QuickGelu

from .conftest import SHIPPED, expected

P_FAKE_TOLERANCE = 1e-2
MAP_TOLERANCE = 2e-2
FAMILIES = ["gend-hf", "backbones/gend-dinov3", "backbones/gend-pe"]


def test_bf16_keeps_p_fake_within_a_hundredth_of_fp32_on_the_sample_faces(reference, sample_faces):
    files = [sample_faces / name for name in expected(reference, "gend-hf.expected.json")["files"]]
    fp32 = clipforensics.load(reference / "gend-hf", precision="fp32").predict(files, faces="none")
    bf16 = clipforensics.load(reference / "gend-hf", precision="bf16").predict(files, faces="none")

    difference = np.abs(np.array([r.p_fake for r in bf16]) - np.array([r.p_fake for r in fp32]))

    assert difference.max() < P_FAKE_TOLERANCE
    assert difference.max() > 0  # bf16 really ran


def _crops() -> torch.Tensor:
    return torch.from_numpy(np.load(SHIPPED / "backbones" / "input.npy"))


@pytest.mark.parametrize("checkpoint", FAMILIES)
def test_bf16_keeps_p_fake_within_a_hundredth_of_fp32_for_every_family(checkpoint):
    fp32, _ = clipforensics.load(SHIPPED / checkpoint, precision="fp32").forward_batch(_crops())
    bf16, _ = clipforensics.load(SHIPPED / checkpoint, precision="bf16").forward_batch(_crops())

    difference = (bf16 - fp32).abs()

    assert difference.max() < P_FAKE_TOLERANCE
    assert difference.max() > 0


def test_bf16_keeps_a_localizers_maps_within_two_hundredths_of_fp32(reference):
    pixels = torch.from_numpy(np.load(reference / "declip-conv-4.input.npy"))
    fp32 = clipforensics.load(reference / "declip-conv-4.pth", precision="fp32").forward_batch(pixels, maps=True)
    bf16 = clipforensics.load(reference / "declip-conv-4.pth", precision="bf16").forward_batch(pixels, maps=True)

    assert (bf16[0] - fp32[0]).abs().max() < P_FAKE_TOLERANCE
    assert 0 < (bf16[1] - fp32[1]).abs().max() < MAP_TOLERANCE


@pytest.mark.parametrize("checkpoint", FAMILIES)
def test_a_model_kept_in_bf16_gives_what_autocast_over_float32_weights_gave(checkpoint):
    fp32 = clipforensics.load(SHIPPED / checkpoint, precision="fp32")
    with torch.inference_mode(), runtime.autocast(torch.device("cpu"), "bf16"):
        autocast = fp32.model(_crops()).logits.float()

    kept = clipforensics.load(SHIPPED / checkpoint, precision="bf16").predict_tensor(_crops())

    assert torch.equal(kept, autocast)


@pytest.mark.parametrize("checkpoint", FAMILIES)
def test_loading_in_bf16_keeps_the_towers_linears_in_bf16_and_the_rest_in_float32(checkpoint):
    model = clipforensics.load(SHIPPED / checkpoint, precision="bf16").model

    for name, module in model.named_modules():
        in_bf16 = name.startswith("backbone.") and isinstance(module, nn.Linear)
        for tensor in module.parameters(recurse=False):
            assert tensor.dtype == (torch.bfloat16 if in_bf16 else torch.float32), name


def test_a_predictor_in_bf16_leaves_the_model_it_was_given_in_float32(tiny_detector):
    predictor = clipforensics.Predictor(tiny_detector, precision="bf16")

    assert predictor.model.backbone.blocks[0].mlp.fc1.weight.dtype == torch.bfloat16
    assert all(parameter.dtype == torch.float32 for parameter in tiny_detector.parameters())
    assert clipforensics.Predictor(predictor.model, precision="bf16").model is predictor.model  # kept, not copied


@pytest.mark.parametrize("checkpoint", FAMILIES)
def test_a_bf16_predictor_packs_every_tower_linear_where_onednn_runs_bf16(checkpoint):
    model = clipforensics.load(SHIPPED / checkpoint, precision="bf16").model

    linears = [module for name, module in model.named_modules()
               if name.startswith("backbone.") and isinstance(module, nn.Linear)]

    assert linears and all(isinstance(module, PackedLinear) == packs_linears() for module in linears)
    assert all(not name.endswith(".packed") for name in model.state_dict())


@pytest.mark.skipif(not packs_linears(), reason="oneDNN runs no bf16 on this CPU: nothing is packed")
def test_a_packed_linear_gives_the_plain_bits_and_takes_the_plain_path_for_gradients_or_a_changed_weight():
    torch.manual_seed(0)
    linear = nn.Linear(64, 96).to(torch.bfloat16)
    model = nn.Module()
    model.backbone = linear
    pack_linears(model)
    x = torch.randn(2, 7, 64, dtype=torch.bfloat16)

    with torch.inference_mode():
        packed = linear(x)
    assert isinstance(linear, PackedLinear)
    assert torch.equal(packed, torch.nn.functional.linear(x, linear.weight, linear.bias))

    recorded = linear(x.requires_grad_())
    recorded.float().sum().backward()
    assert torch.equal(recorded.detach(), packed) and x.grad is not None

    with torch.no_grad():
        linear.weight.mul_(2)
        changed = linear(x)
    assert torch.equal(changed, torch.nn.functional.linear(x, linear.weight, linear.bias))


def test_explaining_on_a_packed_bf16_predictor_keeps_its_p_fake():
    predictor = clipforensics.load(SHIPPED / "gend-hf", precision="bf16")

    plain, _ = predictor.forward_batch(_crops())
    explained, maps, _ = predictor.explain_batch(_crops())

    assert torch.equal(explained, plain) and maps.shape[0] == len(plain)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_clips_activation_is_transformers_quick_gelu_bit_for_bit(dtype, requires_grad):
    x = (torch.randn(3, 700, 1024) * 4).to(dtype).requires_grad_(requires_grad)  # two slices and a part
    expected = QuickGELUActivation()(x.detach().clone())

    assert torch.equal(QuickGelu()(x), expected)


def test_clips_activation_works_in_place_only_where_no_gradient_is_wanted():
    x = torch.randn(2, 5, 8)
    original = x.clone()
    recorded = original.clone().requires_grad_()

    assert QuickGelu()(x) is x and not torch.equal(x, original)
    assert QuickGelu()(recorded) is not recorded and torch.equal(recorded.detach(), original)


@pytest.mark.parametrize(("fast_bf16", "expected_precision"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_the_bf16_matrix_units(monkeypatch, fast_bf16, expected_precision):
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast_bf16)

    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected_precision


def test_explicit_precision_is_kept_and_unknown_is_refused():
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError, match="auto.*fp32.*bf16"):
        runtime.resolve_precision("fp16", torch.device("cpu"))


def test_asking_for_cuda_without_a_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    with pytest.raises(ValueError, match="--device cpu"):
        runtime.resolve_device("cuda")


class _MallocInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mapped_bytes() -> int:
    """glibc's bytes in buffers it mapped on their own (``mallinfo2().hblkhd``)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallocInfo
    return libc.mallinfo2().hblkhd


@pytest.mark.skipif(not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2"), reason="not glibc 2.33+")
def test_a_model_pass_keeps_its_large_buffers_on_the_heap_and_leaves_glibc_as_it_was():
    size, cpu = 64 << 20, torch.device("cpu")
    mapped = _mapped_bytes()
    outside = torch.empty(size, dtype=torch.uint8)
    assert _mapped_bytes() >= mapped + size  # glibc's default: a buffer this large is mapped on its own
    del outside

    with runtime.activations_on_the_heap(cpu):
        with runtime.activations_on_the_heap(cpu):  # a concurrent pass ends first
            pass
        inside = torch.empty(size, dtype=torch.uint8)
        assert _mapped_bytes() < mapped + size
        del inside

    after = torch.empty(size, dtype=torch.uint8)
    assert _mapped_bytes() >= mapped + size
    del after
