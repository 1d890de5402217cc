"""The offline tour: the whole tool on built-in inputs, in a few minutes on a CPU.

From scikit-image's public-domain astronaut photo, short videos are synthesised (the face moving over
varied backgrounds, in varied light), each with a twin whose face is self-blended afresh in every frame; their
faces are found and aligned by ``preprocess``, self-blended crops made with their masks, a small detector (on the
blended videos) and a small localizer (on the crops and masks) trained for a short while with the real training
code, both evaluated (reports with tables, curves and maps), ``detect`` run on a photo, a cat
(no face), a video, a video of two people (one a self-blended fake, found by scoring each person apart) and a
damaged file, and ``localize`` on a self-blended face and the photo. ``index.html`` links it all.
Every step is a command a user can type; they are printed as they run.

A model trained for a minute on one face proves the pipeline, not detection skill.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .data.sbi import SelfBlendConfig, self_blend
from .inference.provenance import read_rows
from .media import write_video

RELEASED = "clipforensics detect FILE --model gend-clip-l14"
WARNING = ("The models here were trained for about a minute on one face (scikit-image's astronaut) against "
           "self-blended copies of it: they prove that the pipeline runs end to end, not that they detect "
           f"deepfakes. For real use, load the released weights: {RELEASED}")
THRESHOLD = 0.5
"""The demo's models' threshold (no calibration, no --threshold)."""
TINY = {"width": 64, "layers": 2, "mlp_width": 256, "patch_size": 16, "image_size": 224}
"""The small random-start backbone both demo models train from."""


@dataclass(frozen=True)
class Scale:
    """How much the tour does at each step: videos per split, faces kept per video, epochs per model."""

    videos: dict[str, int]
    frames: int
    epochs: dict[str, int]


FULL = Scale({"train": 12, "test": 4}, 12, {"detector": 30, "localizer": 15})
QUICK = Scale(FULL.videos, FULL.frames, {**FULL.epochs, "localizer": 3})
"""The same steps with the localizer trained for fewer epochs: for a test of the tour (its detector is the full
tour's, which finds the fake person in the video of two people), not for a look at the localizer."""


def run(workdir: Path, clipforensics: Callable[[list[str]], int], serve: bool = False, scale: Scale = FULL) -> int:
    """Runs the tour into ``workdir`` at ``scale``, each step a command line given to ``clipforensics`` (the
    command, which returns its exit status); with ``serve``, then serves the trained models until interrupted."""
    started = time.perf_counter()
    steps: list[tuple[str, list[str], int]] = []

    def step(title: str, arguments: list[str]) -> int:
        print(f"\n== {title}\n$ clipforensics {' '.join(arguments)}", flush=True)
        begun = time.perf_counter()
        status = clipforensics(arguments)
        print(f"({time.perf_counter() - begun:.0f} s)")
        steps.append((title, arguments, status))
        return status

    print(WARNING)
    inputs = write_inputs(workdir / "inputs", scale)
    for split in scale.videos:
        for source in SOURCES:
            step(f"Faces found and aligned in the {split} videos ({source})",
                 ["preprocess", str(workdir / "inputs" / split / source), "--output", str(workdir / "data" / split),
                  "--dataset", "Demo", "--source", source, "--frames", str(scale.frames)])
    for split in scale.videos:
        blended = write_blended_fakes(workdir / "data" / split)
        print(f"\n== Self-blended pseudo-fakes of the {split} faces, with their masks: {blended} frames "
              f"in {workdir / 'data' / split / 'Demo' / 'sbi'}")
    configs = write_configs(workdir, scale)
    for name, config in configs.items():
        step(f"Training the {name} (a minute, real training code)", ["train", "--config", str(config)])
    models = {name: _chosen_model(workdir / "runs" / name) for name in configs}
    for name, task in (("detector", "detection"), ("localizer", "localization")):
        data = [arg for folder in _data(workdir, "test", name) for arg in ("--data", folder)]
        step(f"Evaluating the {name}", ["evaluate", "--task", task, "--model", str(models[name]), *data,
                                         "--output-dir", str(workdir / "eval" / name), "--precision", "fp32"])
    step(DETECTING, ["detect", *map(str, inputs), "--model", str(models["detector"]), "--frames", "12", "--precision",
                     "fp32", "--output", str(workdir / "detect" / "results.jsonl"),
                     "--annotate", str(workdir / "detect"), "--report", str(workdir / "detect" / "case.html")])
    print(people_finding(list(read_rows(workdir / "detect" / "results.jsonl"))))
    step("Localizing the manipulated pixels of a self-blended face and of the photo",
         ["localize", str(_first_fake(workdir)), str(inputs[0]), "--faces", "none", "--model",
          str(models["localizer"]), "--precision", "fp32", "--output-dir", str(workdir / "localize")])
    page = write_index(workdir, steps, models)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nDone in {minutes:.1f} min. Open {page}\n{WARNING}")
    failed = [title for title, _, status in steps if status not in _EXPECTED.get(title, (0,))]
    if failed:
        print("These steps did not end as expected: " + "; ".join(failed))
        return 1
    if serve:
        return clipforensics(["serve", "--model", str(models["detector"]), "--localizer", str(models["localizer"])])
    return 0


PEOPLE_VIDEO, PEOPLE_FRAMES, PEOPLE_SEED = "two-people.mp4", 24, 7
"""The video of two people, one of them a self-blended fake (``_two_people``)."""
DETECTING = "Detecting: a photo, a cat (no face), two videos and a damaged file"
_EXPECTED = {DETECTING: (1,)}
"""Steps whose status 1 is the point: the cat has no face and the damaged file cannot be decoded."""


def write_inputs(folder: Path, scale: Scale) -> list[Path]:
    """Synthesised videos of the astronaut for training and testing (``<split>/real``) with a self-blended twin of
    each (``<split>/blended``: the same scene, her face self-blended afresh in every frame, then encoded, as a
    face swap is made before its video is compressed), and the inputs ``detect`` is shown on: the photo, a cat, a
    video, a video of two people and a damaged PNG."""
    from skimage import data

    face = data.astronaut()
    landmarks = _landmarks68(face)
    rng, blends = np.random.default_rng(0), np.random.default_rng(1)
    for split, count in scale.videos.items():
        for number in range(count):
            scene = Scene.drawn(rng)
            for source, faces in (("real", [face] * scale.frames),
                                  ("blended", [_self_blended(face, landmarks, blends) for _ in range(scale.frames)])):
                video = folder / split / source / f"{split}-{number}.mp4"
                video.parent.mkdir(parents=True, exist_ok=True)
                write_video(scene.shots(faces), video, fps=12)
    photo = folder / "astronaut.png"
    Image.fromarray(face).save(photo)
    cat = folder / "chelsea-cat.png"
    Image.fromarray(data.chelsea()).save(cat)
    walk = folder / "astronaut-walk.mp4"
    write_video(Scene.drawn(np.random.default_rng(99)).shots([face] * 24), walk, fps=12)
    two = folder / PEOPLE_VIDEO
    fake = _self_blended(face, landmarks, np.random.default_rng(PEOPLE_SEED), SelfBlendConfig(blend_ratios=(1.0,)))
    write_video(_two_people(face, fake), two, fps=12)
    damaged = folder / "damaged.png"
    damaged.write_bytes(photo.read_bytes()[:300])
    return [photo, cat, walk, two, damaged]


@dataclass(frozen=True, eq=False)
class Scene:
    """The astronaut's head and shoulders moving over a random background, in random light and size: the draws,
    so that a real video and its blended twin share them."""

    side: int
    flip: bool
    gain: float
    offset: float
    background: np.ndarray
    start: int
    speed: int

    @classmethod
    def drawn(cls, rng: np.random.Generator) -> Scene:
        side = int(rng.integers(260, 340))
        flip, gain, offset = bool(rng.random() < 0.5), float(rng.uniform(0.7, 1.2)), float(rng.uniform(-20, 20))
        background = np.clip(rng.integers(40, 200, 3) + rng.normal(0, 12, (360, 640, 3)), 0, 255).astype(np.uint8)
        return cls(side, flip, gain, offset, background, int(rng.integers(0, 640 - side - 100)),
                   int(rng.integers(2, 8)))

    def shots(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """A frame for each photo in ``faces`` (the same photo throughout for a real video)."""
        shots = []
        for index, face in enumerate(faces):
            picture = _head(face, self.side)
            picture = np.clip((picture[:, ::-1] if self.flip else picture) * self.gain + self.offset, 0, 255)
            shot = self.background.copy()
            x = self.start + self.speed * index
            shot[360 - self.side :, x : x + self.side] = picture.astype(np.uint8)
            shots.append(shot)
        return shots


def _head(photo: np.ndarray, side: int) -> np.ndarray:
    """The photo's head and shoulders, ``side`` pixels square."""
    return np.asarray(Image.fromarray(photo[:360, 76:436]).resize((side, side), Image.Resampling.BICUBIC))


def _landmarks68(face: np.ndarray) -> np.ndarray:
    from .faces.options import FaceOptions

    [found] = FaceOptions().create_detector(landmarks68=True).detect(face)
    return found.landmarks68


def _self_blended(face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  config: SelfBlendConfig | None = None) -> np.ndarray:
    """The photo with its face self-blended, as the self-blending recipe makes its fakes."""
    fake, _ = self_blend(face, landmarks, rng, config)
    return fake


def _two_people(face: np.ndarray, fake: np.ndarray) -> list[np.ndarray]:
    """Two people: the astronaut, real, near the camera all along, and for the middle third of the frames a
    self-blended double of her further back: a fake person in a video that is mostly real."""
    near, far = _head(face, 400), _head(fake, 300)
    backdrop = np.clip(np.random.default_rng(PEOPLE_SEED).normal(120, 12, (400, 760, 3)), 0, 255).astype(np.uint8)
    shots = []
    for index in range(PEOPLE_FRAMES):
        shot = backdrop.copy()
        shot[:, 10 + 2 * index : 410 + 2 * index] = near
        if PEOPLE_FRAMES // 3 <= index < 2 * PEOPLE_FRAMES // 3:
            shot[100:, 450:750] = far
        shots.append(shot)
    return shots


def write_blended_fakes(root: Path) -> int:
    """A self-blended fake of every face under ``root`` (its ``_lm68.npy`` landmarks, written by
    ``preprocess``), saved as a fake source ``sbi`` of the same dataset with its mask beside it."""
    from .data.manifest import load_manifest
    from .data.sbi import self_blend

    rng = np.random.default_rng(0)
    samples = [sample for sample in load_manifest(root) if sample.source == "real"]
    for sample in samples:
        frame = Path(sample.path)
        landmarks = np.load(frame.with_name(f"{frame.stem}_lm68.npy"))
        fake, blend = self_blend(np.asarray(Image.open(frame).convert("RGB")), landmarks, rng)
        target = frame.parents[2] / "sbi" / frame.parent.name / frame.name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fake).save(target)
        Image.fromarray(((blend > 0.1) * 255).astype(np.uint8)).save(target.with_name(f"{target.stem}_mask.png"))
    return len(samples)


def write_configs(workdir: Path, scale: Scale) -> dict[str, Path]:
    """Training configs, both validated on the test videos: a small detector trained against the blended
    videos, each fake paired with frames of its real twin (``data.paired``), and a small localizer trained on the
    self-blended crops written with their masks."""
    common = {
        "data": {"fakes": "data", "num_workers": 0},
        "trainer": {"accelerator": "cpu", "devices": 1, "precision": "32-true", "seed": 0},
    }
    runs = {
        # What a minute on one face can learn: at 112 px, by cross-entropy alone, without GenD's augmentations
        # (its JPEG re-compression hides a blend from so small a model) and without slerp; trained by the papers'
        # recipe (224 px, augmented, with uniformity and alignment) for a minute, its p_fake does not move.
        "detector": {"model": {"backbone": {**TINY, "image_size": 112}, "weights": None, "head": "LinearNorm",
                               "tuning": "full"},
                     "data": {"paired": True, "augment": False},
                     "loss": {"uniformity": 0.0, "alignment": 0.0, "slerp": False},
                     "optim": {"lr": 1e-3, "min_lr": 1e-5, "batch_size": 16},
                     "trainer": {"epochs": scale.epochs["detector"], "monitor": "val/frame_auroc"}},
        "localizer": {"model": {"backbone": TINY, "weights": None, "head": None, "decoder": "linear", "layer": 1,
                                "tuning": "full"},
                      "data": {"augment": True},
                      "optim": {"lr": 1e-2, "scheduler": "cosine", "min_lr": 1e-5, "batch_size": 16},
                      "trainer": {"epochs": scale.epochs["localizer"]}},
    }
    import yaml

    written = {}
    for name, settings in runs.items():
        config = {section: {**common.get(section, {}), **settings.get(section, {})}
                  for section in ("model", "data", "loss", "optim", "trainer")}
        config["data"].update(train=_data(workdir, "train", name), val=_data(workdir, "test", name))
        config["trainer"]["output_dir"] = str(workdir / "runs" / name)
        path = workdir / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# The demo's {name}: tiny, random start, a minute of training.\n"
                        + yaml.safe_dump(config, sort_keys=False))
        written[name] = path
    return written


SOURCES = ("real", "blended")
"""The videos' sources: the astronaut, and her self-blended twins (the detector's fakes)."""
FAKES = {"detector": "blended", "localizer": "sbi"}
"""Each model's fakes: the blended videos' faces, or the self-blended crops with their masks."""


def _data(workdir: Path, split: str, model: str) -> list[str]:
    """The folders of ``split``'s faces that ``model`` trains or is evaluated on: the real ones and its fakes."""
    return [str(workdir / "data" / split / "Demo" / source) for source in ("real", FAKES[model])]


def people_finding(rows: list[dict]) -> str:
    """What ``detect`` made of the video of two people (among its ``rows``), beside what the mean over all its faces
    and its largest face (``--video-score largest``) would have said."""
    from .inference.verdicts import box_area

    row = next(row for row in rows if Path(row["path"]).name == PEOPLE_VIDEO)
    if row["p_fake"] is None:
        return f"\n== {PEOPLE_VIDEO}: not scored: {row['error']}"
    faces = [face for frame in row["detail"] for face in frame["faces"] if face["p_fake"] is not None]
    largest = [max(frame["faces"], key=lambda face: box_area(face["box"]))["p_fake"] for frame in row["detail"]
               if frame["faces"]]
    every, biggest = float(np.mean([face["p_fake"] for face in faces])), float(np.mean(largest))
    people = "; ".join(f"person #{person['id']}: {person['frames']} of {row['frames']} frames, p_fake "
                       f"{person['p_fake']:.2f}, {person['label']}" for person in row["people"])
    return (f"\n== People in {PEOPLE_VIDEO} (the astronaut, real, and for a third of the frames her self-blended "
            "double)"
            f"\n{people}\n--video-score people (the default): {row['label']}, p_fake {row['p_fake']:.2f}, decided by "
            f"person #{row['deciding_person']}\nthe mean over all {len(faces)} faces would say {_verdict(every)} "
            f"(p_fake {every:.2f}); --video-score largest would say {_verdict(biggest)} (p_fake {biggest:.2f})")


def _verdict(p_fake: float) -> str:
    return "fake" if p_fake >= THRESHOLD else "real"


def _chosen_model(run: Path) -> Path:
    """The run's best model when validation chose one, else its last."""
    return run / "best" if (run / "best" / "config.json").is_file() else run / "last"


def _first_fake(workdir: Path) -> Path:
    return next(p for p in sorted((workdir / "data" / "test" / "Demo" / "sbi").rglob("*.png"))
                if not p.stem.endswith("_mask"))


def _figure(path: Path) -> str:
    source = html.escape(str(path))
    shown = (f'<video src="{source}" controls muted loop></video>' if path.suffix == ".mp4"
             else f'<img src="{source}" alt="{html.escape(path.name)}">')
    return f"<figure>{shown}<figcaption>{source}</figcaption></figure>"


def _shown(p_fake: float | None) -> str:
    return "" if p_fake is None else f"{p_fake:.3f}"


def write_index(workdir: Path, steps: list[tuple[str, list[str], int]], models: dict[str, Path]) -> Path:
    """``index.html``: the warning, every command run and its status, and links to what each wrote."""
    def link(path: Path, text: str) -> str:
        if not path.exists():
            return ""
        return f'<a href="{html.escape(str(path.relative_to(workdir)))}">{html.escape(text)}</a>'

    rows = "".join(f"<tr><td>{html.escape(title)}</td><td><code>clipforensics {html.escape(' '.join(arguments))}"
                   f"</code></td><td>{status}</td></tr>" for title, arguments, status in steps)
    pictures = [*sorted((workdir / "detect").rglob("*.png")), *sorted((workdir / "detect").rglob("*.mp4")),
                *sorted((workdir / "localize").rglob("*.overlay.png")),
                *(workdir / "eval" / name / "plots" / plot for name, plot in
                  (("detector", "roc.png"), ("detector", "histograms.png"), ("localizer", "examples.png")))]
    figures = "".join(_figure(path.relative_to(workdir)) for path in pictures if path.is_file())
    detections = list(read_rows(workdir / "detect" / "results.jsonl")) \
        if (workdir / "detect" / "results.jsonl").is_file() else []
    verdicts = "".join(f"<tr><td>{html.escape(Path(r['path']).name)}</td><td>{r['label'] or '-'}</td>"
                       f"<td>{_shown(r['p_fake'])}</td><td>{html.escape(r['error'] or r['note'] or '')}</td></tr>"
                       for r in detections)
    people = "".join(f"<tr><td>#{person['id']}{' (decides)' if person['id'] == r['deciding_person'] else ''}</td>"
                     f"<td>{person['frames']} of {r['frames']}</td><td>{_shown(person['p_fake'])}</td>"
                     f"<td>{person['label']}</td></tr>"
                     for r in detections if Path(r["path"]).name == PEOPLE_VIDEO for person in r["people"])
    finding = html.escape(people_finding(detections).strip("\n= ")) if detections else ""
    links = " · ".join(filter(None, [
        link(workdir / "eval" / "detector" / "report.html", "detector evaluation report"),
        link(workdir / "eval" / "localizer" / "report.html", "localizer evaluation report"),
        link(workdir / "detect" / "case.html", "detect case report"),
        link(workdir / "detect" / "results.jsonl", "detect rows (JSONL)"),
        link(workdir / "localize" / "results.jsonl", "localize rows (JSONL)"),
        link(workdir / "data" / "train" / "manifest.csv", "training manifest"),
        *(link(models[name] / "config.json", f"{name} model") for name in models),
        *(link(workdir / "configs" / f"{name}.yaml", f"{name} training config") for name in models),
    ]))
    page = workdir / "index.html"
    page.write_text(f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>clipforensics demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}}
.warning{{background:#fff3cd;border:1px solid #e0c36b;padding:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}img,video{{max-width:100%}}
figure{{display:inline-block;width:30em;margin:1em 1em 0 0}}code{{font-size:.85em}}</style></head><body>
<h1>clipforensics: the offline tour</h1>
<p class=warning>{html.escape(WARNING)}</p>
<h2>What was run</h2><table><tr><th>step</th><th>command</th><th>exit status</th></tr>{rows}</table>
<p>Exit status 1 of <code>detect</code> is the point: the cat has no face and damaged.png cannot be decoded, and
every input still has its row.</p>
<p>{links}</p>
<h2>Verdicts</h2><table><tr><th>input</th><th>label</th><th>p_fake</th><th>error or note</th></tr>{verdicts}</table>
<h2 id=people>People in {PEOPLE_VIDEO}</h2>
<p>The astronaut, real, all along, and for the middle third of the frames a self-blended double of her: a fake person
in a video that is mostly real. <code>detect</code> follows each person through the video and scores them apart; the
video is as fake as its most fake person (<code>--video-score people</code>, the default).</p>
<table><tr><th>person</th><th>frames seen</th><th>p_fake</th><th>label</th></tr>{people}</table>
<pre>{finding}</pre>
<h2>Pictures</h2>{figures}
</body></html>
""")
    return page
