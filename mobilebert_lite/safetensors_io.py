"""Torch-free safetensors reader (memory-mapped, no copy) and atomic writer.

Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__":
{...}}, then the raw little-endian tensor bytes. Offsets are relative to the end of the header.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from .errors import CheckpointError
from .io_utils import atomic_write

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # reinterpreted by upcast_to_float32
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
          np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
          np.dtype("?"): "BOOL"}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsFile:
    """Memory-mapped view of one .safetensors file. `tensors` maps name -> (safetensors dtype, ndarray view)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        name = os.path.basename(self.path)

        def corrupt(why):
            return CheckpointError(f"corrupt safetensors file {name}: {why}")

        size = os.path.getsize(self.path)
        if size < 8:
            raise corrupt(f"file is {size} bytes, shorter than the 8-byte header length")
        with open(self.path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > min(_MAX_HEADER, size - 8):
                raise corrupt(f"header length {header_len} exceeds the file size {size}")
            raw = f.read(header_len)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise corrupt(f"header is not valid JSON ({exc})") from None
        if not isinstance(header, dict):
            raise corrupt("header is not a JSON object")
        self.metadata = header.pop("__metadata__", None) or {}
        data_start = 8 + header_len
        data_len = size - data_start
        # One read-only map for the whole file; every tensor is a view into it (no copy at load).
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r") if data_len > 0 else np.zeros(0, np.uint8)
        self.tensors = {}
        for key, info in header.items():
            try:
                dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
                shape = tuple(int(d) for d in shape)
            except (KeyError, TypeError, ValueError):
                raise corrupt(f"malformed entry for tensor {key!r}") from None
            if dtype_name not in _DTYPES:
                raise CheckpointError(f"tensor {key!r} in {name} has unsupported dtype {dtype_name}")
            dtype = _DTYPES[dtype_name]
            count = int(np.prod(shape, dtype=np.int64))
            if any(d < 0 for d in shape) or not 0 <= begin <= end <= data_len or end - begin != count * dtype.itemsize:
                raise corrupt(
                    f"tensor {key!r} ({dtype_name}, shape {shape}) has data offsets [{begin}, {end}) that do not fit "
                    f"its size or the {data_len}-byte data section (truncated file?)"
                )
            view = np.frombuffer(self._map, dtype=dtype, count=count, offset=data_start + begin) if count else \
                np.zeros(0, dtype)
            self.tensors[key] = (dtype_name, view.reshape(shape))

    def keys(self):
        return self.tensors.keys()


def upcast_to_float32(dtype_name: str, array: np.ndarray) -> np.ndarray:
    """float32 stays a zero-copy view; fp16/bf16/fp64 are converted (activations always run in float32)."""
    if dtype_name == "F32":
        return array
    if dtype_name == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    if dtype_name in ("F16", "F64"):
        return array.astype(np.float32)
    return array


def load_safetensors(path) -> dict:
    """name -> ndarray. Float tensors come back as float32 (fp32 ones as read-only memory-mapped views)."""
    sf = SafetensorsFile(path)
    return {k: upcast_to_float32(d, a) for k, (d, a) in sf.tensors.items()}


def save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write `tensors` (name -> ndarray) atomically; metadata format 'pt' so transformers accepts the file."""
    header, offset, arrays = {}, 0, []
    for key in sorted(tensors):
        arr = np.ascontiguousarray(tensors[key])
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if np.dtype(dtype) not in _NAMES:
            raise TypeError(f"cannot write tensor {key!r} of dtype {arr.dtype} to safetensors")
        arr = arr.astype(dtype, copy=False)
        header[key] = {"dtype": _NAMES[np.dtype(dtype)], "shape": list(arr.shape),
                       "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        arrays.append(arr)
    header["__metadata__"] = {"format": "pt", **(metadata or {})}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # keep the data section 8-byte aligned

    def write(f):
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for arr in arrays:
            f.write(arr.tobytes(order="C"))

    atomic_write(path, write)
