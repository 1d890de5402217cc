"""Faces in pictures as people take them: recall, false boxes and seconds per frame of face searches.

The set is made by the script, offline and deterministically (``tests/scenes.py``): scikit-image's public-domain
astronaut pasted as heads onto the other bundled photos (stretched to the frame), with faces of 48 to 400 px
(the box's side), tilted up to ±30°, mirrored, squeezed sideways to 0.85 and 0.7 of their width (standing for
heads turned about 30° and 45°) and tinted; in 1280x720, 1920x1080 and 3840x2160 frames (1 to 3 faces) and
3000x2000 and 4000x3000 photos (5 faces). A face is found when a box overlaps its true box with IoU >= 0.4; a
box that overlaps none is a false box. The target faces are those the issue asks to be found at default
settings: at least 64 px, or 4 % of the frame's short side, whichever is larger.

Each search runs in a fresh process, ``--repeats`` times; seconds per frame are the median over a
resolution's frames (each the fastest of 3 searches), with the spread over repeats. Searches:

* ``dlib-hog@640``: the default until now (dlib's HOG detector, frames scaled to 640 px);
* ``dlib-hog@full``: the same at full resolution;
* ``mtcnn`` (the default now): MTCNN with the automatic smallest face;
* ``mtcnn@640``: the same with ``--face-max-side 640`` (trading recall for time);
* ``video``: 1080p videos of moving faces searched with the default search as ``detect`` does, near the faces of
  the previous sampled frame with a full search every few (``faces.search``), against searching every frame.

    python bench/faces_wild.py [--repeats 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rss import cpu_name  # noqa: E402

from tests.scenes import BACKGROUNDS, Head, matched, random_heads, scene  # noqa: E402
from tests.videos import write_phone_video  # noqa: E402

SHAPES = [((1280, 720), 24, (1, 3)), ((1920, 1080), 24, (1, 3)), ((3840, 2160), 10, (2, 4)),
          ((3000, 2000), 8, (5, 5)), ((4000, 3000), 6, (5, 5))]
"""(width, height), pictures, faces a picture (at least, at most)."""
SIZES = (48, 56, 64, 72, 80, 100, 130, 170, 220, 300, 400)
TIMINGS = 3
"""Each picture is searched this many times and the fastest counts (other work on the machine only slows)."""
SEARCHES = ("dlib-hog@640", "dlib-hog@full", "mtcnn", "mtcnn@640")
VIDEO_SEARCHES = ("dlib-hog@640", "mtcnn", "mtcnn+follow")


def pictures():
    """(picture, true boxes, target flags) for every picture of the set, the same every run."""
    rng = np.random.default_rng(2026)
    for (width, height), count, (fewest, most) in SHAPES:
        for index in range(count):
            sizes = [float(s) for s in rng.choice(SIZES, int(rng.integers(fewest, most + 1)))]
            heads = random_heads(rng, width, height, [s for s in sizes if s * 2.2 < min(width, height)])
            picture = scene(width, height, heads, BACKGROUNDS[index % len(BACKGROUNDS)])
            smallest = max(64.0, 0.04 * min(width, height))
            yield f"{width}x{height}", picture, [h.box for h in heads], [h.size >= smallest for h in heads], \
                [h.size for h in heads]


def detector(name: str):
    """The detector ``detect`` builds for a search named ``BACKEND[@SIDE]``."""
    from clipforensics.faces.options import FaceOptions

    backend, _, side = name.partition("@")
    return FaceOptions(backend=backend, max_side=None if side in ("", "full") else int(side)).create_detector()


def run_one(name: str) -> dict:
    """One search over the whole set, in this process."""
    search = detector(name)
    search.detect(np.zeros((64, 64, 3), np.uint8))  # loads the models
    seconds: dict[str, list[float]] = {}
    faces = []
    false_boxes = 0
    images = 0
    for shape, picture, truth, target, sizes in pictures():
        times = []
        for _ in range(TIMINGS):
            start = time.perf_counter()
            found = search.detect(picture)
            times.append(time.perf_counter() - start)
        seconds.setdefault(shape, []).append(min(times))
        hit, extra = matched(truth, [face.box for face in found])
        faces += [{"size": s, "target": t, "found": h} for s, t, h in zip(sizes, target, hit)]
        false_boxes += extra
        images += 1
    return {"seconds": {shape: statistics.median(times) for shape, times in seconds.items()},
            "faces": faces, "false_boxes_per_image": false_boxes / images}


VIDEO_FRAMES = 32


def video_heads(frame: int) -> list[list[Head]]:
    """The heads of each bench video at ``frame``: two people crossing a 1080p frame, and one walking through a
    portrait phone video (1080x1920, stored turned as phones store it)."""
    walk = frame / (VIDEO_FRAMES - 1)
    return [[Head(110, (300 + 1300 * walk, 500), tilt=10 - 20 * walk),
             Head(200, (1600 - 1100 * walk, 620), turn=0.85, mirrored=True)],
            [Head(150, (300 + 500 * walk, 900 + 300 * walk), tilt=-15 + 30 * walk)]]


def write_videos(folder: Path) -> list[tuple[Path, list[list[np.ndarray]]]]:
    """The bench videos (H.264) and each one's true boxes per frame."""
    import av

    videos = []
    for number, (width, height) in enumerate(((1920, 1080), (1080, 1920))):
        heads = [video_heads(frame)[number] for frame in range(VIDEO_FRAMES)]
        frames = [scene(width, height, frame_heads, "rocket" if number == 0 else "coffee") for frame_heads in heads]
        path = folder / f"video{number}.mp4"
        if number == 1:
            write_phone_video(path, frames, turn=90)
        else:
            with av.open(str(path), "w") as container:
                stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for frame in frames:
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                container.mux(stream.encode())
        videos.append((path, [[head.box for head in frame_heads] for frame_heads in heads]))
    return videos


def run_video(name: str) -> dict:
    """The bench videos decoded upright by ``media`` and searched frame by frame (``name`` as for pictures), or,
    for ``NAME+follow``, as ``detect`` searches a video (``VideoFaceSearch``)."""
    import tempfile

    from clipforensics.faces.search import VideoFaceSearch
    from clipforensics.media import Sampler, read_video

    backend, follow = name.removesuffix("+follow"), name.endswith("+follow")
    search = detector(backend)
    search.detect(np.zeros((64, 64, 3), np.uint8))
    found_faces, total, false_boxes, seconds = 0, 0, 0, []
    with tempfile.TemporaryDirectory() as folder:
        for path, truth in write_videos(Path(folder)):
            frames = read_video(path, Sampler("all")).frames
            for _ in range(TIMINGS):
                video_search = VideoFaceSearch(search) if follow else search
                start = time.perf_counter()
                found = [video_search.detect(frame.image) for frame in frames]
                seconds.append((time.perf_counter() - start) / len(frames))
            for boxes, faces in zip(truth, found):
                hit, extra = matched(boxes, [face.box for face in faces])
                found_faces, total, false_boxes = found_faces + sum(hit), total + len(boxes), false_boxes + extra
    return {"recall": found_faces / total, "faces": total, "false_boxes_per_frame": false_boxes / (2 * VIDEO_FRAMES),
            "seconds_per_frame": min(seconds)}


def recall(faces: list[dict], chosen) -> str:
    picked = [face["found"] for face in faces if chosen(face)]
    return f"{100 * sum(picked) / len(picked):.1f} % of {len(picked)}" if picked else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--searches", nargs="+", default=list(SEARCHES))
    parser.add_argument("--video-searches", nargs="*", default=list(VIDEO_SEARCHES))
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_video(args.run.removeprefix("video:")) if args.run.startswith("video:")
                         else run_one(args.run)))
        return 0
    print(f"CPU: {cpu_name()}")
    results = {}
    for name in args.searches:
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--run", name], check=True, text=True,
                                          capture_output=True).stdout) for _ in range(args.repeats)]
        results[name] = runs
        faces = runs[0]["faces"]
        print(f"\n{name}: recall on target faces {recall(faces, lambda f: f['target'])}; "
              f"false boxes per picture {runs[0]['false_boxes_per_image']:.2f}")
        for low, high in ((48, 64), (64, 100), (100, 200), (200, 401)):
            print(f"  faces {low}-{high - 1} px: {recall(faces, lambda f: low <= f['size'] < high)}")
        for shape in runs[0]["seconds"]:
            times = [run["seconds"][shape] for run in runs]
            print(f"  {shape}: {min(times):.3f}-{max(times):.3f} s per picture")
    print("\nvideos: a 1920x1080 one (two faces crossing, 110 and 200 px) and a portrait phone video (150 px), "
          f"{VIDEO_FRAMES} frames each, decoded upright")
    for name in args.video_searches:
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--run", f"video:{name}"], check=True,
                                          text=True, capture_output=True).stdout) for _ in range(args.repeats)]
        results[f"video:{name}"] = runs
        times = [run["seconds_per_frame"] for run in runs]
        print(f"  {name}: recall {100 * runs[0]['recall']:.1f} % of {runs[0]['faces']} faces, false boxes per frame "
              f"{runs[0]['false_boxes_per_frame']:.2f}, {min(times):.3f}-{max(times):.3f} s per frame")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
