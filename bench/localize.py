"""Localization throughput: the backbone stopped at the tapped block against the same model run through
every block, as DeCLIP's code does (its CLIP runs all 24 blocks and keeps the outputs of each).

Both sides use the same DeCLIP geometry (ViT-L/14 at 224: width 1024, 24 blocks, 16 x 16 tokens; block 20
tapped; the conv-20 decoder), random weights (seeded), fp32, on the same preprocessed batch:

* ``all blocks``: ``CLIPVisionModel(output_hidden_states=True)`` over all 24 blocks, then the decoder on
  ``hidden_states[21]`` (what the full forward offers);
* ``truncated``: ``ClipLocalizer.forward``, which runs blocks 0..20 only.

The maps must agree (max difference printed; the script exits 1 above 1e-4). The saving is bounded by
the share of the blocks skipped (3 of 24) and diluted by the decoder, whose convolutions at 32..256 px
cost about half as much as the backbone: the script prints the model FLOPs of each part, so the measured
ratio can be read against the expected one.

    python bench/localize.py [--images 8] [--batch-size 2] [--repeats 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from clipforensics.models.backbones import BackboneConfig
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig

DECLIP_L14 = BackboneConfig("ViT-L/14 geometry", width=1024, layers=24, mlp_width=4096, patch_size=14,
                            image_size=224)
LAYER = 20
DECODER = "conv-20"
TOLERANCE = 1e-4


def block_flops(config: BackboneConfig) -> float:
    """Multiply-adds x 2 of one transformer block on one image."""
    tokens, width = config.grid**2 + 1, config.width
    attention = 4 * tokens * width * width + 2 * tokens * tokens * width
    return 2 * (attention + 2 * tokens * width * config.mlp_width)


def decoder_flops(model: torch.nn.Module, pixels: torch.Tensor) -> float:
    """Multiply-adds x 2 of the decoder's convolutions on one image, counted with forward hooks."""
    total = 0.0

    def count(module: torch.nn.Conv2d, _: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        total += 2 * kernel * output[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(pixels[:1])
    for hook in hooks:
        hook.remove()
    return total


def all_blocks(model, pixels: torch.Tensor) -> torch.Tensor:
    hidden = model.backbone.vision(pixel_values=pixels, output_hidden_states=True).hidden_states
    return model.decoder(hidden[LAYER + 1])


def truncated(model, pixels: torch.Tensor) -> torch.Tensor:
    return model(pixels).maps


def timed(run, model, batches: list[torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    """Images per second (best of ``repeats`` passes over the batches) and the last pass's maps."""
    with torch.inference_mode():
        run(model, batches[0])  # warm-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            maps = torch.cat([run(model, batch) for batch in batches])
            best = min(best, time.perf_counter() - started)
    return sum(len(b) for b in batches) / best, maps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model(ModelConfig(DECLIP_L14, head=None, decoder=DECODER, layer=LAYER)).eval()
    pixels = torch.randn(args.images, 3, 224, 224)
    batches = list(pixels.split(args.batch_size))
    blocks, decoder = block_flops(DECLIP_L14), decoder_flops(model, pixels)
    full_flops = DECLIP_L14.layers * blocks + decoder
    cut_flops = (LAYER + 1) * blocks + decoder

    full_rate, full_maps = timed(all_blocks, model, batches, args.repeats)
    cut_rate, cut_maps = timed(truncated, model, batches, args.repeats)
    difference = float((torch.sigmoid(full_maps) - torch.sigmoid(cut_maps)).abs().max())

    report = {
        "geometry": "ViT-L/14, 224 px, block 20, conv-20, fp32, random weights",
        "threads": torch.get_num_threads(), "images": args.images, "batch_size": args.batch_size,
        "gflops_per_image": {"all_blocks": full_flops / 1e9, "truncated": cut_flops / 1e9,
                             "decoder": decoder / 1e9},
        "images_per_s": {"all_blocks": full_rate, "truncated": cut_rate},
        "speedup": cut_rate / full_rate, "expected_speedup": full_flops / cut_flops,
        "max_map_difference": difference,
    }
    print(f"DeCLIP localizer, {report['geometry']}, {args.images} images, batch {args.batch_size}, "
          f"{report['threads']} threads")
    print(f"{'':<12}{'GFLOP/image':>12}{'images/s':>10}")
    print(f"{'all blocks':<12}{full_flops / 1e9:>12.1f}{full_rate:>10.3f}")
    print(f"{'truncated':<12}{cut_flops / 1e9:>12.1f}{cut_rate:>10.3f}")
    print(f"speed-up {report['speedup']:.3f}x (FLOPs predict {report['expected_speedup']:.3f}x; the decoder is "
          f"{decoder / 1e9:.1f} GFLOP); max map difference {difference:.1e}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
