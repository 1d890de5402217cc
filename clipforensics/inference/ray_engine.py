"""Inference beyond one process on Ray Data: inputs spread over model replicas (Ray actors), rows back as they
come, every input's row exactly once.

The dataset is the inputs' numbers; ``map_batches`` hands a few at a time to a ``Replica``, which loads the
model once (``predictor.load``) and runs the local pipeline on its share: ``Predictor.iter_predict`` (decode,
sample frames, find and align faces in ``--workers`` threads, batched scoring, a video's frames aggregated)
for ``detect`` and ``localize``, ``predict_samples`` for ``evaluate``. Preparation stays inside the replica
rather than in separate Ray tasks: its pieces (whole frames kept for drawing, aligned crops) would cross the
object store, and the local pipeline's bounded queues, which keep a long video's memory flat, would be
lost; a replica is given CPUs for its threads (``--cpus-per-worker``) instead.

Calls are small (``inputs_per_call``) and a replica holds one at a time, so a replica that finishes early
takes the next inputs: a long video holds back only itself. A replica that dies (killed, out of memory) is
restarted and its call retried (``RETRIES`` times); inputs whose calls failed on every try are tried again
alone, and one that still fails gets its error row.
"""

from __future__ import annotations

import logging
import math
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ClipForensicsError, UsageError
from ..progress import progress_bar
from ..words import counted
from .provenance import RUN, checkpoint_identity, run_header, scoring_options

if TYPE_CHECKING:
    from .predictor import Inputs, Predictor
    from .results import Result
    from .settings import ScoreSettings

MISSING_RAY = "--engine ray needs the ray extra: pip install 'clipforensics[ray]'"
RETRIES = 2
"""Retries of a call whose replica died, before its inputs are tried alone."""
CALLS_PER_REPLICA = 4
"""At least this many calls a replica, so that replicas finishing early take work from the rest."""
TOKEN_SETUP_LOGGER = "ray._private.authentication.authentication_token_setup"
"""Ray's logger of the token authentication it sets up for a new local cluster."""
DIED = "not scored: its worker failed on every try (killed, out of memory, or an error: see Ray's logs)"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a run goes: ``address`` None starts Ray on this machine (``auto``, ``ray://host:port``:
    a cluster's); ``replicas`` model actors, each with ``cpus`` and ``gpus``. A run writing result rows keeps
    them in part files of ``parts_format`` (jsonl, parquet), and with ``resume`` continues a stopped run's."""

    address: str | None = None
    replicas: int = 1
    cpus: float = 1
    gpus: float = 0
    resume: bool = False
    parts_format: str = "jsonl"


@dataclass(frozen=True)
class Model:
    """What each replica loads: ``predictor.load``'s arguments."""

    name: str
    device: str | None = None
    precision: str = "auto"
    batch_size: int = 32
    decide: dict = field(default_factory=dict)


class Work(Protocol):
    """What replicas do with their inputs' numbers: one row each, in order; and the row of one that failed."""

    def __call__(self, predictor: Predictor, numbers: list[int]) -> list[Any]: ...

    def failed(self, number: int, error: str) -> Any: ...


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(MISSING_RAY) from None
    return ray


@contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Ray as asked: the one this process already joined, else ``address``'s (None: a new one on this machine,
    shut down after)."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    # "local": a new Ray even where a cluster was started on this machine (address None would join it).
    # A new local Ray turns its token authentication on by default and warns that it did, on every run: the
    # cluster lives as long as the command, so there is nothing for the user to act on.
    token_setup = logging.getLogger(TOKEN_SETUP_LOGGER)
    level = token_setup.level
    token_setup.setLevel(logging.ERROR)
    try:
        ray.init(address=address or "local", include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    finally:
        token_setup.setLevel(level)
    try:
        yield
    finally:
        ray.shutdown()


def inputs_per_call(count: int, replicas: int, batch_size: int) -> int:
    """Inputs handed to a replica at once: a model call's worth (``batch_size``) at most, fewer when needed
    for every replica to get ``CALLS_PER_REPLICA`` calls."""
    return max(1, min(batch_size, math.ceil(count / (replicas * CALLS_PER_REPLICA))))


def run(model: Model, work: Work, numbers: Sequence[int], options: RayOptions, done: Callable[[list], None],
        desc: str = "ray") -> dict:
    """Scores the inputs ``numbers`` on ``options.replicas`` replicas, calling ``done`` with the new
    ``(number, row)`` pairs of each call as they come (in any order; each input once). Progress (inputs,
    rows/s, failures) goes to standard error. Returns what the first replica said of its model (``Replica``), empty
    when none answered."""
    ray = import_ray()
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a call that failed on every try: its inputs are retried alone below
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    seen: set[int] = set()
    about: dict = {}
    failed = 0
    started = time.monotonic()
    with progress_bar(len(numbers), True, desc) as bar:
        def receive(pairs: list[tuple[int, Any]], replica: dict | None = None) -> None:
            nonlocal failed
            if replica and not about:
                about.update(replica)
                bar.write(f"clipforensics: ray: the model runs on {replica['where']}", file=sys.stderr)
            fresh = [(number, row) for number, row in pairs if number not in seen]
            seen.update(number for number, _ in fresh)
            failed += sum(_error(row) is not None for _, row in fresh)
            done(fresh)
            bar.update(len(fresh))
            bar.set_postfix(failed=failed)  # shown now: a refresh held back by tqdm's interval would show an old count

        per_call = inputs_per_call(len(numbers), options.replicas, model.batch_size)
        _pass(ray, model, work, list(numbers), options, per_call, receive)
        alone = [number for number in numbers if number not in seen]
        if alone and per_call > 1:
            _pass(ray, model, work, alone, options, 1, receive)
        receive([(number, work.failed(number, DIED)) for number in numbers if number not in seen])
    elapsed = time.monotonic() - started
    print(f"clipforensics: ray: {counted(len(numbers), 'input')} scored in {elapsed:.1f} s "
          f"({len(numbers) / max(elapsed, 1e-9):.2f}/s), {failed} failed", file=sys.stderr)
    return about


def _pass(ray: Any, model: Model, work: Work, numbers: list[int], options: RayOptions, size: int,
          receive: Callable[[list[tuple[int, Any]], dict | None], None]) -> None:
    # one block a call: blocks of at most ``size`` inputs, each handed whole to a replica (batch_size None),
    # since Ray Data would bundle smaller blocks into calls of at least batch_size inputs
    dataset = ray.data.from_items([{"number": number} for number in numbers],
                                  override_num_blocks=math.ceil(len(numbers) / size))
    with warnings.catch_warnings():  # max_task_retries has no named parameter yet
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*is deprecated")
        # one call in flight a replica: a queued call would wait behind a long video instead of going to an idle one
        pool = ray.data.ActorPoolStrategy(size=options.replicas, max_tasks_in_flight_per_actor=1)
        scored = dataset.map_batches(Replica, batch_size=None, batch_format="numpy", compute=pool,
                                     num_cpus=options.cpus, num_gpus=options.gpus, max_task_retries=RETRIES,
                                     fn_constructor_kwargs={"model": model, "work": work})
    batches = iter(scored.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        for batch in filter(lambda batch: len(batch["number"]), batches):
            receive([(int(number), pickle.loads(row)) for number, row in zip(batch["number"], batch["row"])],
                    pickle.loads(batch["replica"][0]))
    except ray.exceptions.RayActorError as error:
        if not error.actor_init_failed:
            raise
        # Ray keeps the replica's error as text only; its last line is the exception, e.g. a model not found:
        # "clipforensics.errors.CheckpointError: <message>"
        name, _, message = str(error).strip().splitlines()[-1].partition(": ")
        kind = UsageError if name.endswith("UsageError") else ClipForensicsError
        raise kind(f"a model replica could not start: {message or name}") from None
    finally:
        batches.close()  # a stopped run stops the replicas too


def _error(row: Any) -> str | None:
    return row.get("error") if isinstance(row, dict) else row.error


class Replica:
    """A model actor: loads the model once, then scores each call's inputs with ``work``."""

    def __init__(self, model: Model, work: Work):
        from .predictor import load

        self.predictor = load(model.name, model.device, model.precision, model.batch_size, **model.decide)
        predictor = self.predictor
        self.about = pickle.dumps({"provenance": predictor.provenance, "where": f"{predictor.device}, "
                                   f"{predictor.precision}", "model": predictor.identity,
                                   "device": str(predictor.device), "precision": predictor.precision,
                                   "attention": predictor.attention, "decision": predictor.decision.settings()})
        self.work = work
        work(self.predictor, [])  # the work's own checks (maps need a decoder...) fail here, once, at the start

    def __call__(self, batch: dict) -> dict:
        numbers = [int(number) for number in batch["number"]]
        rows = self.work(self.predictor, numbers)
        return {"number": numbers, "row": [pickle.dumps(row) for row in rows],
                "replica": [self.about] * len(rows)}


@dataclass(frozen=True)
class ScoreInputs:
    """``detect`` and ``localize``: inputs through ``iter_predict`` (``options``: its keywords), a ``row``
    (a dict, as the output file holds it) each."""

    inputs: Inputs
    row: Callable[[Result], dict]
    options: dict = field(default_factory=dict)

    def __call__(self, predictor: Predictor, numbers: list[int]) -> list[dict]:
        results = predictor.iter_predict(self.inputs, only=numbers, progress=False, **self.options)
        return [self.row(result.without_arrays()) for result in results]

    def failed(self, number: int, error: str) -> dict:
        from .results import Result

        source = self.inputs.items[number]
        return self.row(Result(str(source) if isinstance(source, (str, Path)) else None, error=error))


def planned_header(model: Model, settings: ScoreSettings) -> dict:
    """The header of a Ray run before any replica has loaded the model: the model as named (the sha256 of its
    weights where they are a local path), the device and precision asked for, and the options as given."""
    from .calibration import decision_settings

    path = Path(model.name)
    decide = decision_settings(model.decide.get("threshold"), model.decide.get("operating_point"),
                               model.decide.get("uncertain"))
    return run_header(checkpoint_identity(model.name, path if path.exists() else None), model.device or "auto",
                      model.precision, scoring_options(settings, decide))


def predict_to_file(model: Model, sources: Inputs | Sequence, output: Path, options: RayOptions,
                    row: Callable[[Result], dict] | None = None, **predict_options: Any) -> Iterator[dict]:
    """``detect`` (and ``localize``, with its ``row``) on Ray: rows into part files beside ``output`` as they
    come, then ``output`` (JSONL or CSV by its suffix) with every input's row in input order, as the local
    engine writes it. Returns the rows as they are written there: ``output`` is complete once they are
    exhausted (rows are streamed from the parts, never all held). ``options.resume``: inputs with a row in the
    parts are not scored again. ``predict_options``: ``iter_predict``'s keywords."""
    from .parts import Parts
    from .predictor import Inputs
    from .results import Result
    from .settings import ScoreSettings

    inputs = Inputs.of(sources)
    settings = ScoreSettings.among("detect" if row is None else "localize", predict_options)
    parts = Parts(output, [str(source) for source in inputs.items], options.parts_format, options.resume,
                  planned_header(model, settings))
    todo = [number for number in range(len(inputs.items)) if number not in parts.indices]
    print(f"clipforensics: ray: {counted(len(inputs.items), 'input')}, {len(parts.indices)} already in "
          f"{parts.folder}, {len(todo)} to score on {counted(options.replicas, 'replica')}", file=sys.stderr)
    if todo:
        try:
            with connected(options.address):
                about = run(model, ScoreInputs(inputs, row or Result.to_dict, predict_options), todo, options,
                            parts.write)
            if about:
                parts.record_used(run_header(about["model"], about["device"], about["precision"],
                                             scoring_options(settings, about["decision"]),
                                             parts.header[RUN]["started"], about["attention"]))
        except KeyboardInterrupt:
            if not parts.indices:
                raise
            raise ClipForensicsError(
                f"stopped (Ctrl-C): the rows of {counted(len(parts.indices), 'input')} are kept in {parts.folder}; "
                "run the same command with --resume to score the rest") from None
        finally:
            parts.drop_if_empty()
    return parts.merge(len(inputs.items))
