"""Options shared by several commands, as decorators, and the parameter types they need. Choices come
from the modules that own them (none of which imports torch)."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import OptionError, UsageError
from ..faces.options import FACE_OPTIONS, FaceOption
from ..inference.calibration import Band
from ..inference.runtime import PRECISIONS
from ..inference.verdicts import VIDEO_SCORES
from ..media import (DEFAULT_FRAMES, IMAGE_SUFFIXES, LIST_PREFIX, MAX_IMAGE_PIXELS, VIDEO_SUFFIXES, Sampler,
                     expand_sources, parse_path_lines)
from ..urls import is_url
from ..words import counted
from .suggestions import Choice

log = logging.getLogger("clipforensics")

Command = TypeVar("Command", bound=Callable[..., Any])

class CropSize(click.ParamType):
    """A side in pixels, or ``native`` (None): the face's own size, as GenD's recipe keeps it."""

    name = "px|native"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or value == "native":
            return None
        try:
            size = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of pixels nor 'native'", param, ctx)
        if size < 1:
            self.fail(f"must be at least 1, not {size}", param, ctx)
        return size


class PerturbationSpec(click.ParamType):
    """jpeg:Q, blur:K,S or resize:P, parsed by the evaluation package (loaded only when the option is given)."""

    name = "spec"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..evaluation import Perturbation

        if isinstance(value, Perturbation):
            return value
        try:
            return Perturbation.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class OutputPath(click.ParamType):
    """A path the command will write: a folder (``folder=True``) or a file. Refused at once when it cannot be:
    an existing file where a folder is needed (or a folder where a file is), or a file on its way."""

    def __init__(self, folder: bool):
        self.folder = folder
        self.name = "dir" if folder else "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(value)
        if self.folder and path.exists() and not path.is_dir():
            self.fail(f"{str(path)!r} is a file, not a folder: name a folder (it is created if missing)", param, ctx)
        if not self.folder and path.is_dir():
            self.fail(f"{str(path)!r} is a folder, not a file: name a file in it", param, ctx)
        blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocking is not None:
            self.fail(f"{str(path)!r} cannot be created: {str(blocking)!r} is a file, not a folder", param, ctx)
        return path


POSITIVE = click.IntRange(min=1)
OUTPUT_DIR = OutputPath(folder=True)
OUTPUT_FILE = OutputPath(folder=False)
STDIN = "-"

inputs = click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
"""INPUT...: one or more files or folders; each command's help says which kinds."""

MEDIA_INPUTS_HELP = (
    "INPUT: an image or a video, a folder, @LIST (a file of paths one a line, blank lines and # comments skipped, "
    "relative ones taken against the list's folder) or - (such paths on standard input); any path may be an fsspec "
    "URL (s3://bucket/folder/, https://...). A folder is searched recursively and every file in it gets a row: "
    f"images ({' '.join(sorted(IMAGE_SUFFIXES))}, or any other file Pillow reads, suffix or none) and videos "
    f"({' '.join(sorted(VIDEO_SUFFIXES))}, or any other file FFmpeg reads) are told by their content; an audio "
    "file, and any other file, gets a row with its error (notes.txt: not an image or a video). Hidden files and "
    "folders (.git, .DS_Store) are not scanned: a warning counts them."
)


def media_inputs(command: Command) -> Command:
    """INPUT... of detect and localize, with ``MEDIA_INPUTS_HELP`` at the end of the command's help."""
    command.__doc__ = f"{inspect.cleandoc(command.__doc__ or '')}\n\n{MEDIA_INPUTS_HELP}"
    return inputs(command)


def expand_inputs(given: tuple[str, ...], outputs: Iterable[Path | str | None] = ()) -> list[str | Path]:
    """The inputs of detect and localize with ``-`` replaced by the paths on standard input (relative to the
    working folder); ``@list`` files and folder URLs are expanded by the library as it reads them. A local folder
    is expanded here, without the command's own ``outputs`` (its results file and output folders, which may lie
    in it: a rerun must not read them as inputs), and one line says what was left out."""
    items: list[str | Path] = list(given)
    if STDIN in given:
        piped = [line if is_url(line) else Path(line) for line in parse_path_lines(sys.stdin.read())]
        if not piped:
            raise UsageError("'-' was given but standard input holds no paths (one a line)")
        items = [item for source in given for item in (piped if source == STDIN else [source])]
    own = [Path(output).resolve() for output in outputs if output is not None]
    return [kept for item in items for kept in _without_own(item, own)] if own else items


def _without_own(item: str | Path, own: list[Path]) -> list[str | Path]:
    if is_url(str(item)) or str(item).startswith(LIST_PREFIX) or not Path(item).is_dir():
        return [item]
    found = expand_sources([item])
    kept = [path for path in found if not any(_within(Path(path), output) for output in own)]
    if len(kept) < len(found):
        log.warning("%s: %s of this command's own output not read as inputs", item,
                    counted(len(found) - len(kept), "file"))
    return kept or [item]


def _within(path: Path, output: Path) -> bool:
    """Whether ``path`` is ``output``, lies under it, or is one of its working names (``out.csv.part``,
    ``out.csv.parts/``) or its header (``out.run.json``)."""
    from ..inference.provenance import run_file

    resolved = path.resolve()
    return any(resolved == place or place in resolved.parents
               for place in (output, output.with_name(output.name + ".part"), output.with_name(output.name + ".parts"),
                             run_file(output)))


def model(command: Command) -> Command:
    """--model, required."""
    return click.option("--model", required=True, metavar="NAME|PATH",
                        help="zoo name (see: clipforensics zoo) or checkpoint path")(command)


def runtime(batch_size: int, batch_help: str) -> Callable[[Command], Command]:
    """--device, --precision and --batch-size (whose default and meaning differ between commands)."""
    return _options(
        click.option("--device", default="auto", metavar="DEVICE", show_default=True,
                     help="auto, cpu, cuda, cuda:1, ... (a torch device)"),
        click.option("--precision", type=Choice(PRECISIONS), default="auto", show_default=True,
                     help="auto: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, fp32 elsewhere"),
        click.option("--batch-size", type=POSITIVE, metavar="N", default=batch_size, show_default=True,
                     help=batch_help),
    )


def threshold(help: str) -> Callable[[Command], Command]:
    """How scores become labels: --threshold P, or --operating-point (a calibrated model's eer, fpr@1%, f1, or
    a number), and --uncertain LOW:HIGH. The command receives them as ``decide`` (keywords of ``load``)."""
    return _options(
        click.option("--threshold", type=click.FloatRange(0, 1), metavar="P",
                     help=f"{help} (default: a calibrated model's operating point, else 0.5)"),
        click.option("--operating-point", metavar="NAME|P",
                     help="a threshold the model was calibrated with (eer, fpr@1%, f1: see clipforensics calibrate), "
                          "or a number"),
        click.option("--uncertain", type=BandType(), metavar="LOW:HIGH",
                     help="label scores in [LOW, HIGH) uncertain instead of fake or real"),
        _bundle(("threshold", "operating_point", "uncertain"), lambda **given: {"decide": given}),
    )


def video_verdict(aggregate_help: str) -> Callable[[Command], Command]:
    """How a video's verdict comes from its faces: --aggregate (worded ``aggregate_help``), --video-score,
    --min-person-frames and --min-face-frames. The command receives ``aggregate`` and ``video`` (the keywords of
    ``Predictor.iter_predict`` for the others, checked by ``VideoRule``)."""
    from ..metrics import AGGREGATES

    return _options(
        click.option("--aggregate", type=Choice(AGGREGATES), default="mean", show_default=True, help=aggregate_help),
        click.option("--video-score", type=Choice(VIDEO_SCORES), default="people", show_default=True,
                     help="people: every face of a video's frames is scored and followed through the video as a "
                          "person (whatever --all-faces says), and the video's p_fake is the highest of its people's "
                          "(each the --aggregate of their faces'); largest: the --aggregate of its frames', a frame's "
                          "being its largest face's, or with --all-faces the highest of its faces' (the papers' rule)"),
        click.option("--min-person-frames", type=POSITIVE, metavar="N",
                     help="people seen in fewer sampled frames do not decide a video (default: 4, or 25% of the "
                          "frames with a face where that is fewer)"),
        click.option("--min-face-frames", type=POSITIVE, metavar="N", default=4, show_default=True,
                     help="a video with a face in fewer sampled frames (or in fewer than all, if it has fewer) is "
                          "labelled insufficient, its p_fake kept"),
        _bundle(("video_score", "min_person_frames", "min_face_frames"), lambda **given: {"video": given}),
    )


class BandType(click.ParamType):
    """LOW:HIGH, parsed and checked by ``Band``."""

    name = "band"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Band:
        if isinstance(value, Band):
            return value
        try:
            return Band.parse(str(value))
        except OptionError as error:
            self.fail(str(error), param, ctx)


max_pixels = click.option("--max-pixels", type=POSITIVE, metavar="N", default=MAX_IMAGE_PIXELS, show_default=True,
                          help="images with more pixels are refused unread (a guard against decompression bombs); "
                               "raise it for trusted large images")
"""--max-pixels: the pixel limit of input images."""


def faces(task: str | None, mode_help: str = "") -> Callable[[Command], Command]:
    """How faces are found and aligned, as the service takes it too (``FACE_OPTIONS``: --faces only with a ``task``,
    detect or localize, whose default it has, worded ``mode_help``), and how frames are sampled from videos. The
    command receives them as ``faces`` (a FaceOptions) and ``frames`` (a Sampler)."""
    face = [option for option in FACE_OPTIONS.values() if task is not None or option.by_task is None]
    frames = [
        click.option("--frames", type=POSITIVE, metavar="N", default=DEFAULT_FRAMES, show_default=True,
                     help="frames sampled per video (uniform, spread)"),
        click.option("--sampler", type=Choice(Sampler.KINDS), default="uniform", show_default=True,
                     help="uniform: --frames spread evenly; stride: every --stride-th frame; spread: --frames in "
                          "GenD's order, from the middle outwards; all: every frame"),
        click.option("--stride", type=POSITIVE, metavar="N", help="--sampler stride: keep every N-th frame"),
    ]
    bundle = _bundle(["frames", "sampler", "stride", *(option.name for option in face)],
                     functools.partial(_face_settings, task))
    return _options(*(_face_option(option, task, mode_help) for option in face), *frames, bundle)


class Checked(click.ParamType):
    """A face option's value, read and checked by the option (``FaceOption.parse``), so that the command line
    refuses it in the service's words."""

    def __init__(self, option: FaceOption):
        self.option = option
        self.name = option.kind.__name__

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return f"[{'|'.join(self.option.choices)}]" if self.option.choices else None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.option.parse(value)
        except OptionError as error:
            self.fail(str(error), param, ctx)


def _face_option(option: FaceOption, task: str | None, mode_help: str) -> Callable[[Command], Command]:
    name = "--" + option.name.replace("_", "-")
    help = mode_help if option.by_task is not None and mode_help else option.help
    default = option.default_for(task)
    if option.kind is bool:
        return click.option(name, is_flag=True, default=default, help=help)
    return click.option(name, type=Checked(option), default=default, show_default=default is not None,
                        metavar=option.metavar, help=help)


def _face_settings(task: str | None, frames: int, sampler: str, stride: int | None, **given: Any) -> dict[str, Any]:
    from ..faces.options import FaceOptions

    try:
        return {"faces": FaceOptions.of(given, task), "frames": Sampler.of(sampler, frames, stride)}
    except OptionError as error:
        raise click.BadParameter(str(error), param_hint=f"'--{error.option.replace('_', '-')}'") from None


ENGINES = ("local", "ray")


def engine(parts: bool) -> Callable[[Command], Command]:
    """--engine and the Ray options; the command receives them as ``ray`` (``RayOptions``, None for the local
    engine). With ``parts`` (a command writing result rows), also --resume and --format of the part files."""
    options = [
        click.option("--engine", type=Choice(ENGINES), default="local", show_default=True,
                     help="local: this process; ray: model replicas on Ray (this machine or a cluster), rows "
                          "streamed to part files" if parts else "local: this process; ray: model replicas on "
                          "Ray (this machine or a cluster)"),
        click.option("--ray-address", metavar="ADDRESS",
                     help="--engine ray: auto or ray://HOST:PORT joins a cluster (default: start Ray on this "
                          "machine)"),
        click.option("--replicas", type=POSITIVE, metavar="N", help="--engine ray: model replicas (default 1)"),
        click.option("--gpus-per-worker", type=click.FloatRange(min=0), metavar="G",
                     help="--engine ray: GPUs per replica (default 0)"),
        click.option("--cpus-per-worker", type=click.FloatRange(min=0, min_open=True), metavar="C",
                     help="--engine ray: CPUs per replica, for its model and --workers threads (default 1)"),
    ]
    keys = ["engine", "ray_address", "replicas", "gpus_per_worker", "cpus_per_worker"]
    if parts:
        options += [
            click.option("--resume", is_flag=True,
                         help="--engine ray: continue a stopped run, scoring only inputs without a row in its "
                              "part files"),
            click.option("--format", "parts_format", type=Choice(("jsonl", "parquet")), default="jsonl",
                         show_default=True, help="--engine ray: the part files' format"),
        ]
        keys += ["resume", "parts_format"]
    return _options(*options, _bundle(keys, _ray_options))


def _ray_options(engine: str, ray_address: str | None, replicas: int | None, gpus_per_worker: float | None,
                 cpus_per_worker: float | None, resume: bool = False, parts_format: str = "jsonl") -> dict[str, Any]:
    given = {"--ray-address": ray_address, "--replicas": replicas, "--gpus-per-worker": gpus_per_worker,
             "--cpus-per-worker": cpus_per_worker, "--resume": resume or None,
             "--format": None if parts_format == "jsonl" else parts_format}
    if engine == "local":
        stray = [name for name, value in given.items() if value is not None]
        if stray:
            raise UsageError(f"{', '.join(stray)}: for --engine ray (add it, or leave {stray[0]} out)")
        return {"ray": None}
    from ..inference.ray_engine import RayOptions, import_ray

    import_ray()
    return {"ray": RayOptions(ray_address, replicas or 1, 1 if cpus_per_worker is None else cpus_per_worker,
                              gpus_per_worker or 0, resume, parts_format)}


def results_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> str | None:
    """Callback of an --output (``OUTPUT_FILE``) that writes results rows: JSONL or CSV, told by the suffix."""
    if value is not None and value.suffix.lower() not in (".jsonl", ".csv"):
        raise click.BadParameter(f"must end in .jsonl or .csv, not {str(value)!r}", ctx, param)
    return None if value is None else str(value)


def report_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Callback of a --report: an HTML file."""
    if value is not None and value.suffix.lower() not in (".html", ".htm"):
        raise click.BadParameter(f"must end in .html, not {str(value)!r}", ctx, param)
    return value


def refuse_input_as_output(sources: Iterable[str | Path], output: Path | None, option: str) -> None:
    """A ``UsageError`` when ``output`` is one of the inputs: no command writes over a user's file it reads."""
    if output is not None and any(not is_url(str(source)) and Path(source).resolve() == output.resolve()
                                  for source in sources):
        raise UsageError(f"{option} {output}: is one of the inputs; name another file to write")


def _options(*decorators: Callable[[Command], Command]) -> Callable[[Command], Command]:
    """One decorator from several; options show in --help in the order given."""

    def decorate(command: Command) -> Command:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _bundle(keys: Iterable[str], build: Callable[..., dict[str, Any]]) -> Callable[[Command], Command]:
    """Replaces the command's keyword arguments ``keys`` by those ``build`` makes of them, when it runs."""
    keys = tuple(keys)

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(**arguments: Any) -> Any:
            arguments.update(build(**{key: arguments.pop(key) for key in keys}))
            return command(**arguments)

        return run  # type: ignore[return-value]

    return decorate
