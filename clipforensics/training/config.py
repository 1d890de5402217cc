"""A training run, fully described and validated before anything starts: the YAML presets in ``configs/``
map onto these pydantic models, field by field. A wrong type, a value out of range or an unknown field is
a ``UsageError`` naming the field's path (``trainer.epochs``, ``data.train[1]``); an unknown field is
answered with the valid ones.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PlainValidator,
    PositiveInt,
    ValidationError,
    model_validator,
)

from ..errors import UsageError
from ..models.backbones import FAMILIES, KNOWN_BACKBONES, BackboneConfig
from ..models.detector import HEADS
from ..models.model import ModelConfig
from ..models.tuning import TUNING_MODES

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
SHAPE_FIELDS = ("width", "layers", "mlp_width", "patch_size", "image_size")
OPTIONAL_SHAPE_FIELDS = ("family", "registers", "position_grid")
PRECISIONS = ("auto", "32-true", "32", "16-mixed", "16-true", "16", "bf16-mixed", "bf16-true", "bf16", "64-true",
              "64", "transformer-engine", "transformer-engine-float16")


def _backbone(value: Any) -> str | dict[str, Any]:
    """A known name, or an architecture {width, layers, mlp_width, patch_size, image_size} of positive ints,
    optionally with a ``family`` (clip, dinov3, pe; clip when absent) and its ``registers`` or ``position_grid``."""
    if isinstance(value, str):
        if value not in KNOWN_BACKBONES:
            raise ValueError(f"unknown backbone {value!r}; known: {', '.join(KNOWN_BACKBONES)}")
        return value
    if not isinstance(value, dict):
        raise ValueError(f"must be a backbone name or a mapping of {', '.join(SHAPE_FIELDS)}, not {value!r}")
    allowed = SHAPE_FIELDS + OPTIONAL_SHAPE_FIELDS
    missing, unknown = [k for k in SHAPE_FIELDS if k not in value], sorted(set(value) - set(allowed))
    bad = [k for k in SHAPE_FIELDS if k in value and not (type(value[k]) is int and value[k] > 0)]
    bad += [k for k in OPTIONAL_SHAPE_FIELDS[1:] if k in value and not (type(value[k]) is int and value[k] >= 0)]
    if "family" in value and value["family"] not in FAMILIES:
        bad.append(f"family (one of {', '.join(FAMILIES)})")
    if missing or unknown or bad:
        problems = [f"{label} {', '.join(keys)}" for label, keys in
                    (("missing", missing), ("unknown", unknown), ("not valid:", bad)) if keys]
        raise ValueError(f"an architecture needs {', '.join(SHAPE_FIELDS)} ({'; '.join(problems)})")
    return {key: value[key] for key in allowed if key in value}


def _devices(value: Any) -> str | int | list[int]:
    """What Lightning takes: auto, a count (-1: all), a list of indices, or indices as text ("0,1")."""
    if isinstance(value, bool):
        raise ValueError(f"must be auto, a number of devices or a list of device indices, not {value!r}")
    if isinstance(value, int) and value >= -1:
        return value
    if isinstance(value, list) and value and all(type(v) is int and v >= 0 for v in value):
        return value
    if isinstance(value, str) and (value == "auto" or re.fullmatch(r"-1|\d+|\d+(,\d+)+,?", value.replace(" ", ""))):
        return value
    raise ValueError(f"must be auto, a number of devices or a list of device indices, not {value!r}")


def _as_list(value: Any) -> Any:
    """One manifest may be given as a string rather than a one-item list."""
    return [value] if isinstance(value, str) else value


Backbone = Annotated[Union[str, dict[str, Any]], PlainValidator(_backbone)]
Devices = Annotated[Union[str, int, list[int]], PlainValidator(_devices)]
Manifests = Annotated[list[str], BeforeValidator(_as_list)]
Precision = Annotated[Literal[PRECISIONS], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
BatchLimit = Union[NonNegativeInt, NonNegativeFloat, None]


class Section(BaseModel):
    """A part of the config: unknown fields refused, assignments validated, field docstrings kept."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


class ModelSettings(Section):
    backbone: Backbone = "openai/clip-vit-large-patch14"
    """A known name (OpenAI CLIP ViTs, DINOv3 ViT-S/B/L, PE-Core T/S/B/L: see README), or an architecture
    {width, layers, mlp_width, patch_size, image_size[, family, registers, position_grid]} (random weights:
    tests and experiments)."""
    weights: str | None = "hub"
    """Pretrained tower: 'hub', a local folder of the family's files (a Hugging Face CLIP or DINOv3 folder,
    timm's PE folder), or null for random (tests)."""
    head: Literal[HEADS] | None = "LinearNorm"
    """LinearNorm | linear: detection; null: a localizer alone."""
    decoder: str | None = None
    """conv-4 | conv-12 | conv-20 | linear | attention: localization (DeCLIP); null: detection alone."""
    layer: NonNegativeInt = 20
    """The block whose patch tokens the decoder reads (DeCLIP: 20 of ViT-L/14's 24)."""
    tuning: Literal[TUNING_MODES] = "layernorm"
    """layernorm | lora | linear-probe | full: what trains in the backbone besides head and decoder
    (linear-probe freezes it, as DeCLIP does)."""
    lora_rank: PositiveInt = 8
    lora_alpha: PositiveInt = 16

    @model_validator(mode="after")
    def _parts(self) -> ModelSettings:
        self.as_model_config()
        return self

    def as_model_config(self) -> ModelConfig:
        """The model this section describes, which checks itself (a head or a decoder, the decoder, its layer)."""
        return ModelConfig(self.backbone_config(), self.head, self.decoder, self.layer)

    def backbone_config(self) -> str | BackboneConfig:
        """The backbone as the model factory takes it: a known name, or a custom architecture."""
        return self.backbone if isinstance(self.backbone, str) else BackboneConfig(name="custom", **self.backbone)


class DataConfig(Section):
    train: Manifests = []
    """Manifests: dataset-layout folders (the root holding datasets, a dataset, a source or one video),
    list files (.txt), CSV manifests or DeepfakeBench JSON."""
    val: Manifests = []
    frames_per_video: PositiveInt | None = None
    """Frames kept per video, evenly spaced; null keeps all."""
    limit_train_files: PositiveInt | None = None
    """Whole videos drawn (seeded) until this many frames."""
    paired: bool = False
    """Each fake with a real frame of its source video in the same batch (GenD)."""
    fakes: Literal["data", "sbi"] = "data"
    """data: the manifests' fakes; sbi: self-blended pseudo-fakes of the real training frames instead
    (validation keeps its own labels and fakes)."""
    augment: bool = True
    """The GenD augmentation set on training frames."""
    train_split: str | None = None
    """Split kept from Dolos folders and DeepfakeBench JSON (train, valid, test); null keeps all."""
    val_split: str | None = None
    num_workers: NonNegativeInt = 4


class LossConfig(Section):
    cross_entropy: NonNegativeFloat = 1.0
    label_smoothing: Fraction = 0.0
    uniformity: NonNegativeFloat = 0.0
    alignment: NonNegativeFloat = 0.0
    slerp: bool = True
    """Slerp augmentation of the features, per class (seed paper)."""
    slerp_range: tuple[Fraction, Fraction] = (0.0, 1.0)
    mask: NonNegativeFloat = 1.0
    """Weight of the per-pixel BCE of the map (models with a decoder; only on images with a mask)."""


class OptimConfig(Section):
    lr: NonNegativeFloat = 3e-4
    min_lr: NonNegativeFloat = 1e-6
    scheduler: Literal["cosine", "cosine-restarts", "plateau"] = "cosine"
    """cosine (to min_lr over the run) | cosine-restarts (period restart_epochs), per step |
    plateau (DeCLIP: lr/10 when the monitored metric stalls for patience epochs; stop below min_lr)"""
    restart_epochs: PositiveInt = 10
    patience: PositiveInt = 5
    weight_decay: NonNegativeFloat = 0.0
    """Applied to weights only: never to norms and biases."""
    betas: tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]] = (0.9, 0.999)
    batch_size: PositiveInt = 128
    """Effective batch; reached by accumulating micro-batches when micro_batch_size is smaller."""
    micro_batch_size: PositiveInt | None = None


class TrainerConfig(Section):
    epochs: PositiveInt = 10
    precision: Precision = "auto"
    """auto = bf16-mixed on GPU, 32 on CPU; or any Lightning precision."""
    accelerator: str = "auto"
    devices: Devices = "auto"
    num_nodes: PositiveInt = 1
    strategy: str = "auto"
    seed: int = 42
    monitor: str | None = None
    """Metric choosing the best model (higher is better); null: val/video_mAP with a head, else val/iou."""
    output_dir: str = "runs/train"
    """The run folder; a folder holding a run with another configuration is refused (``train --fresh``
    starts a new one beside it)."""
    tensorboard: bool = False
    wandb: bool = False
    limit_train_batches: BatchLimit = None
    limit_val_batches: BatchLimit = None


class TrainConfig(Section):
    model: ModelSettings = Field(default_factory=ModelSettings)
    data: DataConfig = Field(default_factory=DataConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    def to_dict(self) -> dict:
        """Plain data (lists for tuples), as written to ``config.yaml`` and into checkpoints."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "config") -> TrainConfig:
        """Validated; any problem is a ``UsageError`` naming the fields (``origin``: where the data came from)."""
        if not isinstance(data, dict):
            raise UsageError(f"{origin}: a config is a mapping of sections "
                             f"({', '.join(cls.model_fields)}), not {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise UsageError(f"{origin}: " + "; ".join(_problem(p) for p in error.errors())) from None


def _problem(problem: dict) -> str:
    where = _path(problem["loc"])
    if problem["type"] == "extra_forbidden":
        valid = list(_section(problem["loc"][:-1]).model_fields)
        close = difflib.get_close_matches(str(problem["loc"][-1]), valid, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown config field {where}{hint}; valid here: {', '.join(valid)}"
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] in ("missing", "model_type", "value_error") or not problem["loc"]:
        return f"{where or 'config'}: {message}"
    return f"{where}: {message} (got {problem['input']!r})"


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _section(loc: tuple) -> type[Section]:
    section: type[Section] = TrainConfig
    for part in loc:
        annotation = section.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            break
        section = annotation
    return section


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A YAML preset (None: the defaults, for the API and tests), then ``key.sub=value`` overrides (values
    parsed as YAML); a missing or unreadable file and every invalid value are ``UsageError``s."""
    data = _read_yaml(Path(path)) if path is not None else {}
    for override in overrides:
        _override(data, override)
    origin = f"{path}" if path is not None else "config"
    return TrainConfig.from_dict(data, origin + (" with --set" if overrides else ""))


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"{path}: no such config file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not a readable YAML config ({_first_line(error)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config is a mapping of sections, not {type(data).__name__}")
    return data


def _override(data: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise UsageError(f"--set takes section.field=value, got {override!r}")
    node = data
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UsageError(f"--set {key}: {'.'.join(parts[: depth + 1])} is a value, not a section")
    node[parts[-1]] = _parse_value(key, value)


def _parse_value(key: str, text: str) -> Any:
    """YAML, except that ``1e-3`` (a string to YAML 1.1) is the number it looks like."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"--set {key}: {text!r} is not a YAML value ({_first_line(error)})") from None
    glued = _glued_key(value)
    if glued is not None:
        name, _, rest = glued.partition(":")
        raise UsageError(f"--set {key}: {text!r} reads {glued!r} as one key without a value: YAML needs a space "
                         f"after ':', as in {{{name}: {rest}}}")
    if isinstance(value, str) and NUMBER.fullmatch(value):
        return float(value)
    return value


def _glued_key(value: Any) -> str | None:
    """A mapping's key such as ``lr:1e-4`` with no value (YAML's reading of ``{lr:1e-4}``), at any depth."""
    if not isinstance(value, dict):
        return None
    for key, item in value.items():
        if item is None and isinstance(key, str) and ":" in key:
            return key
        found = _glued_key(item)
        if found is not None:
            return found
    return None


def _first_line(error: Exception) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + (getattr(error, "problem", None) or str(error).splitlines()[0])
