"""`clipforensics detect | zoo | demo`: one row per input; exit status 0 (all inputs done), 1 (some failed, or
a clear error), 2 (usage: answered with the closest valid word), 3 (an internal error, named)."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics.hub.checkpoints import save_model
from clipforensics.cli import main
from clipforensics.errors import UsageError
from clipforensics.inference.provenance import read_rows


@pytest.fixture
def model_dir(tiny_detector, tmp_path) -> Path:
    return save_model(tiny_detector, tmp_path / "model")


@pytest.fixture
def faces(tmp_path) -> Path:
    folder = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for name in ("real/a.png", "fake/b.png", "fake/c.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _jsonl(path: Path) -> list[dict]:
    return list(read_rows(path))


def test_detect_writes_one_jsonl_row_per_image_and_exits_0(model_dir, faces, tmp_path):
    out = tmp_path / "out.jsonl"

    status = main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--output", str(out)])

    rows = _jsonl(out)
    assert status == 0
    assert [Path(r["path"]).relative_to(faces).as_posix() for r in rows] == ["fake/b.png", "fake/c.jpg", "real/a.png"]
    assert all({"path", "p_fake", "label", "error", "detail"} <= set(r) and r["error"] is None for r in rows)
    assert all(r["label"] == ("fake" if r["p_fake"] >= 0.5 else "real") for r in rows)


def test_detect_writes_csv_and_a_bad_input_makes_the_exit_status_1(model_dir, faces, tmp_path):
    (faces / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out.csv"

    status = main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--output", str(out),
                   "--threshold", "0"])

    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert status == 1
    assert len(rows) == 4 and list(rows[0])[:3] == ["path", "p_fake", "label"] and "error" in rows[0]
    broken = next(r for r in rows if r["path"].endswith("broken.png"))
    assert broken["p_fake"] == "" and "broken.png" in broken["error"]
    assert all(r["label"] == "fake" for r in rows if r is not broken)


def test_detect_without_output_prints_jsonl_rows(model_dir, faces, capsys):
    status = main(["detect", str(faces / "real" / "a.png"), "--model", str(model_dir), "--faces", "none",
                   "--precision", "fp32"])

    captured = capsys.readouterr()
    assert status == 0
    header, row = (json.loads(line) for line in captured.out.splitlines())
    assert list(header) == ["run"] and row["path"] == str(faces / "real" / "a.png")
    label = row["label"]
    assert f"1 input: {int(label == 'fake')} fake, {int(label == 'real')} real, 0 failed" in captured.err


def test_an_unreadable_model_is_one_clear_message_and_status_1(faces, tmp_path, capsys):
    (tmp_path / "model.ckpt").write_text("not a checkpoint")

    status = main(["detect", str(faces), "--model", str(tmp_path / "model.ckpt")])

    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith(f"clipforensics: {tmp_path / 'model.ckpt'}") and "Traceback" not in error


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["detcet", "x"], "did you mean 'detect'?"),
        (["zo"], "did you mean 'zoo'?"),
        (["detect", "x", "--model", "m", "--thresold", "0.3"], "did you mean '--threshold'?"),
        (["detect", "x", "--model", "m", "--precision", "bf61"], "did you mean 'bf16'?"),
        (["detect", "x", "--model", "m", "--sampler", "unifrom"], "did you mean 'uniform'?"),
        (["evaluate", "--model", "m", "--data", "d", "--output-dir", "o", "--task", "localisation"],
         "did you mean 'localization'?"),
    ],
)
def test_usage_errors_exit_2_with_the_closest_valid_word(argv, hint, capsys):
    status = main(argv)

    assert status == 2
    assert hint in capsys.readouterr().err.lower()


FACE_OPTIONS_AS_GIVEN = {"faces": None, "face_detector": "mtcnn", "face_model": None, "all_faces": False,
                         "align": "deepfakebench", "face_max_side": 0, "face_min_size": 0, "frames": 32,
                         "sampler": "uniform", "stride": None}
"""The face and frame options of detect, localize and preprocess, as a command receives them unless given (faces:
the task's)."""


@pytest.mark.parametrize(("arguments", "faces"), [
    (["detect", "x", "--model", "m"], "auto"),
    (["localize", "x", "--model", "m", "--output-dir", "maps"], "none"),
    (["preprocess", "x", "--output", "out", "--dataset", "D"], None),
])
def test_the_face_options_keep_their_names_and_defaults(arguments, faces, tmp_path, monkeypatch):
    from clipforensics.cli.main import cli

    monkeypatch.chdir(tmp_path)
    command = cli.commands[arguments[0]]
    names = {param.name: param.opts for param in command.params}
    given = command.make_context(arguments[0], arguments[1:]).params

    expected = {name: value for name, value in {**FACE_OPTIONS_AS_GIVEN, "faces": faces}.items()
                if name != "faces" or faces}
    assert {name: given[name] for name in expected} == expected
    assert all(names[name] == ["--" + name.replace("_", "-")] for name in expected)
    assert "faces" in names or faces is None


def test_a_usage_error_names_the_command_and_how_to_get_help(capsys):
    status = main(["detect", "x"])

    error = capsys.readouterr().err
    assert status == 2
    assert "Usage: clipforensics detect" in error and "--help" in error
    assert error.splitlines()[-1] == "clipforensics: Missing option '--model'." and "Error:" not in error


def test_every_error_has_the_same_prefix(model_dir, faces, capsys):
    """Click's own errors (an option's bad value) and the tool's (an input that does not exist) alike."""
    assert main(["detect", str(faces), "--model", str(model_dir), "--batch-size", "0"]) == 2
    assert main(["detect", str(faces / "nowhere"), "--model", str(model_dir), "--output", str(faces / "o.xlsx")]) == 2
    assert main(["calibrate", "--model", str(model_dir), "--data", str(faces / "nowhere"),
                 "--output", str(faces / "calibrated")]) != 0

    lines = [line for line in capsys.readouterr().err.splitlines() if line and not line.startswith(("Usage:", "Try"))]
    assert len(lines) == 3 and all(line.startswith("clipforensics: ") for line in lines), lines


def test_an_output_with_an_unknown_suffix_is_a_usage_error(model_dir, faces, tmp_path, capsys):
    status = main(["detect", str(faces), "--model", str(model_dir), "--output", str(tmp_path / "out.xlsx")])

    assert status == 2 and ".jsonl or .csv" in capsys.readouterr().err


def test_a_usage_error_from_the_library_exits_2_without_a_traceback(faces, capsys):
    status = main(["detect", str(faces), "--model", "m", "--device", "gpu0"])

    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("clipforensics: ") and "is not a torch device" in error and "Traceback" not in error


def test_an_unexpected_error_is_an_internal_error_with_status_3(faces, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ValueError("shapes do not match")

    monkeypatch.setattr("clipforensics.inference.predictor.load", broken)
    monkeypatch.delenv("CLIPFORENSICS_DEBUG", raising=False)

    status = main(["detect", str(faces), "--model", "m"])

    error = capsys.readouterr().err
    assert status == 3
    assert "clipforensics: internal error: ValueError: shapes do not match" in error
    assert "CLIPFORENSICS_DEBUG=1" in error and "Traceback" not in error


def test_clipforensics_debug_lets_an_internal_error_raise(faces, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("shapes do not match")

    monkeypatch.setattr("clipforensics.inference.predictor.load", broken)
    monkeypatch.setenv("CLIPFORENSICS_DEBUG", "1")

    with pytest.raises(ValueError, match="shapes do not match"):
        main(["detect", str(faces), "--model", "m"])


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "clipforensics 0.1.0"

    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(command in listing for command in
               ("detect", "localize", "preprocess", "train", "evaluate", "compare", "zoo", "demo"))
    assert "Exit status" in listing and "CLIPFORENSICS_DEBUG" in listing
    assert "`" not in listing


def test_zoo_lists_the_published_weights(capsys):
    assert main(["zoo"]) == 0

    listing = capsys.readouterr().out
    assert "lnclip-l14" in listing and "yermandy/deepfake-detection" in listing
    assert "gend-clip-l14" in listing and "yermandy/GenD_CLIP_L_14" in listing


def test_detect_says_which_device_and_precision_it_runs_on(model_dir, faces, capsys):
    main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--device", "cpu", "--precision", "fp32"])

    assert f"clipforensics: model {model_dir} on cpu, fp32; fake from p_fake 0.5" in capsys.readouterr().err.splitlines()


def test_the_detect_summary_counts_fake_real_and_failed(model_dir, faces, tmp_path, capsys):
    (faces / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "out.jsonl"

    main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--output", str(out)])

    labels = [row["label"] for row in _jsonl(out)]
    expected = f"4 inputs: {labels.count('fake')} fake, {labels.count('real')} real, 1 failed -> {out}"
    assert expected in capsys.readouterr().err


def test_the_summary_counts_uncertain_labels_apart(model_dir, faces, capsys):
    status = main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--uncertain", "0:1"])

    assert status == 0 and "3 inputs: 0 fake, 0 real, 3 uncertain, 0 failed" in capsys.readouterr().err


def test_inputs_come_from_a_list_file_and_from_standard_input(model_dir, faces, tmp_path, monkeypatch, capsys):
    (faces / "list.txt").write_text("# the fakes\nfake/b.png\n\nfake/c.jpg\n")
    monkeypatch.chdir(faces)
    monkeypatch.setattr("sys.stdin", io.StringIO("real/a.png\n"))
    out = tmp_path / "out.jsonl"

    status = main(["detect", f"@{faces / 'list.txt'}", "-", "--model", str(model_dir), "--faces", "none",
                   "--output", str(out)])

    assert status == 0
    assert [Path(row["path"]).resolve() for row in _jsonl(out)] == [faces / "fake/b.png", faces / "fake/c.jpg",
                                                                     faces / "real/a.png"]


def test_a_folder_without_media_fails_with_its_row_not_an_empty_table(model_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.csv"

    status = main(["detect", str(tmp_path / "empty"), "--model", str(model_dir), "--faces", "none",
                   "--output", str(out)])

    with out.open() as file:
        [row] = list(csv.DictReader(file))
    assert status == 1 and row["path"] == str(tmp_path / "empty") and row["error"]


def test_a_dangling_link_fails_alone_with_its_own_row(model_dir, faces, tmp_path):
    (faces / "gone.png").symlink_to(tmp_path / "deleted.png")
    out = tmp_path / "out.jsonl"

    status = main(["detect", str(faces), str(faces / "gone.png"), "--model", str(model_dir), "--faces", "none",
                   "--output", str(out)])

    rows = _jsonl(out)
    failed = [row for row in rows if row["error"]]
    assert status == 1 and len(rows) == 5
    assert [Path(row["path"]).name for row in failed] == ["gone.png", "gone.png"]
    assert all("gone.png" in row["error"] for row in failed)


def test_a_dangling_link_keeps_the_annotations_mirroring_the_inputs_folder(model_dir, faces, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (faces / "gone.png").symlink_to(elsewhere / "deleted.png")
    drawn = tmp_path / "drawn"

    main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", "--annotate", str(drawn),
          "--output", str(tmp_path / "out.jsonl")])

    written = sorted(path.relative_to(drawn).as_posix() for path in drawn.rglob("*") if path.is_file())
    assert [Path(name).parent.as_posix() for name in written] == ["fake", "fake", "real"], written


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        (["--device", "gpu"], "'gpu' is not a torch device"),
        (["--replicas", "2"], "--replicas: for --engine ray"),
        (["--device", "cuda"], "no CUDA device is available"),
        (["--threshold", "1.5"], "--threshold"),
        (["--threshold", "-0.1"], "--threshold"),
        (["--sampler", "stride"], "--stride"),
        (["--stride", "4"], "a stride is for the stride sampler"),
    ],
)
def test_impossible_options_are_usage_errors_without_a_traceback(options, hint, model_dir, faces, capsys):
    status = main(["detect", str(faces), "--model", str(model_dir), *options])

    error = capsys.readouterr().err
    assert status == 2
    assert hint in error and "Traceback" not in error


def test_localize_into_a_detector_without_a_decoder_is_a_usage_error(model_dir, faces, tmp_path, capsys):
    status = main(["detect", str(faces), "--model", str(model_dir), "--localize", str(tmp_path / "maps")])

    assert status == 2 and "has no decoder" in capsys.readouterr().err


def test_maps_asked_of_a_detector_are_refused_in_the_same_words_by_every_command(tiny_detector, model_dir, faces,
                                                                                tmp_path, capsys):
    import clipforensics

    with pytest.raises(UsageError) as by_the_api:
        clipforensics.Predictor(tiny_detector).predict(faces / "real" / "a.png", faces="none", maps=True)
    reason = str(by_the_api.value).removeprefix("maps: ")
    asked = {f"--localize with {model_dir}": ["detect", str(faces), "--model", str(model_dir), "--localize",
                                              str(tmp_path / "maps")],
             f"localize with {model_dir}": ["localize", str(faces), "--model", str(model_dir), "--output-dir",
                                            str(tmp_path / "out")]}

    answers = {purpose: (main(command), capsys.readouterr().err.splitlines()[-1]) for purpose, command in asked.items()}

    assert "this detector has no decoder" in reason and reason != str(by_the_api.value)
    assert answers == {purpose: (2, f"clipforensics: {purpose}: {reason}") for purpose in asked}


@pytest.mark.parametrize("option", ["--annotate", "--save-crops", "--localize", "--output"])
def test_an_output_path_blocked_by_a_file_is_a_usage_error_and_the_file_is_kept(option, model_dir, faces, tmp_path,
                                                                                  capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    target = mine / "out.jsonl" if option == "--output" else mine

    status = main(["detect", str(faces), "--model", str(model_dir), "--faces", "none", option, str(target)])

    assert status == 2 and "is a file" in capsys.readouterr().err
    assert mine.read_text() == "mine"


def test_localize_refuses_an_output_dir_that_is_a_file(model_dir, faces, tmp_path, capsys):
    (tmp_path / "maps").write_text("mine")

    status = main(["localize", str(faces), "--model", str(model_dir), "--output-dir", str(tmp_path / "maps")])

    assert status == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "maps").read_text() == "mine"


def test_max_pixels_sets_the_image_pixel_limit(model_dir, faces, tmp_path):
    out = tmp_path / "out.jsonl"

    status = main(["detect", str(faces / "real" / "a.png"), "--model", str(model_dir), "--faces", "none",
                   "--max-pixels", "1000", "--output", str(out)])

    [row] = _jsonl(out)
    assert status == 1 and "--max-pixels" in row["error"]
