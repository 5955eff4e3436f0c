"""Read a GGUF file's header (metadata and tensor table) without loading the model.

Used to check a file before llama.cpp sees it: magic, version, architecture, quantization,
context length, chat template, tensor count, and that every tensor's data lies inside the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from telesynth_tui.errors import TelesynthError

GGUF_MAGIC = b"GGUF"

# value types of the GGUF key/value section
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# ggml tensor types: (elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    30: ("BF16", 1, 2),
}

# llama_ftype values as written in general.file_type
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
}

_MAX_STRING = 64 * 1024 * 1024


class GGUFError(TelesynthError):
    """A file that is not a usable GGUF model."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def n_bytes(self) -> int | None:
        spec = GGML_TYPES.get(self.ggml_type)
        if spec is None:
            return None
        _, block, size = spec
        return self.n_elements // block * size


@dataclass
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)
    file_size: int = 0
    data_offset: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def quantization(self) -> str:
        ftype = self.metadata.get("general.file_type")
        if ftype is not None:
            return FILE_TYPES.get(int(ftype), f"type{ftype}")
        counts: dict[str, int] = {}
        for t in self.tensors:
            name = GGML_TYPES.get(t.ggml_type, (f"type{t.ggml_type}", 0, 0))[0]
            counts[name] = counts.get(name, 0) + t.n_elements
        return max(counts, key=counts.__getitem__) if counts else "unknown"

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    def summary(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "name": self.name,
            "gguf_version": self.version,
            "quantization": self.quantization,
            "parameters": self.parameter_count,
            "context_length": self.context_length,
            "tensors": len(self.tensors),
            "chat_template": bool(self.chat_template),
            "file_size": self.file_size,
        }


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle = handle
        self.path = path
        self.size = size

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise GGUFError(f"{self.path}: truncated GGUF (header ends early)")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > min(_MAX_STRING, self.size):
            raise GGUFError(f"{self.path}: corrupt GGUF (string of {length} bytes)")
        return self.read(length).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep_arrays: bool) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self.unpack("<I")
            count = self.unpack("<Q")
            if count > self.size:
                raise GGUFError(f"{self.path}: corrupt GGUF (array of {count} items)")
            if item_type in _SCALARS and not keep_arrays:
                self.handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
                return f"<array of {count}>"
            items = [self.value(item_type, keep_arrays) for _ in range(count)]
            return items if keep_arrays else f"<array of {count}>"
        raise GGUFError(f"{self.path}: corrupt GGUF (unknown value type {vtype})")


def read_gguf_header(path: Path, keep_arrays: bool = False) -> GGUFHeader:
    """Parse and check the header; raises GGUFError with a one-line reason."""
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except FileNotFoundError:
        raise GGUFError(f"{path}: no such file") from None
    except OSError as exc:
        raise GGUFError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = _Reader(handle, path, size)
        if size < 24 or handle.read(4) != GGUF_MAGIC:
            raise GGUFError(f"{path}: not a GGUF file (bad magic)")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {version}")
        n_tensors = reader.unpack("<Q")
        n_kv = reader.unpack("<Q")
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise GGUFError(f"{path}: corrupt GGUF (implausible counts)")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"), keep_arrays)
        tensors: list[TensorInfo] = []
        for _ in range(n_tensors):
            name = reader.string()
            n_dims = reader.unpack("<I")
            if n_dims > 8:
                raise GGUFError(f"{path}: corrupt GGUF (tensor {name} has {n_dims} dimensions)")
            shape = tuple(reader.unpack("<Q") for _ in range(n_dims))
            tensors.append(TensorInfo(name, shape, reader.unpack("<I"), reader.unpack("<Q")))
        alignment = int(metadata.get("general.alignment", 32))
        position = handle.tell()
        data_offset = (position + alignment - 1) // alignment * alignment
    header = GGUFHeader(path, version, metadata, tensors, size, data_offset)
    for tensor in tensors:
        n_bytes = tensor.n_bytes()
        if n_bytes is not None and data_offset + tensor.offset + n_bytes > size:
            raise GGUFError(
                f"{path}: truncated GGUF (tensor {tensor.name} ends past the end of the file)"
            )
    if not tensors:
        raise GGUFError(f"{path}: GGUF has no tensors")
    return header
