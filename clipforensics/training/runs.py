"""Run folders: made once, continued only by a compatible configuration, never rewritten by another run.

A run folder holds ``run.json``: the run's fingerprint (every config field that must stay the same for a
resume to continue the same experiment), its state, and which model to use when it ended. Fields that may
change between launches of one run, because they change how long or where it trains but not what it
learns, are ``RESUMABLE``: more ``trainer.epochs`` continue a finished run; devices, nodes, strategy,
precision, loggers, batch limits and loader workers may differ. Anything else (the model, data, loss,
optimiser, seed, monitored metric) differing is refused, naming the folder and the fields; ``fresh``
starts a new numbered folder beside it instead (``runs/x-2``, ``runs/x-3``, ...).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError
from .config import TrainConfig

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
RUN_DIR_VARIABLE = "CLIPFORENSICS_RUN_DIR"
"""Set while a run trains: the processes Lightning launches for it (DDP) use the folder rank 0 chose."""

RESUMABLE = frozenset({
    "data.num_workers", "trainer.epochs", "trainer.precision", "trainer.accelerator", "trainer.devices",
    "trainer.num_nodes", "trainer.strategy", "trainer.output_dir", "trainer.tensorboard", "trainer.wandb",
    "trainer.limit_train_batches", "trainer.limit_val_batches",
})


def fingerprint(config: TrainConfig) -> dict[str, Any]:
    """The fields (as ``section.field``) that must match for a resume."""
    return {key: value for key, value in _flatten(config.to_dict()).items() if key not in RESUMABLE}


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "backbone":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (RUN_FILE, CONFIG_FILE, "checkpoints"))


def open_run(config: TrainConfig, fresh: bool = False) -> tuple[TrainConfig, bool]:
    """The run's folder made or checked, and the config with ``trainer.output_dir`` set to it; the flag says
    whether there is training left to do (False: a finished run asked for no more epochs)."""
    launched = os.environ.get(RUN_DIR_VARIABLE)
    if launched or _rank() != 0:
        return _in_folder(config, Path(launched or config.trainer.output_dir)), True
    folder = Path(config.trainer.output_dir)
    if fresh and holds_run(folder):
        folder = _next_free(folder)
    config = _in_folder(config, folder)
    if not holds_run(folder):
        if folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
            raise UsageError(f"{folder}: trainer.output_dir holds files that are not a training run; "
                             "choose an empty or new folder")
        folder.mkdir(parents=True, exist_ok=True)
        _write_state(folder, {"fingerprint": fingerprint(config), "state": "training",
                              "epochs": config.trainer.epochs})
        _write_config(folder, config)
        return config, True
    state = read_state(folder)
    changed = _differences(_stored_fingerprint(folder, state), fingerprint(config))
    if changed:
        raise UsageError(
            f"{folder} holds a run with another configuration ({'; '.join(changed)}): it is left as it is. "
            f"Resume it with its own settings ({folder / CONFIG_FILE}), start a new run beside it with "
            f"--fresh ({_next_free(folder)}), or choose another trainer.output_dir")
    if state.get("state") == "finished" and config.trainer.epochs <= state.get("epochs", math.inf):
        return config, False
    _write_state(folder, {**state, "fingerprint": fingerprint(config), "state": "training",
                          "epochs": config.trainer.epochs})
    _write_config(folder, config)
    return config, True


def finish_run(folder: Path, config: TrainConfig, outcome: dict) -> None:
    """Records that the run ended and which model to use (``outcome``: ``best`` or ``no_best``)."""
    _write_state(folder, {**read_state(folder), "state": "finished", "epochs": config.trainer.epochs, **outcome})


def read_state(folder: Path) -> dict:
    path = folder / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def report(folder: Path, trained: bool = True) -> str:
    """Which model of the run to use, and why (the ``train`` command's last words); ``trained`` False: the
    run had already finished and nothing was done."""
    state = read_state(folder)
    lead = "" if trained else (f"{folder} already finished its {state.get('epochs')} epochs: nothing to do "
                               "(more trainer.epochs continue it, --fresh starts a new run beside it). ")
    logs = f"logs: {folder / 'logs'}"
    best = state.get("best")
    if best and (folder / "best").is_dir():
        return (f"{lead}use {folder / 'best'}: the best model by {best['monitor']} ({best['score']:.4g}, "
                f"epoch {best['epoch']}); the last epoch's model is {folder / 'last'}; {logs}")
    why = state.get("no_best", "the run recorded none")
    return f"{lead}no best model ({why}): use {folder / 'last'}, the last epoch's model; {logs}"


def _stored_fingerprint(folder: Path, state: dict) -> dict[str, Any] | None:
    if "fingerprint" in state:
        return state["fingerprint"]
    try:  # a run made before run.json existed: its config.yaml says what it was
        return fingerprint(TrainConfig.from_dict(yaml.safe_load((folder / CONFIG_FILE).read_text())))
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _differences(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    if stored is None:
        return ["its configuration is unknown: no readable run.json or config.yaml"]
    missing = object()
    return [f"{key}: {_show(stored.get(key, missing))} there, {_show(current.get(key, missing))} here"
            for key in sorted(set(stored) | set(current)) if stored.get(key, missing) != current.get(key, missing)]


def _show(value: Any) -> str:
    return "unset" if not isinstance(value, (str, int, float, list, dict, type(None))) else json.dumps(value)


def _next_free(folder: Path) -> Path:
    number = 2
    while holds_run(candidate := folder.with_name(f"{folder.name}-{number}")) or (
            candidate.exists() and not (candidate.is_dir() and not any(candidate.iterdir()))):
        number += 1
    return candidate


def _in_folder(config: TrainConfig, folder: Path) -> TrainConfig:
    return config.model_copy(update={"trainer": config.trainer.model_copy(update={"output_dir": str(folder)})})


def _write_state(folder: Path, state: dict) -> None:
    partial = folder / (RUN_FILE + ".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, folder / RUN_FILE)


def _write_config(folder: Path, config: TrainConfig) -> None:
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _rank() -> int:
    """This process's global rank when a launcher outside Lightning (torchrun, SLURM) started it."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0
