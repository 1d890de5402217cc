"""Part files of a distributed run: whole parts only, each input's first row kept, the output in input order,
and a resumed run only over the same inputs."""

import json
import re

import pytest

from clipforensics.errors import UsageError
from clipforensics.inference.parts import Parts
from clipforensics.inference.provenance import read_header, read_rows, run_header

PATHS = ["a.png", "b.png", "c.mp4"]


def _row(path: str, p_fake: float) -> dict:
    return {"path": path, "p_fake": p_fake, "label": "real", "error": None, "detail": [{"index": 0}]}


@pytest.mark.parametrize("format", ["jsonl", "parquet"])
def test_the_output_holds_each_input_s_first_row_in_input_order(tmp_path, format):
    output = tmp_path / "out.jsonl"
    parts = Parts(output, PATHS, format)
    parts.write([(2, _row("c.mp4", 0.3)), (0, _row("a.png", 0.1))])
    parts.write([(0, _row("a.png", 0.9)), (1, _row("b.png", 0.2))])  # a.png again, as after a retried call

    rows = list(parts.merge(len(PATHS)))

    assert [json.loads(line) for line in output.read_text().splitlines()] == rows
    assert [(row["path"], row["p_fake"]) for row in rows] == [("a.png", 0.1), ("b.png", 0.2), ("c.mp4", 0.3)]
    assert not parts.folder.exists() and not output.with_name("out.jsonl.part").exists()


def test_a_stopped_run_s_parts_are_resumed_only_when_asked_and_only_over_the_same_inputs(tmp_path):
    output = tmp_path / "out.csv"
    Parts(output, PATHS).write([(1, _row("b.png", 0.2))])
    (tmp_path / "out.csv.parts" / "rows-000001.jsonl.part").write_text('{"index": 0, "row": ')  # cut short

    with pytest.raises(UsageError, match="--resume"):
        Parts(output, PATHS)
    with pytest.raises(UsageError, match="other inputs"):
        Parts(output, ["x.png", *PATHS[1:]], resume=True)
    resumed = Parts(output, PATHS, resume=True)

    assert resumed.indices == {1}
    resumed.write([(0, _row("a.png", 0.1)), (2, _row("c.mp4", 0.3))])
    list(resumed.merge(len(PATHS)))
    assert output.read_text().splitlines()[0].startswith("path,p_fake,label,kind")


def test_more_parts_than_a_merge_opens_at_once_merge_in_rounds_keeping_each_input_s_first_row(tmp_path, monkeypatch):
    from clipforensics.inference import parts as module

    monkeypatch.setattr(module, "MAX_OPEN", 2)
    paths = [f"{n}.png" for n in range(7)]
    output = tmp_path / "out.jsonl"
    parts = Parts(output, paths)
    for call in ([6, 0], [3], [5], [1, 4], [2]):
        parts.write([(n, _row(paths[n], n / 10)) for n in call])
    late = [{"index": n, "row": _row(paths[n], 0.99)} for n in (0, 5)]  # a call's rows that came twice
    (parts.folder / "rows-000099.jsonl").write_text("".join(json.dumps(record) + "\n" for record in late))

    rows = list(Parts(output, paths, resume=True).merge(len(paths)))

    assert [(row["path"], row["p_fake"]) for row in rows] == [(p, n / 10) for n, p in enumerate(paths)]
    assert [json.loads(line) for line in output.read_text().splitlines()] == rows


def _header(frames: int = 48, weights: str = "aa", precision: str = "auto", started: str | None = None) -> dict:
    model = {"name": "model", "path": "/models/model", "weights_sha256": {"model.safetensors": weights},
             "calibration": None}
    return run_header(model, "auto", precision, {"frames": frames, "aggregate": "mean", "faces": "auto"},
                      started)


@pytest.mark.parametrize("changed, said", [
    ({"frames": 16}, "frames: 48 -> 16"),
    ({"weights": "bb"}, "model.weights_sha256.model.safetensors: aa -> bb"),
    ({"precision": "fp32"}, "precision: auto -> fp32"),
])
def test_a_resume_with_other_settings_is_refused_naming_them_and_leaves_the_parts_as_they_were(tmp_path, changed,
                                                                                               said):
    output = tmp_path / "out.jsonl"
    Parts(output, PATHS, header=_header()).write([(1, _row("b.png", 0.2))])
    kept = {path.name: path.read_bytes() for path in (tmp_path / "out.jsonl.parts").iterdir()}

    with pytest.raises(UsageError, match=re.escape(said)):
        Parts(output, PATHS, resume=True, header=_header(**changed))

    assert {path.name: path.read_bytes() for path in (tmp_path / "out.jsonl.parts").iterdir()} == kept
    assert not output.exists()


def test_the_merged_output_starts_with_the_recorded_header(tmp_path):
    output = tmp_path / "out.jsonl"
    first = _header(started="2026-01-01T00:00:00+00:00")
    Parts(output, PATHS, header=first).write([(1, _row("b.png", 0.2))])
    resumed = Parts(output, PATHS, resume=True, header=_header())  # the same settings, started later
    resumed.write([(0, _row("a.png", 0.1)), (2, _row("c.mp4", 0.3))])

    rows = list(resumed.merge(len(PATHS)))

    assert read_header(output) == first and list(read_rows(output)) == rows
