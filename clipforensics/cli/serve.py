"""``serve``: the predictor behind a REST service (FastAPI on uvicorn), with a job queue and the web page."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..errors import UsageError
from . import options
from .status import EXIT_OK
from .suggestions import Command


def _default_state_dir() -> Path:
    from ..cache import CACHE

    return CACHE / "serve"


@click.command(cls=Command, short_help="Serve the model over HTTP: a REST API and a web page.")
@options.model
@click.option("--localizer", metavar="NAME|PATH",
              help="a model with a decoder for /v1/localize (default: --model, when it has a decoder)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="port to listen on")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=200, show_default=True,
              metavar="MB", help="largest request body, all files together (413 beyond)")
@click.option("--max-queue", type=options.POSITIVE, default=16, show_default=True, metavar="N",
              help="jobs queued or running plus requests in progress (503 with Retry-After beyond)")
@click.option("--state-dir", type=options.OUTPUT_DIR, metavar="DIR",
              help="where jobs and their files are kept across restarts [default: ~/.cache/clipforensics/serve]")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="a file of keys, one a line: every /v1 request must send one as 'Authorization: Bearer <key>', "
                   "and each key sees only the jobs it created")
@click.option("--jobs", type=options.POSITIVE, default=1, show_default=True, metavar="N",
              help="requests or jobs each model works on at once")
@click.option("--keep-hours", type=click.FloatRange(min=0, min_open=True), default=24, show_default=True,
              metavar="H", help="finished jobs and their files are removed after this long")
@click.option("--face-model", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="ONNX",
              help="det_10g.onnx: requests may then ask for face_detector=retinaface (a request never names a file "
                   "on the server)")
@options.runtime(32, "face crops per model call")
@options.threshold("p_fake (or map score) at or above which the label is fake, unless a request gives its own")
def serve(model: str, localizer: str | None, host: str, port: int, max_upload_mb: float, max_queue: int,
          state_dir: Path | None, api_key_file: Path | None, jobs: int, keep_hours: float, face_model: Path | None,
          device: str, precision: str, batch_size: int, decide: dict) -> int:
    """Serve the model over HTTP until stopped (Ctrl-C): POST /v1/detect, /v1/localize and /v1/jobs take
    images and videos as multipart 'files'; the web page is at /, the API's documentation at /docs.

    The models are loaded once; inference runs on worker threads, one request or job at a time per model
    (--jobs N: N). Jobs are kept in SQLite under --state-dir: queued and interrupted ones run again when the
    service starts on the same folder.
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise UsageError(f"serve needs FastAPI, uvicorn and python-multipart ({error}): pip install "
                         "'clipforensics[serve]'") from None
    from ..inference.predictor import load
    from ..inference.runtime import resolve_device
    from ..serve.app import create_app
    from ..serve.auth import key_hash
    from ..serve.runners import Runner, Runners
    from ..serve.settings import ServeSettings

    keys = _read_keys(api_key_file) if api_key_file else ()
    resolve_device(device)
    runners = []
    for name in (model, localizer):
        if name is not None:
            predictor = load(name, device, precision, batch_size, **decide)
            click.echo(f"clipforensics: model {name} on {predictor.device}, {predictor.precision}", err=True)
            runners.append(Runner(name, predictor, jobs))
    if localizer is not None:
        runners[1].predictor.config.require_decoder(f"--localizer {localizer}")
    settings = ServeSettings(state_dir or _default_state_dir(), max_upload_mb, max_queue, jobs, keep_hours,
                             frozenset(map(key_hash, keys)))
    _log_to_stderr()
    app = create_app(settings, Runners(*runners, face_model=face_model))
    click.echo(f"clipforensics: serving on http://{host}:{port} (jobs in {settings.state_dir})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return EXIT_OK


def _read_keys(path: Path) -> tuple[str, ...]:
    """The keys of the file, one a line (blank lines skipped)."""
    keys = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not keys or any(character.isspace() for key in keys for character in key):
        raise UsageError(f"--api-key-file {path}: the file must hold one key a line (no spaces in a key), not "
                         f"{'nothing' if not keys else 'several words on a line'}")
    return keys


def _log_to_stderr() -> None:
    """The service's events too (the command's handler prints them, see ``status``)."""
    logging.getLogger("clipforensics.serve").setLevel(logging.INFO)
