"""The bf16 attention kernel computes SDPA's attention as closely to float32 as SDPA's flash kernel does, the same
whatever the number of threads, differentiably; activations by table are torch's bit for bit; float32 stays SDPA's
bit for bit, and without a compiler (or when told) bf16 is SDPA's too."""

import logging

import pytest
import torch
import torch.nn.functional as F

import clipforensics
from clipforensics.models.towers import bf16_kernels
from clipforensics.models.towers.activations import Gelu, QuickGelu, quick_gelu
from clipforensics.models.towers.bf16_kernels import KERNEL, SDPA, applies, attend, attention_kernel

from .conftest import SHIPPED

runs_here = pytest.mark.skipif(attention_kernel("cpu", "bf16", 64) != KERNEL,
                               reason="the kernel does not run on this CPU (no AVX512-BF16, or AMX)")


def _qkv(batch: int, heads: int, queries: int, keys: int, spread: float = 1.0, seed: int = 0):
    """Queries, keys and values as a tower makes them: strided views of one projection [B, tokens, 3, heads, 64]."""
    generator = torch.Generator().manual_seed(seed)
    if queries == keys:
        projected = (torch.randn(batch, keys, 3, heads, 64, generator=generator) * spread).to(torch.bfloat16)
        return tuple(projected[:, :, index].transpose(1, 2) for index in range(3))
    query = (torch.randn(batch, heads, queries, 64, generator=generator) * spread).to(torch.bfloat16)
    key, value = ((torch.randn(batch, keys, heads, 64, generator=generator) * spread).to(torch.bfloat16)
                  .transpose(1, 2) for _ in range(2))
    return query, key, value


def _error(output: torch.Tensor, query, key, value) -> torch.Tensor:
    exact = F.scaled_dot_product_attention(query.float(), key.float(), value.float())
    return (output.float() - exact).abs()


@runs_here
@pytest.mark.parametrize("shape", [(2, 3, 5, 5, 1.0), (3, 2, 17, 17, 3.0), (4, 16, 257, 257, 1.0),
                                   (2, 16, 257, 257, 3.0), (2, 4, 1, 257, 1.0), (1, 2, 100, 33, 2.0)])
def test_the_kernel_is_as_close_to_float32_attention_as_sdpas_flash_kernel(shape):
    *sizes, spread = shape
    query, key, value = _qkv(*sizes, spread)
    assert applies(query, key, value)

    with torch.inference_mode():
        ours = _error(attend(query, key, value), query, key, value)
        flash = _error(F.scaled_dot_product_attention(query, key, value), query, key, value)

    assert ours.mean() <= flash.mean() * 1.05
    assert ours.max() <= flash.max() * 1.5


@runs_here
def test_the_kernel_gives_the_same_bits_whatever_the_number_of_threads():
    query, key, value = _qkv(3, 5, 257, 257, 2.0)
    threads = torch.get_num_threads()
    try:
        outputs = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            outputs.append(attend(query, key, value))
    finally:
        torch.set_num_threads(threads)

    assert all(torch.equal(output, outputs[0]) for output in outputs[1:])


@runs_here
def test_the_kernel_scales_as_asked():
    query, key, value = _qkv(2, 2, 9, 9)

    scaled = attend(query, key, value, scale=0.3)

    assert (scaled.float() - F.scaled_dot_product_attention(query.float(), key.float(), value.float(),
                                                             scale=0.3)).abs().max() < 2e-2


@runs_here
def test_gradients_through_the_kernel_are_those_of_float32_attention():
    inputs = [tensor.detach().requires_grad_() for tensor in _qkv(2, 3, 11, 11, 2.0)]
    widened = [tensor.detach().float().requires_grad_() for tensor in inputs]
    weights = torch.randn(2, 3, 11, 64).to(torch.bfloat16).float()  # the output gradient, bf16 as the output

    (attend(*inputs).float() * weights).sum().backward()
    (F.scaled_dot_product_attention(*widened) * weights).sum().backward()

    for ours, exact in zip(inputs, widened):
        assert torch.equal(ours.grad, exact.grad.to(torch.bfloat16))


@runs_here
@pytest.mark.parametrize(("module", "activation"), [(QuickGelu, quick_gelu), (Gelu, F.gelu)])
def test_activations_by_table_are_torchs_bit_for_bit_on_every_bf16_value(module, activation):
    values = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    expected = activation(values)

    with torch.inference_mode():
        tabulated = values.clone()
        assert module()(tabulated) is tabulated  # in place

    assert torch.equal(tabulated.view(torch.int16), expected.view(torch.int16))  # NaNs too, by their bits


@pytest.mark.parametrize("requires_grad", [False, True])
def test_gelu_is_torchs_bit_for_bit(requires_grad):
    x = (torch.randn(3, 700, 1024) * 4).to(torch.bfloat16).requires_grad_(requires_grad)
    expected = torch.nn.GELU()(x.detach().clone())

    assert torch.equal(Gelu()(x), expected)


def test_float32_attention_is_sdpas_bit_for_bit():
    query, key, value = (tensor.float() for tensor in _qkv(2, 4, 17, 17))

    assert not applies(query, key, value)
    assert torch.equal(attend(query, key, value), F.scaled_dot_product_attention(query, key, value))


def test_other_head_widths_and_gpus_are_sdpas():
    query = torch.randn(1, 2, 5, 32, dtype=torch.bfloat16)

    assert not applies(query, query, query)
    assert attention_kernel("cpu", "bf16", 32) == SDPA
    assert attention_kernel("cuda", "bf16", 64) == SDPA
    assert attention_kernel("cpu", "fp32", 64) == SDPA


@pytest.fixture
def rebuilt(monkeypatch, tmp_path):
    """The kernel looked for afresh, in an empty cache (and again as it was after the test)."""
    monkeypatch.setattr(bf16_kernels, "CACHE", tmp_path)
    bf16_kernels._library.cache_clear()
    yield
    bf16_kernels._library.cache_clear()


def test_without_a_compiler_bf16_attention_is_sdpas_and_says_so(rebuilt, monkeypatch, caplog):
    monkeypatch.setenv("CC", "no-such-compiler")
    query, key, value = _qkv(2, 2, 17, 17)

    with caplog.at_level(logging.WARNING, logger=bf16_kernels.__name__):
        attention = attend(query, key, value)

    assert torch.equal(attention, F.scaled_dot_product_attention(query, key, value))
    assert attention_kernel("cpu", "bf16", 64) == SDPA
    if bf16_kernels._cpu_runs_kernel():
        assert "no C compiler (no-such-compiler)" in caplog.text


def test_sdpa_can_be_asked_for(rebuilt, monkeypatch):
    monkeypatch.setenv("CLIPFORENSICS_ATTENTION", "sdpa")

    assert attention_kernel("cpu", "bf16", 64) == SDPA
    assert not applies(*_qkv(1, 1, 3, 3))


@runs_here
def test_the_kernel_is_compiled_once_into_the_cache(rebuilt, tmp_path):
    assert attention_kernel("cpu", "bf16", 64) == KERNEL
    built = list((tmp_path / "kernels").iterdir())
    bf16_kernels._library.cache_clear()

    assert attention_kernel("cpu", "bf16", 64) == KERNEL
    assert list((tmp_path / "kernels").iterdir()) == built and len(built) == 1


def test_a_run_header_names_the_attention_its_passes_took():
    bf16 = clipforensics.load(SHIPPED / "gend-hf", precision="bf16")
    fp32 = clipforensics.load(SHIPPED / "gend-hf", precision="fp32")

    assert bf16.run_header()["run"]["attention"] == attention_kernel("cpu", "bf16", 64)
    assert fp32.run_header()["run"]["attention"] == SDPA
