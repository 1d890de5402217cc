"""`clipforensics serve`: the real server, started as a command on a free loopback port with tiny models, answers
detect, job and localize round trips with the CLI's rows, a row for every file sent (those that are no image or video
with the CLI's kind and error); takes the CLI's face options and refuses a bad one in the CLI's words; refuses
oversized, all-non-media and empty uploads with their status and goes on serving; answers a burst past its queue with
503 + Retry-After, losing none; runs a queued job after being killed and started again; guards /v1 with its keys and
lists each key's own jobs, a page at a time; leaves its temporary folder empty."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from clipforensics import __version__
from clipforensics.cli import main
from clipforensics.colours import FAKE, PEOPLE, REAL
from clipforensics.faces.detectors import BACKENDS
from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.rows import LOCALIZATION_FIELDS, MAP_FILES, schema
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.inference.provenance import read_header, read_rows

from .det10g import BOX, CENTRE, write_det_10g_like
from .videos import moving_frames, write_sound, write_video

KEY = "test-key-0123"
KEYS = (KEY, "second-key-4567", "third-key-89ab")
TRIES = 3
"""A job that must still be running when the test acts on it is submitted again, up to this many times, when a
stalled test process let it finish first."""
START_TIMEOUT_S = 90
PNG = b"\x89PNG\r\n\x1a\n"


class Server:
    """A ``clipforensics serve`` process and a small HTTP client for it (urllib, loopback only)."""

    def __init__(self, arguments: list[str], tmp: Path, log: Path):
        self.port = _free_port()
        self.state = Path(arguments[arguments.index("--state-dir") + 1])
        self.tmp, self.log = tmp, log
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1"}
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clipforensics.cli", "serve", "--port", str(self.port), "--device", "cpu",
                 "--precision", "fp32", *arguments], stdout=output, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.call("GET", "/healthz", timeout=2)[0] != 200:
            assert self.process.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the server did not answer in {START_TIMEOUT_S} s:\n{log.read_text()}"
            time.sleep(0.2)

    def call(self, method: str, path: str, files: list[tuple[str, bytes]] | None = None, key: str | None = KEY,
             body: bytes | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if files is not None:
            body, headers["Content-Type"] = _multipart(files)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, {}, b""

    def json(self, method: str, path: str, **given) -> tuple[int, dict]:
        status, _, body = self.call(method, path, **given)
        return status, json.loads(body)

    def healthy(self) -> bool:
        return self.call("GET", "/healthz")[0] == 200

    def wait_for_job(self, job_id: str, timeout: float = 60, ended: tuple[str, ...] = ("done", "failed"),
                     key: str | None = KEY) -> dict:
        """The job once its status is one of ``ended`` (or as it is after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            status, job = self.json("GET", f"/v1/jobs/{job_id}", key=key)
            assert status == 200, job
            if job["status"] in ended or time.monotonic() > deadline:
                return job
            time.sleep(0.1)

    def hold(self, path: str, files: list[tuple[str, bytes]], key: str | None = KEY) -> Callable[[], tuple[int, dict]]:
        """A POST whose upload stops halfway, holding its request open; returns what sends the rest and reads
        the answer."""
        body, content_type = _multipart(files)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.putrequest("POST", path)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                            **({"Authorization": f"Bearer {key}"} if key else {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(body[: len(body) // 2])

        def finish() -> tuple[int, dict]:
            connection.send(body[len(body) // 2 :])
            with connection.getresponse() as response:
                return response.status, json.loads(response.read())

        return finish

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(timeout=60)


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """The body of a form upload of ``files`` (name, content) as the ``files`` field, and its content type."""
    boundary = uuid.uuid4().hex
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
                    for name, content in files) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@contextmanager
def serving(arguments: list[str], folder: Path) -> Iterator[Server]:
    """A server of its own for a test that fills its queue, kills it or stops it."""
    running = Server([*arguments, "--state-dir", str(folder / "state")], folder / "tmp", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    detector = save_model(create_model(ModelConfig(TINY_BACKBONE)).eval(), folder / "detector")
    localizer = save_model(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1)).eval(),
                           folder / "localizer")
    return detector, localizer


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    Image.fromarray(data.astronaut()[20:276, 130:386]).save(folder / "crop.png")
    Image.fromarray(data.astronaut()).save(folder / "photo.jpg")
    far = np.zeros((960, 1280, 3), np.uint8)
    far[:512, :512] = data.astronaut()
    Image.fromarray(far).save(folder / "far.jpg", quality=95)
    Image.fromarray(np.zeros((720, 1280, 3), np.uint8)).save(folder / "dark.png")
    write_video(folder / "clip.mp4", moving_frames(12))
    whole = write_video(folder / "whole.mp4", moving_frames(30), faststart=True).read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) * 6 // 10])
    write_video(folder / "slow.mp4", moving_frames(60))
    (folder / "notes.jpg").write_text("not a picture, only text\n")
    whole = (folder / "crop.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    write_sound(folder / "memo.m4a")
    Image.fromarray(data.astronaut()[20:276, 130:386]).save(folder / "crop.avif")
    return {path.name: path for path in folder.iterdir()}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    (folder / "key").write_text("\n".join(KEYS) + "\n")
    running = Server(["--model", str(models[0]), "--localizer", str(models[1]), "--state-dir", str(folder / "state"),
                      "--max-upload-mb", "1", "--max-queue", "4", "--api-key-file", str(folder / "key")],
                     folder / "tmp", folder / "server.log")
    yield running
    running.stop()


def _upload(*paths: Path) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in paths]


def _cli_rows(arguments: list[str], tmp_path: Path) -> list[dict]:
    return _cli_run(arguments, tmp_path)[1]


def _cli_run(arguments: list[str], tmp_path: Path) -> tuple[dict, list[dict]]:
    """What ``detect`` writes: its header's ``run``, and its rows."""
    out = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    main(["detect", *arguments, "--precision", "fp32", "--device", "cpu", "--output", str(out)])
    return read_header(out)["run"], list(read_rows(out))


def _as_named(row: dict, path: Path) -> dict:
    shown = json.dumps(row).replace(json.dumps(str(path))[1:-1], path.name)
    return json.loads(shown)


def _without_scores(row: dict) -> dict:
    """The row without its scores, and without the faces the service adds to its people (thumbnails)."""
    frames = [{**frame, "p_fake": None, "faces": [{**face, "p_fake": None} for face in frame["faces"]]}
              for frame in row["detail"]]
    people = [{key: value for key, value in {**person, "p_fake": None}.items() if key != "face"}
              for person in row["people"]]
    return {**row, "p_fake": None, "detail": frames, "people": people}


def _scores(row: dict) -> list[float]:
    return [face["p_fake"] for frame in row["detail"] for face in frame["faces"]] + \
        [person["p_fake"] for person in row["people"]]


def test_detect_answers_the_rows_the_cli_writes_under_the_uploaded_names(server, models, media, tmp_path):
    status, answer = server.json("POST", "/v1/detect?faces=none&frames=4",
                                 files=_upload(media["crop.png"], media["clip.mp4"]))

    run, expected = _cli_run([str(media["crop.png"]), str(media["clip.mp4"]), "--model", str(models[0]), "--faces",
                              "none", "--frames", "4"], tmp_path)
    assert status == 200
    assert answer["run"]["options"] == run["options"] and answer["run"]["model"] == run["model"]
    assert (answer["run"]["precision"], answer["run"]["tool"]) == (run["precision"], run["tool"])
    assert [row["path"] for row in answer["results"]] == ["crop.png", "clip.mp4"]
    for row, cli, path in zip(answer["results"], expected, (media["crop.png"], media["clip.mp4"])):
        named = _as_named(cli, path)
        assert list(row) == list(named) and _without_scores(row) == _without_scores(named)
        assert [row["p_fake"]] + _scores(row) == pytest.approx([named["p_fake"]] + _scores(named), abs=1e-6)
    assert answer["results"][1]["kind"] == "video" and answer["results"][1]["frames"] == 4


def test_a_request_threshold_relabels_and_a_misspelt_option_is_named(server, media):
    crop = _upload(media["crop.png"])

    _, low = server.json("POST", "/v1/detect?faces=none&threshold=0", files=crop)
    _, high = server.json("POST", "/v1/detect?faces=none&threshold=1", files=crop)
    status, typo = server.json("POST", "/v1/detect?faces=none&thresold=0.3", files=crop)

    assert low["results"][0]["label"] == "fake" and high["results"][0]["label"] == "real"
    assert status == 422 and typo["error"] == "invalid request options"
    assert "did you mean 'threshold'" in typo["detail"][0]["message"]


def test_the_face_options_of_a_request_reach_the_predictor_as_the_clis_do(server, models, media, tmp_path):
    """dlib's HOG detector misses a face too small in a frame searched at 640 px, and finds it at full size
    (face_max_side=0); the options are named, not left to defaults, so that a change of default keeps the test."""
    far = _upload(media["far.jpg"])
    asked = {"face_detector": "dlib-hog", "face_max_side": 0, "align": "gend", "all_faces": True}
    query = "face_detector=dlib-hog&face_max_side=0&align=gend&all_faces=true"

    _, scaled = server.json("POST", "/v1/detect?face_detector=dlib-hog&face_max_side=640", files=far)
    status, answer = server.json("POST", f"/v1/detect?{query}", files=far)
    _, accepted = server.json("POST", f"/v1/jobs?{query}", files=far)
    job = server.wait_for_job(accepted["id"])

    [cli] = _cli_rows([str(media["far.jpg"]), "--model", str(models[0]), "--face-detector", "dlib-hog",
                       "--face-max-side", "0", "--align", "gend", "--all-faces"], tmp_path)
    [row] = answer["results"]
    assert "no face found" in scaled["results"][0]["error"] and scaled["results"][0]["faces"] == 0
    assert "face_max_side=0 searches at full size" in scaled["results"][0]["error"]  # the service's words
    assert "--face-max-side" not in scaled["results"][0]["error"]
    assert status == 200 and row["error"] is None and row["faces"] == 1
    assert _without_scores(row) == _without_scores(_as_named(cli, media["far.jpg"]))
    assert [row["p_fake"]] + _scores(row) == pytest.approx([cli["p_fake"]] + _scores(cli), abs=1e-6)
    assert job["results"] == answer["results"]
    assert _stored_options(server, accepted["id"])["face_options"] == asked


def test_a_miss_names_the_services_own_option_and_face_min_size_finds_the_small_face(server, tmp_path):
    far = np.full((1200, 1600, 3), 120, np.uint8)
    far[500:560, 700:760] = np.asarray(Image.fromarray(data.astronaut()[0:220, 140:360]).resize((60, 60)))
    Image.fromarray(far).save(tmp_path / "far.jpg", quality=92)

    _, missed = server.json("POST", "/v1/detect", files=_upload(tmp_path / "far.jpg"))
    _, found = server.json("POST", "/v1/detect?face_min_size=32", files=_upload(tmp_path / "far.jpg"))

    assert missed["results"][0]["error"] == (
        "no face found in image (searched 1600x1200 at full size with mtcnn for faces of 64 px and more; "
        "face_min_size=32 looks for faces down to 32 px, slower)")
    assert found["results"][0]["error"] is None and found["results"][0]["faces"] == 1


def _stored_options(server: Server, job_id: str) -> dict:
    """What the server keeps of a job's options, to run it again after a restart."""
    from clipforensics.serve.store import JobStore

    store = JobStore(server.state / "jobs.sqlite")
    try:
        return store.get(job_id).options
    finally:
        store.close()


def test_a_misspelt_face_option_is_answered_with_the_closest(server, media):
    status, answer = server.json("POST", "/v1/detect?face_max_sid=0", files=_upload(media["crop.png"]))

    assert status == 422 and answer["error"] == "invalid request options"
    assert answer["detail"] == [{"field": "face_max_sid", "input": "0",
                                 "message": "unknown option; did you mean 'face_max_side'?"}]


def test_a_bad_face_option_value_is_refused_naming_the_field_and_the_choices(server, media):
    status, answer = server.json("POST", "/v1/detect?face_detector=foo&align=gend", files=_upload(media["crop.png"]))

    [problem] = answer["detail"]
    assert status == 422 and answer["error"] == "invalid request options"
    assert problem["field"] == "face_detector" and problem["input"] == "foo"
    assert all(backend in problem["message"] for backend in BACKENDS)


def test_retinaface_is_offered_only_by_a_server_started_with_its_model_file(server, media, tiny_detector, tmp_path):
    """A request never names a file on the server: the face model is the server's (serve --face-model)."""
    from clipforensics import Predictor
    from clipforensics.serve.runners import Runner, Runners

    crop = _upload(media["crop.png"])
    _, models = server.json("GET", "/v1/models")
    _, schema = server.json("GET", "/openapi.json")
    status, retinaface = server.json("POST", "/v1/detect?face_detector=retinaface", files=crop)
    named, file = server.json("POST", "/v1/detect?face_detector=retinaface&face_model=/etc/passwd", files=crop)
    parameters = {parameter["name"]: parameter for parameter in schema["paths"]["/v1/jobs"]["post"]["parameters"]}
    onnx = tmp_path / "det_10g.onnx"
    onnx.touch()
    given = Runners(Runner("plain", Predictor(tiny_detector)), face_model=onnx)
    given.shutdown()

    offered = [backend for backend in BACKENDS if backend != "retinaface"]
    assert models["face_detectors"] == parameters["face_detector"]["schema"]["enum"] == offered
    assert status == 422 and retinaface["detail"][0]["field"] == "face_detector"
    assert "--face-model" in retinaface["detail"][0]["message"]
    assert named == 422 and [problem["field"] for problem in file["detail"]] == ["face_model"]
    assert "serve --face-model" in file["detail"][0]["message"]
    assert given.face_detectors == BACKENDS


def test_a_server_started_with_a_face_model_finds_faces_with_it_as_the_cli_does(models, media, tmp_path):
    """The det_10g-like model finds its one face, at the same place in any frame (letterboxed: 1280 px is 640)."""
    pytest.importorskip("onnxruntime")
    face_model = write_det_10g_like(tmp_path / "det_10g.onnx")
    with serving(["--model", str(models[0]), "--face-model", str(face_model)], tmp_path) as server:
        _, described = server.json("GET", "/v1/models", key=None)
        status, answer = server.json("POST", "/v1/detect?face_detector=retinaface", files=_upload(media["dark.png"]),
                                     key=None)

    [cli] = _cli_rows([str(media["dark.png"]), "--model", str(models[0]), "--face-detector", "retinaface",
                       "--face-model", str(face_model)], tmp_path)
    [row] = answer["results"]
    assert described["face_detectors"] == list(BACKENDS)
    assert status == 200 and row["faces"] == 1
    assert _without_scores(row) == _without_scores(_as_named(cli, media["dark.png"]))
    assert row["detail"][0]["faces"][0]["box"] == pytest.approx(list(np.r_[CENTRE - BOX[:2], CENTRE + BOX[2:]] * 2),
                                                                abs=1e-3)


def test_a_job_runs_in_the_queue_and_gives_its_rows_then_is_deleted(server, media):
    status, accepted = server.json("POST", "/v1/jobs?faces=none&frames=3",
                                   files=_upload(media["crop.png"], media["clip.mp4"]))

    assert status == 202 and accepted["status_url"] == f"/v1/jobs/{accepted['id']}"
    job = server.wait_for_job(accepted["id"])
    assert job["status"] == "done" and job["error"] is None and job["progress"] == {"done": 2, "failed": 0, "total": 2}
    assert [row["path"] for row in job["results"]] == ["crop.png", "clip.mp4"]
    assert all(row["p_fake"] is not None and "detail" in row for row in job["results"])
    assert job["run"]["options"]["frames"] == 3 and job["run"]["options"]["faces"] == "none"
    assert job["results"][0]["sha256"] == hashlib.sha256(media["crop.png"].read_bytes()).hexdigest()
    assert server.json("DELETE", accepted["status_url"]) == (200, {"id": accepted["id"], "status": "deleted"})
    assert server.json("GET", accepted["status_url"])[0] == 404
    assert not (server.state / "jobs" / accepted["id"]).exists()
    assert accepted["id"] not in [job["id"] for job in _listed(server, KEY)]


def _submitted(server: Server, key: str, count: int, crop: Path) -> list[str]:
    """The ids of ``count`` jobs ``key`` sent, in the order sent, each done before the next is sent (the server's
    queue holds 4: sent at once, a fifth would be refused or not, as the worker keeps up)."""
    ids = []
    for _ in range(count):
        status, accepted = server.json("POST", "/v1/jobs?faces=none", files=_upload(crop), key=key)
        assert status == 202, accepted
        assert server.wait_for_job(accepted["id"], key=key)["status"] == "done"
        ids.append(accepted["id"])
    return ids


def _listed(server: Server, key: str, query: str = "limit=100") -> list[dict]:
    status, answer = server.json("GET", f"/v1/jobs?{query}", key=key)
    assert status == 200, answer
    return answer["jobs"]


def test_each_key_lists_and_reaches_only_the_jobs_it_created(server, media):
    theirs = _submitted(server, KEYS[1], 2, media["crop.png"])
    _, localized = server.json("POST", "/v1/localize", files=_upload(media["crop.png"]), key=KEYS[1])

    mine = _listed(server, KEY)
    listed = _listed(server, KEYS[1])

    assert [job["id"] for job in listed] == [localized["id"], *reversed(theirs)]
    assert not {job["id"] for job in mine} & {job["id"] for job in listed}
    assert listed[1]["files"] == ["crop.png"] and listed[1]["task"] == "detect" and listed[1]["status"] == "done"
    assert listed[1]["progress"] == {"done": 1, "failed": 0, "total": 1} and listed[1]["created"].endswith("+00:00")
    assert server.json("GET", f"/v1/jobs/{theirs[0]}", key=KEY)[0] == 404
    assert server.json("DELETE", f"/v1/jobs/{theirs[0]}", key=KEY)[0] == 404
    assert server.call("GET", localized["results"][0]["mask"], key=KEY)[0] == 404
    assert server.call("GET", localized["results"][0]["mask"], key=KEYS[1])[0] == 200
    assert server.json("GET", f"/v1/jobs/{theirs[0]}", key=KEYS[1])[0] == 200


def test_pages_of_jobs_give_every_job_once_newest_first_and_a_status_filters_them(server, media):
    sent = _submitted(server, KEYS[2], 5, media["crop.png"])

    pages, cursor = [], None
    while cursor is not None or not pages:
        status, page = server.json("GET", "/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else ""), key=KEYS[2])
        assert status == 200 and len(page["jobs"]) <= 2
        pages.append([job["id"] for job in page["jobs"]])
        cursor = page["next_cursor"]

    assert pages == [sent[:2:-1], sent[2:0:-1], sent[:1]]
    assert [job["id"] for job in _listed(server, KEYS[2], "status=done")] == sent[::-1]
    assert _listed(server, KEYS[2], "status=queued") == []
    for query, field in (("status=finished", "status"), ("cursor=nonsense", "cursor"), ("limit=0", "limit"),
                         ("limt=2", "limt")):
        status, refused = server.json("GET", f"/v1/jobs?{query}", key=KEYS[2])
        assert status == 422 and [problem["field"] for problem in refused["detail"]] == [field], refused


def test_the_openapi_schema_gives_the_job_statuses_and_their_transitions(server):
    from clipforensics.serve.store import STATUSES

    _, openapi = server.json("GET", "/openapi.json")

    summary = openapi["components"]["schemas"]["JobSummary"]["properties"]
    [jobs] = [tag for tag in openapi["tags"] if tag["name"] == "jobs"]
    assert summary["status"]["enum"] == list(STATUSES)
    assert all(f"`{status}`" in jobs["description"] for status in STATUSES)
    assert "get" in openapi["paths"]["/v1/jobs"]


def test_a_state_folder_of_the_version_before_keys_is_read_and_its_jobs_have_no_owner(tmp_path):
    import sqlite3

    from clipforensics.serve.store import JobStore

    with sqlite3.connect(tmp_path / "jobs.sqlite") as old:
        old.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL, options TEXT "
                    "NOT NULL, inputs TEXT NOT NULL, error TEXT, created REAL NOT NULL, finished REAL)")
        old.execute("INSERT INTO jobs VALUES (?, 'detect', 'queued', '{}', '[[\"a.png\", \"0000-a.png\"]]', NULL, 1.0, "
                    "NULL)", ("a" * 32,))
    store = JobStore(tmp_path / "jobs.sqlite")
    try:
        [listed] = store.newest(None, None, None, 10)
        assert listed.job.owner is None and listed.job.inputs[0].name == "a.png" and listed.done == 0
    finally:
        store.close()


def test_a_running_job_cancelled_stops_and_its_files_go(server, media):
    for _ in range(TRIES):
        _, accepted = server.json("POST", "/v1/jobs?sampler=all", files=_upload(media["slow.mp4"], media["slow.mp4"]))
        server.wait_for_job(accepted["id"], ended=("running", "done", "failed"))
        answer = server.json("DELETE", accepted["status_url"])
        if answer[1]["status"] == "cancelled":
            break

    assert answer == (200, {"id": accepted["id"], "status": "cancelled"})
    deadline = time.monotonic() + 60
    while server.call("GET", accepted["status_url"])[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.call("GET", accepted["status_url"])[0] == 404
    assert not (server.state / "jobs" / accepted["id"]).exists() and server.healthy()


def test_finished_jobs_are_removed_with_their_files_once_old(tmp_path):
    from clipforensics.serve.folders import JobFolders
    from clipforensics.serve.jobs import JobQueue, Slots
    from clipforensics.serve.store import Job, JobStore

    store, folders = JobStore(tmp_path / "jobs.sqlite"), JobFolders(tmp_path)
    queue = JobQueue(store, folders, runners=None, slots=Slots(4))
    for job_id, finished in (("a" * 32, time.time() - 7200), ("b" * 32, time.time())):
        folders.create(job_id)
        store.add(Job(job_id, "detect", "done", {}, [], finished=finished), [{"path": "x.png"}])

    assert queue.sweep(keep_seconds=3600) == 1
    assert store.get("a" * 32) is None and not folders.folder("a" * 32).exists()
    assert store.rows("b" * 32) == [{"path": "x.png"}] and folders.folder("b" * 32).exists()


def test_localize_gives_mask_and_overlay_urls_that_download_as_pngs(server, media):
    status, answer = server.json("POST", "/v1/localize", files=_upload(media["photo.jpg"]))

    assert status == 200
    [row] = answer["results"]
    assert list(row) == list(LOCALIZATION_FIELDS)
    assert row["path"] == "photo.jpg" and row["error"] is None and 0 < row["p_fake"] < 1
    for key in ("mask", "overlay"):
        assert row[key].startswith(f"/v1/files/{answer['id']}/")
        code, headers, png = server.call("GET", row[key])
        assert code == 200 and headers["content-type"] == "image/png" and png.startswith(PNG)
        assert Image.open(io.BytesIO(png)).size == (512, 512)
    assert server.call("GET", f"/v1/files/{answer['id']}/../jobs.sqlite")[0] == 404
    status, job = server.json("POST", "/v1/jobs?task=localize", files=_upload(media["crop.png"]))
    assert status == 202 and server.wait_for_job(job["id"])["results"][0]["mask"].endswith(".mask.png")


def test_explain_gives_each_face_an_explanation_png_to_fetch_and_keeps_p_fake(server, media):
    photo = _upload(media["photo.jpg"])

    _, plain = server.json("POST", "/v1/detect", files=photo)
    status, explained = server.json("POST", "/v1/detect?explain=true", files=photo)

    assert status == 200
    [before], [after] = plain["results"], explained["results"]
    faces = [face for frame in after["detail"] for face in frame["faces"]]
    assert faces and all("explanation" not in face for frame in before["detail"] for face in frame["faces"])
    assert [after["p_fake"]] + _scores(after) == pytest.approx([before["p_fake"]] + _scores(before), abs=1e-6)
    for face in faces:
        assert face["explanation"].startswith("/v1/files/")
        code, headers, png = server.call("GET", face["explanation"])
        assert code == 200 and headers["content-type"] == "image/png" and png.startswith(PNG)
        assert Image.open(io.BytesIO(png)).size == (224, 224)
    status, job = server.json("POST", "/v1/jobs?task=detect&explain=true", files=photo)
    [row] = server.wait_for_job(job["id"])["results"]
    assert status == 202 and server.call("GET", row["detail"][0]["faces"][0]["explanation"])[0] == 200


def test_explain_is_documented_and_refused_for_localize_naming_the_option(server, media):
    _, openapi = server.json("GET", "/openapi.json")
    status, refused = server.json("POST", "/v1/localize?explain=true", files=_upload(media["photo.jpg"]))
    queued, job = server.json("POST", "/v1/jobs?task=localize&explain=true", files=_upload(media["photo.jpg"]))

    [explain] = [p for p in openapi["paths"]["/v1/detect"]["post"]["parameters"] if p["name"] == "explain"]
    assert explain["schema"]["type"] == "boolean" and "explanation" in explain["description"]
    assert status == queued == 422 and refused["detail"][0]["field"] == job["detail"][0]["field"] == "explain"
    assert "detect" in refused["detail"][0]["message"]


def test_explain_with_a_model_without_a_head_is_a_409_in_the_words_of_the_model():
    from clipforensics import Predictor
    from clipforensics.errors import UsageError
    from clipforensics.serve.errors import ApiError
    from clipforensics.serve.runners import Runner, Runners

    localizer = create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1)).eval()
    runners = Runners(Runner("maps-only", Predictor(localizer)))
    with pytest.raises(ApiError) as refused:
        runners.for_task("detect", explain=True)
    with pytest.raises(UsageError) as by_the_model:
        localizer.config.require_head("explain with the model 'maps-only'")
    runners.shutdown()

    assert refused.value.status == 409 and refused.value.detail == str(by_the_model.value)
    assert "no head, so it has no score to explain" in refused.value.detail
    assert runners.for_task("detect") is runners.detector


def test_localize_answers_the_row_the_cli_writes_under_the_uploaded_name(server, models, media, tmp_path):
    status, answer = server.json("POST", "/v1/localize", files=_upload(media["photo.jpg"]))
    main(["localize", str(media["photo.jpg"]), "--model", str(models[1]), "--output-dir", str(tmp_path),
          "--precision", "fp32", "--device", "cpu"])

    [cli] = read_rows(tmp_path / "results.jsonl")
    [row] = answer["results"]
    assert status == 200 and list(row) == list(cli) == list(LOCALIZATION_FIELDS)
    assert row["path"] == "photo.jpg" and row["decided_by"] == cli["decided_by"] is not None
    scores = ("p_fake", "p_fake_raw")
    assert [row[key] for key in scores] == pytest.approx([cli[key] for key in scores], abs=1e-6)
    shared = [key for key in LOCALIZATION_FIELDS if key not in ("path", *MAP_FILES, *scores)]
    assert {key: row[key] for key in shared} == {key: cli[key] for key in shared}
    for key in MAP_FILES:
        code, _, served = server.call("GET", row[key])
        written = np.asarray(Image.open(cli[key]), dtype=np.int16)
        assert code == 200 and np.abs(np.asarray(Image.open(io.BytesIO(served)), dtype=np.int16) - written).max() <= 1


def test_the_schema_gives_the_rows_fields_and_csv_columns_python_writes(server, models, media, tmp_path):
    status, answer = server.json("GET", "/v1/schema")
    out = tmp_path / "rows.csv"
    main(["detect", str(media["crop.png"]), "--model", str(models[0]), "--faces", "none", "--precision", "fp32",
          "--device", "cpu", "--output", str(out)])

    assert status == 200 and answer == schema()
    assert out.read_text().splitlines()[0].split(",") == answer["csv_columns"]
    assert {"p_fake_raw", "decided_by"} <= set(answer["csv_columns"])
    _, detected = server.json("POST", "/v1/detect?faces=none", files=_upload(media["crop.png"]))
    assert list(detected["results"][0]) == [key for key in answer["detection_fields"] if key not in MAP_FILES]
    _, openapi = server.json("GET", "/openapi.json")
    answered = openapi["paths"]["/v1/schema"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answered["$ref"] == "#/components/schemas/RowSchema"
    assert set(openapi["components"]["schemas"]["RowSchema"]["properties"]) == set(answer)


def test_models_say_what_is_loaded_the_drawing_colours_and_the_limits(server):
    status, answer = server.json("GET", "/v1/models")

    assert status == 200
    assert answer["models"]["detector"]["kind"] == "detector" and answer["models"]["detector"]["has_head"]
    assert answer["models"]["localizer"]["has_decoder"] and not answer["models"]["localizer"]["has_head"]
    assert {"backbone", "provenance", "preprocessing", "threshold"} <= set(answer["models"]["detector"])
    assert answer["models"]["detector"]["identity"]["weights_sha256"]["model.safetensors"]
    assert answer["tool"] == {"name": "clipforensics", "version": __version__} and answer["machine"]["cpu"]
    assert answer["drawing"] == {"fake": "#%02x%02x%02x" % FAKE, "real": "#%02x%02x%02x" % REAL,
                                 "people": ["#%02x%02x%02x" % colour for colour in PEOPLE]}
    assert answer["limits"]["max_upload_mb"] == 1 and answer["limits"]["max_queue"] == 4


@pytest.mark.parametrize(("query", "arguments", "field"), [
    ("sampler=stride", ["--sampler", "stride"], "stride"),
    ("stride=4", ["--stride", "4"], "stride"),
    ("uncertain=0.7:0.3", ["--uncertain", "0.7:0.3"], "uncertain"),
    ("uncertain=half", ["--uncertain", "half"], "uncertain"),
    ("face_detector=dlib-hgo", ["--face-detector", "dlib-hgo"], "face_detector"),
    ("face_max_side=-1", ["--face-max-side", "-1"], "face_max_side"),
    ("face_max_side=big", ["--face-max-side", "big"], "face_max_side"),
    ("align=gnd", ["--align", "gnd"], "align"),
    ("faces=some", ["--faces", "some"], "faces"),
])
def test_the_service_refuses_an_option_in_the_words_of_the_cli(server, media, query, arguments, field, capsys):
    status, answer = server.json("POST", f"/v1/detect?{query}", files=_upload(media["crop.png"]))
    cli_status = main(["detect", str(media["crop.png"]), "--model", "never-loaded", *arguments])

    [problem] = answer["detail"]
    assert (status, problem["field"], cli_status) == (422, field, 2)
    assert f"Invalid value for '--{field.replace('_', '-')}': {problem['message']}" in capsys.readouterr().err


def test_each_model_says_the_face_options_and_frames_its_task_takes_unless_a_request_gives_them(server):
    from clipforensics.cli.main import cli
    from clipforensics.faces.options import DEFAULT_FACE_MODES
    from clipforensics.media import DEFAULT_FRAMES

    _, answer = server.json("GET", "/v1/models")
    _, schema = server.json("GET", "/openapi.json")
    detect = {parameter["name"]: parameter for parameter in schema["paths"]["/v1/detect"]["post"]["parameters"]}
    options = {option.name: option for option in cli.commands["detect"].params}
    served = ["faces", "face_detector", "all_faces", "align", "face_max_side"]

    assert answer["models"]["detector"]["faces"] == DEFAULT_FACE_MODES["detect"] == "auto"
    assert answer["models"]["localizer"]["faces"] == DEFAULT_FACE_MODES["localize"] == "none"
    assert answer["models"]["detector"]["frames"] == detect["frames"]["schema"]["default"] == DEFAULT_FRAMES
    assert options["frames"].default == DEFAULT_FRAMES
    assert {name: answer["models"]["detector"][name] for name in served} == \
        {name: options[name].default for name in served}
    assert {name: detect[name]["schema"]["default"] for name in served[1:]} == \
        {name: options[name].default for name in served[1:]}
    assert all(detect[name]["description"] for name in served) and "face_model" not in detect


def test_a_threshold_with_an_operating_point_is_refused_by_the_service_in_the_words_of_the_api(tiny_detector):
    from clipforensics import Predictor
    from clipforensics.errors import OptionError
    from clipforensics.serve.errors import ApiError
    from clipforensics.serve.options import RequestOptions

    with pytest.raises(OptionError) as by_the_api:
        Predictor(tiny_detector, threshold=0.3, operating_point="eer")
    with pytest.raises(ApiError) as by_the_service:
        RequestOptions(threshold=0.3, operating_point="eer")

    assert by_the_service.value.status == 422
    assert by_the_service.value.detail == [{"field": "operating_point", "message": str(by_the_api.value),
                                            "input": "eer"}]


def test_localize_without_a_localizer_is_a_409_in_the_words_of_the_cli(tiny_detector):
    from clipforensics import Predictor
    from clipforensics.errors import UsageError
    from clipforensics.serve.errors import ApiError
    from clipforensics.serve.runners import Runner, Runners

    runners = Runners(Runner("plain", Predictor(tiny_detector)))
    with pytest.raises(ApiError) as refused:
        runners.for_task("localize")
    with pytest.raises(UsageError) as by_the_model:
        tiny_detector.config.require_decoder("localize with the model 'plain'")
    runners.shutdown()

    assert refused.value.status == 409 and refused.value.detail.startswith(str(by_the_model.value))
    assert "--localizer" in refused.value.detail


@pytest.mark.parametrize("case, expected", [("oversized", 413), ("text named .jpg", 415), ("empty body", 422),
                                            ("no files field", 422), ("empty file", 422), ("bad option", 422)])
def test_a_bad_upload_gets_its_status_and_the_server_goes_on(server, media, case, expected):
    noise = np.random.default_rng(0).integers(0, 256, 2 * 2**20, dtype=np.uint8).tobytes()
    given = {"oversized": dict(files=[("big.png", PNG + noise)]),
             "text named .jpg": dict(files=_upload(media["notes.jpg"])), "empty body": dict(body=b""), "empty file": dict(files=[("nothing.png", b"")]),
             "no files field": dict(files=[]), "bad option": dict(files=_upload(media["crop.png"]))}[case]
    path = "/v1/detect?frames=0" if case == "bad option" else "/v1/detect"

    status, _, body = server.call("POST", path, **given)

    answer = json.loads(body)
    assert status == expected and set(answer) == {"error", "detail"} and answer["error"]
    assert server.healthy()


@pytest.mark.parametrize("path", ["/v1/detect", "/v1/jobs", "/v1/localize"])
def test_every_file_gets_its_row_in_order_those_no_image_or_video_as_detect_writes_them(server, models, media, path,
                                                                                         tmp_path):
    sent = [media["photo.jpg"], media["cut.png"], media["memo.m4a"]]

    status, answer = server.json("POST", f"{path}?faces=none", files=_upload(*sent))

    rows = server.wait_for_job(answer["id"])["results"] if path == "/v1/jobs" else answer["results"]
    cli = _cli_rows([*map(str, sent), "--model", str(models[0]), "--faces", "none"], tmp_path)
    assert status == (202 if path == "/v1/jobs" else 200)
    assert [row["path"] for row in rows] == ["photo.jpg", "cut.png", "memo.m4a"]
    assert rows[0]["kind"] == "image" and rows[0]["error"] is None and 0 <= rows[0]["p_fake"] <= 1
    assert [(row["kind"], row["error"]) for row in rows[1:]] == \
        [(row["kind"], _as_named(row, file)["error"]) for row, file in zip(cli[1:], sent[1:])]
    assert [row["kind"] for row in rows[1:]] == ["image", "audio"]
    assert rows[2]["error"] == "memo.m4a: an audio file: no video stream"


def test_a_request_with_no_image_or_video_is_refused_with_each_files_kind_and_error(server, models, media, tmp_path):
    sent = [media["memo.m4a"], media["notes.jpg"]]

    status, answer = server.json("POST", "/v1/jobs", files=_upload(*sent))

    cli = _cli_rows([*map(str, sent), "--model", str(models[0])], tmp_path)
    assert status == 415 and answer["error"].startswith("unsupported media type")
    assert answer["detail"] == [{"file": file.name, "kind": row["kind"], "error": _as_named(row, file)["error"]}
                                for row, file in zip(cli, sent)]
    assert [problem["kind"] for problem in answer["detail"]] == ["audio", "image"]


def test_an_avif_photo_is_an_image_as_the_cli_says(server, models, media, tmp_path):
    status, answer = server.json("POST", "/v1/detect?faces=none", files=_upload(media["crop.avif"]))

    [cli] = _cli_rows([str(media["crop.avif"]), "--model", str(models[0]), "--faces", "none"], tmp_path)
    [row] = answer["results"]
    assert status == 200 and row["kind"] == cli["kind"] == "image" and row["error"] is None
    assert row["p_fake"] == pytest.approx(cli["p_fake"], abs=1e-6)


def test_a_cut_short_video_is_a_row_with_the_clis_note_not_an_error_status(server, models, media, tmp_path):
    status, answer = server.json("POST", "/v1/detect?faces=none&frames=5", files=_upload(media["cut.mp4"]))

    [cli] = _cli_rows([str(media["cut.mp4"]), "--model", str(models[0]), "--faces", "none", "--frames", "5"], tmp_path)
    [row] = answer["results"]
    assert status == 200 and row["path"] == "cut.mp4"
    assert (row["error"], row["note"], row["frames"]) == (cli["error"], cli["note"], cli["frames"])
    assert row["note"] and str(media["cut.mp4"].parent) not in json.dumps(row)
    assert server.healthy()


def test_a_burst_past_the_queue_is_answered_503_with_retry_after_and_the_requests_in_it_200(models, media, tmp_path):
    """Two uploads stopped halfway hold the queue's two slots (a request takes its slot before it streams its
    upload into a file), so the burst meets a full queue; the held requests, finished, are answered with their
    rows."""
    crop = _upload(media["crop.png"])
    with serving(["--model", str(models[0]), "--max-queue", "2"], tmp_path) as server:
        held = [server.hold("/v1/detect?faces=none", crop, key=None) for _ in range(2)]
        deadline = time.monotonic() + 60
        while len([path for path in server.tmp.rglob("*") if path.is_file()]) < 2:
            assert time.monotonic() < deadline, f"the held uploads were not streamed:\n{server.log.read_text()}"
            time.sleep(0.05)
        barrier = threading.Barrier(16)
        answers: list[tuple[int, dict]] = []

        def client() -> None:
            barrier.wait(timeout=30)
            status, headers, _ = server.call("POST", "/v1/detect?faces=none", files=crop, key=None)
            answers.append((status, headers))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        finished = [finish() for finish in held]

        assert [status for status, _ in answers] == [503] * 16
        assert all(int(headers["retry-after"]) > 0 for _, headers in answers)
        assert [(status, [row["path"] for row in answer["results"]]) for status, answer in finished] == \
            [(200, ["crop.png"])] * 2
        assert server.call("POST", "/v1/detect?faces=none", files=crop, key=None)[0] == 200


def test_without_the_key_v1_is_401_and_healthz_stays_open(server):
    status, headers, body = server.call("GET", "/v1/models", key=None)
    wrong = server.call("GET", "/v1/models", key="not-the-key")[0]

    assert status == 401 and wrong == 401 and headers["www-authenticate"] == "Bearer"
    assert json.loads(body)["error"] == "missing or wrong API key"
    assert server.call("GET", "/healthz", key=None)[0] == 200


def test_a_killed_server_runs_its_queued_job_when_started_again(models, media, tmp_path):
    arguments = ["--model", str(models[0])]
    for attempt in range(TRIES):
        folder = tmp_path / str(attempt)
        with serving(arguments, folder) as first:
            _, busy = first.json("POST", "/v1/jobs?sampler=all", files=_upload(media["slow.mp4"], media["slow.mp4"]),
                                 key=None)
            _, queued = first.json("POST", "/v1/jobs?faces=none", files=_upload(media["crop.png"]), key=None)
            waiting = first.json("GET", queued["status_url"], key=None)[1]["status"]
            first.stop(signal.SIGKILL)
        if waiting == "queued":
            break
    assert waiting == "queued"

    with serving(arguments, folder) as again:
        done = again.wait_for_job(queued["id"], key=None)
        interrupted = again.wait_for_job(busy["id"], key=None)
    assert done["status"] == "done" and done["results"][0]["path"] == "crop.png"
    assert interrupted["status"] == "done" and interrupted["progress"] == {"done": 2, "failed": 0, "total": 2}


def test_uploads_are_private_files_in_a_private_folder(tmp_path):
    from clipforensics.serve.uploads import Uploads

    with Uploads(tmp_path) as uploads:
        upload, file = uploads.new_file("../../etc/passwd")
        file.close()
        assert upload.name == "passwd" and upload.path.parent == uploads.folder
        assert (uploads.folder.stat().st_mode & 0o777, upload.path.stat().st_mode & 0o777) == (0o700, 0o600)
    assert list(tmp_path.iterdir()) == []


def test_the_service_is_not_imported_by_the_package_or_the_help():
    code = ("import sys\nfrom clipforensics.cli import main\n"
            "assert main(['--help']) == 0 and main(['serve', '--help']) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fastapi', 'uvicorn') "
            "or m.startswith('clipforensics.serve')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stderr


def test_the_temporary_folder_holds_no_file_while_serving_and_is_gone_after(models, media, tmp_path):
    with serving(["--model", str(models[0])], tmp_path) as server:
        def files() -> list[Path]:
            return [path for path in server.tmp.rglob("*") if not path.is_dir()]

        assert server.call("POST", "/v1/detect?faces=none", files=_upload(media["crop.png"]), key=None)[0] == 200
        assert files() == [] and len(list(server.tmp.glob("clipforensics-serve-*"))) == 1
        server.stop()
    assert "Application shutdown complete" in server.log.read_text()
    assert files() == [] and list(server.tmp.glob("clipforensics-serve-*")) == []


def test_detect_gives_each_person_with_their_face_as_the_schema_says_and_keeps_insufficient_evidence_so(
        server, tmp_path):
    """A two-person video: each person in the row with the schema's fields, their face a small JPEG the page shows;
    a video with a face in 2 of 32 frames stays insufficient under a request's own threshold."""
    from .scenes import Head, scene

    two = write_video(tmp_path / "two.mp4", [scene(400, 240, [Head(80, (100 + 4 * i, 120)),
                                                               Head(80, (300, 120), photo="camera")])
                                             for i in range(8)])
    glimpse = write_video(tmp_path / "glimpse.mp4", [scene(320, 200, [Head(80, (160, 100))] if i in (5, 20) else [])
                                                     for i in range(32)])
    _, fields = server.json("GET", "/v1/schema")

    status, answer = server.json("POST", "/v1/detect?frames=32&threshold=0.01", files=_upload(two, glimpse))

    assert status == 200, answer
    people, [alone] = answer["results"][0]["people"], answer["results"][1]["people"]
    assert [person["id"] for person in people] == [0, 1] and all(person["label"] == "fake" for person in people)
    for person in [*people, alone]:
        assert list(person) == fields["person_fields"]
        assert person["face"].startswith("data:image/jpeg;base64,")
        face = Image.open(io.BytesIO(base64.b64decode(person["face"].split(",", 1)[1])))
        assert face.format == "JPEG" and face.size == (96, 96)
    assert answer["results"][1]["label"] == "insufficient" and answer["results"][1]["p_fake"] is not None
