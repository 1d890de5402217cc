"""Reading weight files: ``torch.load`` only with ``weights_only=True``, and safetensors read straight
into the tensors that the model will keep (no second copy of the weights in memory)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import torch

from ..errors import CheckpointError

StateDict = dict[str, torch.Tensor]
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def torch_load(path: Path) -> object:
    """A pickled checkpoint, refused if it carries code; the tensors of a zip-format file (any
    ``torch.save`` since 1.6) are memory-mapped rather than copied."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(_load_failure(error)) from None


def _load_failure(error: Exception) -> str:
    """torch's error in one line, without its advice to retry with ``weights_only=False``: a checkpoint that
    needs it carries code, which this tool never runs."""
    text = str(error)
    if "Unsupported global" in text:
        name = re.search(r"GLOBAL (\S+)", text)
        return (f"refused: it holds Python objects beyond tensors ({name.group(1) if name else 'a global'}), which "
                "torch.load(weights_only=True) does not run; only checkpoints of tensors are read")
    reason = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in text else text
    reason = next((line.strip() for line in reason.splitlines() if line.strip()), type(error).__name__)
    return f"not a PyTorch checkpoint, or a damaged one: torch.load(weights_only=True) failed ({reason})"


def _is_zip(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"PK\x03\x04"


def read_safetensors(path: Path) -> StateDict:
    """Every tensor of a ``.safetensors`` file, each read from the file into its own storage."""
    try:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > path.stat().st_size - 8:
                raise ValueError(f"its header claims {length:,} bytes, more than the file holds (damaged?)")
            header = json.loads(file.read(length))
            header.pop("__metadata__", None)
            start = 8 + length
            state = {}
            for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
                state[name] = _read_tensor(file, start, entry)
            return state
    except (OSError, ValueError, KeyError, TypeError, struct.error) as error:
        raise CheckpointError(f"cannot read {path} as safetensors: {error}") from None


def _read_tensor(file, start: int, entry: dict) -> torch.Tensor:
    begin, end = entry["data_offsets"]
    tensor = torch.empty(entry["shape"], dtype=SAFETENSORS_DTYPES[entry["dtype"]])
    if tensor.numel():
        buffer = tensor.view(-1).view(torch.uint8).numpy()
        if buffer.nbytes != end - begin:
            raise ValueError(f"tensor of {buffer.nbytes} bytes stored in {end - begin}")
        file.seek(start + begin)
        if file.readinto(memoryview(buffer)) != buffer.nbytes:
            raise ValueError("the file ends inside a tensor")
    return tensor


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is broken: not valid JSON ({error})") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data
