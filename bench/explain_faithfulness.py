"""How faithful a detector's explanations are: deletion curves of the rollout and of Grad-CAM against random
patch orders, on a held-out set of face crops (the demo's test set: self-blended fakes with their masks, the
blended videos' faces, and their real sources), and how much of each fake's map falls inside its blended region.

For every crop: the most relevant patches by the map replaced with the crop's mean colour in steps of 10 %, the
drop of the score the map explains recorded (``s = z_fake - z_real`` where the head calls the crop fake, ``-s``
where it calls it real), against the mean of 10 random orders; the figure is the area between the random curve and
the map's (units of ``s``; positive: the map beats random). A crop is fake unless its ``--data`` folder is named
for reals (``real``, as the dataset layout has it). Runs ``clipforensics demo`` first for its trained detector and
test set:

    clipforensics demo --workdir demo-output
    python bench/explain_faithfulness.py --model demo-output/runs/detector/best \
        --data demo-output/data/test/Demo/real --data demo-output/data/test/Demo/sbi
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

METHODS = ("rollout", "gradcam")


def crops(folders: list[Path]) -> list[tuple[Path, bool, Path | None]]:
    """Every crop under ``folders``: its path, whether it is fake (by its folder's name, as the dataset layout
    labels sources) and its mask (None where it has none)."""
    from clipforensics.data.manifest import FAKE, label_of

    found = []
    for data in folders:
        for path in sorted(data.rglob("*.png")):
            if not path.stem.endswith("_mask"):
                mask = path.with_name(f"{path.stem}_mask.png")
                found.append((path, label_of(data.name) == FAKE, mask if mask.is_file() else None))
    return found


def main() -> int:
    from clipforensics.evaluation.faithfulness import area_between, deletion_curve, most_relevant_first, random_curve
    from clipforensics.hub.checkpoints import load_model
    from clipforensics.models.explanation import explain
    from clipforensics.transforms import preprocess, resize_mask
    from rss import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a folder of crops, fake unless it is named for reals (repeatable)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model, _ = load_model(args.model)
    model.eval()
    prep, patch = model.config.preprocessing, model.config.backbone.patch_size
    rng = np.random.default_rng(0)
    rows = []
    for path, fake, mask_path in crops(args.data):
        pixels = preprocess([Image.open(path).convert("RGB")], prep)
        random = random_curve(model, pixels[0], patch, rng)
        row = {"crop": path.as_posix(), "fake": fake}
        for method in METHODS:
            explained = explain(model, pixels, method)
            relevance, row["called_fake"] = explained.maps[0].numpy(), bool(explained.toward_fake[0])
            row[method] = area_between(random, deletion_curve(model, pixels[0], most_relevant_first(relevance), patch))
            if mask_path is not None:
                blended = resize_mask(np.asarray(Image.open(mask_path).convert("L")) / 255.0, prep, prep.size) > 0.5
                on_pixels = np.kron(relevance, np.ones((patch, patch)))
                row[f"{method}_inside"] = float((on_pixels * blended).sum() / on_pixels.sum())
                row["blended_share"] = float(blended.mean())
        rows.append(row)
    print(f"CPU: {cpu_name()}; model {args.model}; {len(rows)} crops ({sum(r['fake'] for r in rows)} fakes)")
    print(f"{'':<26}{'rollout':>10}{'gradcam':>10}")
    groups = {"all": rows, "fakes": [r for r in rows if r["fake"]], "reals": [r for r in rows if not r["fake"]],
              "called fake": [r for r in rows if r["called_fake"]],
              "called real": [r for r in rows if not r["called_fake"]]}
    for name, pick in ((name, pick) for name, pick in groups.items() if pick):
        print(f"{'area vs random, ' + name:<26}" + "".join(f"{np.mean([r[m] for r in pick]):>10.4f}" for m in METHODS))
        print(f"{'beats random, ' + name:<26}" + "".join(f"{sum(r[m] > 0 for r in pick):>5}/{len(pick):<4}"
                                                       for m in METHODS))
    masked = [r for r in rows if "blended_share" in r]
    if masked:
        print(f"{'map mass in blended region':<26}" + "".join(f"{np.mean([r[m + '_inside'] for r in masked]):>10.3f}"
                                                             for m in METHODS)
              + f"   (the region is {np.mean([r['blended_share'] for r in masked]):.3f} of the crop)")
    print(f"{'rollout beats gradcam':<26}{sum(r['rollout'] > r['gradcam'] for r in rows):>5}/{len(rows)}")
    for row in (row for row in rows if row["rollout"] <= 0):
        print(f"rollout no better than random: {row['crop']} ({'fake' if row['fake'] else 'real'}, called "
              f"{'fake' if row['called_fake'] else 'real'}, area {row['rollout']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
