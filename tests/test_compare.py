"""`clipforensics compare`: warns when the runs saw different data or scored videos by different rules, shows the
operating points and calibration beside AUROC, AP and EER, each with the interval its run drew and the direction
that is better, writes the table as Markdown or HTML."""

import json
from pathlib import Path

import pytest

from clipforensics.cli import main


def _run(folder: Path, name: str, fakes: int, auroc: float, video_score: str | None = None, **metrics: float) -> Path:
    """A metrics.json with AUROC, AP and EER (as runs wrote before the other metrics existed), plus ``metrics``."""
    rows = [{"dataset": None, "source": None, "against": [], "real": 4, "fake": fakes, "auroc": auroc, "ap": auroc,
             "eer": 1 - auroc, **metrics},
            {"dataset": "A", "source": "swap", "against": ["real"], "real": 4, "fake": fakes, "auroc": auroc,
             "ap": auroc, "eer": 1 - auroc, **metrics}]
    folder.mkdir()
    counts = {"frames": 2 * (4 + fakes), "scored": 2 * (4 + fakes), "failed": 0, "videos": 4 + fakes}
    rule = {"video_score": video_score} if video_score else {}
    (folder / "metrics.json").write_text(json.dumps({"name": name, "counts": counts, **rule,
                                                     "tables": {"video": rows, "frame": rows}}))
    return folder


def test_runs_on_different_data_are_compared_with_a_warning(tmp_path, capsys):
    first, second = _run(tmp_path / "a", "base", 4, 0.9), _run(tmp_path / "b", "other", 6, 0.8)

    status = main(["compare", str(first), str(second)])

    captured = capsys.readouterr()
    assert status == 0 and "AUROC" in captured.out
    assert "warning: other was evaluated on different data than base" in captured.err
    assert "videos 8 vs 10" in captured.err


def test_runs_on_the_same_data_are_compared_without_a_warning(tmp_path, capsys):
    status = main(["compare", str(_run(tmp_path / "a", "base", 4, 0.9)), str(_run(tmp_path / "b", "other", 4, 0.8))])

    assert status == 0 and "warning" not in capsys.readouterr().err


def test_runs_whose_videos_were_scored_by_different_rules_are_compared_with_a_warning(tmp_path, capsys):
    people = _run(tmp_path / "a", "base", 4, 0.9, video_score="people")
    before = _run(tmp_path / "b", "old", 4, 0.8)  # written before the rule was recorded: the frames' mean

    main(["compare", str(people), str(before)])
    at_video = capsys.readouterr().err
    main(["compare", str(people), str(before), "--level", "frame"])

    assert "warning: old scored its videos by --video-score largest, base by people" in at_video
    assert "warning" not in capsys.readouterr().err


def test_compare_writes_html_for_an_html_output(tmp_path):
    runs = [str(_run(tmp_path / "a", "base <1>", 4, 0.9)), str(_run(tmp_path / "b", "other", 4, 0.8))]

    status = main(["compare", *runs, "--output", str(tmp_path / "compare.html")])

    page = (tmp_path / "compare.html").read_text()
    assert status == 0 and page.startswith("<!DOCTYPE html>")
    assert "<th>base &lt;1&gt;</th>" in page and "<td class=num>90.00</td>" in page


@pytest.mark.parametrize("name", ["compare.txt", "compare.csv"])
def test_compare_refuses_other_suffixes(name, tmp_path, capsys):
    status = main(["compare", str(_run(tmp_path / "a", "base", 4, 0.9)), "--output", str(tmp_path / name)])

    assert status == 2 and ".md or .html" in capsys.readouterr().err


def test_operating_points_and_calibration_are_compared_and_n_a_for_a_run_written_before_them(tmp_path, capsys):
    new = {"tpr@0.1%": 0.25, "tpr@1%": 0.5, "tpr@5%": 0.75, "threshold@1%": 0.9, "ece": 0.04, "brier": 0.1,
           "wasserstein": 0.6}
    runs = [_run(tmp_path / "a", "old", 4, 0.9), _run(tmp_path / "b", "new", 4, 0.8, **new)]

    status = main(["compare", *map(str, runs)])

    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert status == 0
    assert [row[2] for row in rows if row[:2] == ["A", "swap"]] == [
        "AUROC", "AP", "EER", "TPR@0.1%", "TPR@1%", "TPR@5%", "ECE", "Brier", "W1"]
    assert ["all", "all", "AUROC", "higher", "90.00", "80.00", "-10.00"] in rows
    assert ["all", "all", "TPR@1%", "higher", "n/a", "50.00", "n/a"] in rows
    assert ["all", "all", "W1", "higher", "n/a", "60.00", "n/a"] in rows
    assert not any(row[2].startswith("thr") for row in rows)


def test_each_figure_shows_its_runs_interval_and_which_direction_is_better(tmp_path, capsys):
    drawn = {"intervals": {"auroc": [0.85, 0.95], "eer": [0.05, 0.15], "tpr@1%": [None, None]}, "tpr@1%": 0.5}
    runs = [_run(tmp_path / "a", "old", 4, 0.9), _run(tmp_path / "b", "new", 4, 0.9, **drawn)]

    assert main(["compare", *map(str, runs)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["dataset", "source", "metric", "better"]
    rows = [line.split() for line in lines[1:] if line.startswith("all")]
    assert ["all", "all", "AUROC", "higher", "90.00", "90.00", "[85.00,", "95.00]", "+0.00"] in rows
    assert ["all", "all", "EER", "lower", "10.00", "10.00", "[5.00,", "15.00]", "+0.00"] in rows
    assert ["all", "all", "TPR@1%", "higher", "n/a", "50.00", "n/a"] in rows  # an undefined interval: not shown
