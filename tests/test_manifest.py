"""Manifests from the layout, list files, CSV and DeepfakeBench JSON; thinning by video; unreadable files."""

import json
from pathlib import Path

import pytest
from PIL import Image

from clipforensics.data.manifest import (
    FAKE,
    REAL,
    frames_per_video,
    from_deepfakebench_json,
    limit_files,
    load_manifest,
    split_readable,
)


@pytest.fixture
def layout(tmp_path) -> Path:
    root = tmp_path / "data"
    for video, frames in {"FF/real/000": 6, "FF/DF/000_003": 6, "FF/DF/001_004": 3, "CDF/Celeb-real/id0": 2}.items():
        for frame in range(frames):
            path = root / video / f"{frame:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(path)
    return root


def test_the_layout_gives_dataset_source_video_and_label_from_the_source_name(layout):
    samples = load_manifest(layout)

    assert len(samples) == 17
    first = next(s for s in samples if s.video == "FF/DF/000_003")
    assert (first.dataset, first.source, first.label) == ("FF", "DF", FAKE)
    assert {s.label for s in samples if "real" in s.source.lower()} == {REAL}


def test_a_single_dataset_folder_is_a_layout_too(layout):
    assert {s.dataset for s in load_manifest(layout / "FF")} == {"FF"}


def test_list_files_take_paths_relative_to_their_folder(layout):
    listing = layout / "lists" / "DF.txt"
    listing.parent.mkdir()
    listing.write_text("../FF/DF/000_003/000.png\n../FF/DF/000_003/001.png\n\n")

    samples = load_manifest(listing)

    assert [(s.video, s.label) for s in samples] == [("FF/DF/000_003", FAKE)] * 2
    assert all(Path(s.path).is_file() for s in samples)


def test_csv_manifests_read_explicit_labels_and_masks(layout):
    (layout / "manifest.csv").write_text(
        "path,label,dataset,source,video,mask\n"
        "FF/DF/000_003/000.png,fake,FF,DF,000_003,FF/DF/000_003/000.png\n"
        "FF/real/000/000.png,0,FF,real,000,\n"
    )

    fake, real = load_manifest(layout / "manifest.csv")

    assert (fake.label, fake.video, Path(fake.mask).name) == (FAKE, "FF/DF/000_003", "000.png")
    assert (real.label, real.mask) == (REAL, None)
    assert Path(fake.path).is_file()


def test_deepfakebench_json_is_read_with_its_split(tmp_path):
    data = {"FaceForensics++": {
        "FF-real": {"train": {"c23": {"000": {"label": "FF-real", "frames": ["a/000/0.png", "a/000/1.png"]}}},
                    "test": {"c23": {"001": {"label": "FF-real", "frames": ["a/001/0.png"]}}}},
        "FF-DF": {"train": {"c23": {"000_003": {"label": "FF-DF", "frames": ["b/000_003/0.png"]}}}},
    }}
    (tmp_path / "FF.json").write_text(json.dumps(data))

    train = from_deepfakebench_json(tmp_path / "FF.json", root=tmp_path, split="train")

    assert [(s.video, s.label) for s in train] == [("FaceForensics++/FF-real/000", REAL)] * 2 + [
        ("FaceForensics++/FF-DF/000_003", FAKE)]
    assert train[0].path == str(tmp_path / "a/000/0.png")


def test_frames_per_video_are_evenly_spaced(layout):
    samples = frames_per_video(load_manifest(layout), 3)

    kept = sorted(Path(s.path).name for s in samples if s.video == "FF/real/000")
    assert kept == ["000.png", "002.png", "005.png"]
    assert sum(s.video == "CDF/Celeb-real/id0" for s in samples) == 2


def test_a_file_limit_keeps_whole_videos_reproducibly(layout):
    samples = load_manifest(layout)

    kept = limit_files(samples, 7, seed=3)

    videos = {s.video for s in kept}
    assert all(sum(s.video == v for s in kept) == sum(s.video == v for s in samples) for v in videos)
    assert len(kept) >= 7 and kept == limit_files(samples, 7, seed=3)


def test_missing_and_empty_files_are_listed_and_left_out(layout):
    samples = load_manifest(layout)
    (layout / "FF/real/000/001.png").write_bytes(b"")
    (layout / "FF/real/000/002.png").unlink()

    kept, problems = split_readable(samples)

    assert len(kept) == len(samples) - 2
    assert sorted(Path(p.split(":")[0]).name for p in problems) == ["001.png", "002.png"]


@pytest.mark.parametrize("folder", ["", "FF", "FF/DF", "FF/DF/000_003"])
def test_a_layout_folder_at_any_depth_names_dataset_source_and_video_from_the_path(layout, folder):
    samples = load_manifest(layout / folder)

    fake = next(s for s in samples if s.video == "FF/DF/000_003")
    assert (fake.dataset, fake.source, fake.label) == ("FF", "DF", FAKE)
    assert len([s for s in samples if s.video == "FF/DF/000_003"]) == 6


def test_a_relative_source_folder_keeps_its_dataset(layout, monkeypatch):
    monkeypatch.chdir(layout / "FF")

    samples = load_manifest("real")

    assert {(s.dataset, s.source, s.video, s.label) for s in samples} == {("FF", "real", "FF/real/000", REAL)}


def test_unpadded_frame_numbers_are_read_in_frame_order(tmp_path):
    video = tmp_path / "FF" / "DF" / "000"
    video.mkdir(parents=True)
    for frame in range(12):
        Image.new("RGB", (8, 8)).save(video / f"{frame}.png")

    samples = frames_per_video(load_manifest(video), 3)

    assert [Path(s.path).name for s in samples] == ["0.png", "6.png", "11.png"]


def test_each_dolos_image_is_its_own_video_also_when_two_splits_use_one_name(tmp_path):
    root = tmp_path / "Dolos"
    for split in ("train", "test"):
        for folder in (root / "fake" / "ldm" / "images" / split, root / "fake" / "ldm" / "masks" / split,
                       root / "real" / split):
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(folder / "0001.png")

    everything, test = load_manifest(root), load_manifest(root, split="test")

    assert [s.video for s in everything] == ["Dolos/ldm/test/0001", "Dolos/ldm/train/0001", "Dolos/real/test/0001",
                                             "Dolos/real/train/0001"]
    assert [s.video for s in test] == ["Dolos/ldm/0001", "Dolos/real/0001"]
