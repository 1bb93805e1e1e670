"""Finding and reading a checkpoint in any supported format, and `convert`: anything -> model.safetensors.

Sources: `pytorch_model.bin` (zip or legacy torch.save, read by a restricted unpickler) or its sharded
`pytorch_model.bin.index.json`; `tf_model.h5` (h5py) or `tf_model.h5.index.json`; `model.safetensors` (single or
sharded); or a directory holding one of them. The output is written atomically (temporary file + rename), with
the MLM decoder bias written explicitly and `tie_word_embeddings=false` in the copied config when the decoder
differs from the word embeddings (shared/reference/tf_twins.md 3.7: otherwise transformers would re-tie it).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from ..errors import CheckpointError

BIN_NAME, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
H5_NAME, H5_INDEX = "tf_model.h5", "tf_model.h5.index.json"


def find_bin_checkpoint(directory) -> str | None:
    for name in (BIN_NAME, BIN_INDEX):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _shards(index_path) -> list[str]:
    from ..weights import read_shard_index

    return read_shard_index(index_path)[1]


def _merge(parts: list[dict], what: str) -> dict:
    out = {}
    for part in parts:
        for key, value in part.items():
            if key in out:
                raise CheckpointError(f"tensor {key!r} appears in two shards of {what}")
            out[key] = value
    return out


def read_bin_checkpoint(path) -> dict[str, np.ndarray]:
    """A pytorch_model.bin or its sharded index -> name -> array (dtypes as saved; see pytorch_bin)."""
    from .pytorch_bin import read_pytorch_bin

    if path.endswith(".index.json"):
        return _merge([read_pytorch_bin(p) for p in _shards(path)], os.path.basename(path))
    return read_pytorch_bin(path)


def read_h5_checkpoint(path) -> dict[str, np.ndarray]:
    from .tf_h5 import read_tf_h5

    if path.endswith(".index.json"):
        return _merge([read_tf_h5(p) for p in _shards(path)], os.path.basename(path))
    return read_tf_h5(path)


def read_any(src) -> tuple[dict[str, np.ndarray], str | None]:
    """(PyTorch-named tensors, the directory holding config.json or None) for a checkpoint file or directory."""
    from ..weights import read_raw_weights

    src = os.fspath(src)
    if os.path.isdir(src):
        for name in ("model.safetensors", "model.safetensors.index.json", BIN_NAME, BIN_INDEX):
            if os.path.isfile(os.path.join(src, name)):
                return read_raw_weights(src, "pt"), src
        for name in (H5_NAME, H5_INDEX):
            if os.path.isfile(os.path.join(src, name)):
                return read_h5_checkpoint(os.path.join(src, name)), src
        raise FileNotFoundError(f"{src} holds no model.safetensors, {BIN_NAME}, {H5_NAME} or their indexes")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"checkpoint {src} does not exist")
    base = os.path.basename(src)
    directory = os.path.dirname(os.path.abspath(src))
    if base.endswith((".h5", H5_INDEX)):
        return read_h5_checkpoint(src), directory
    if base.endswith((".bin", ".pt", ".pth", BIN_INDEX)):
        return read_bin_checkpoint(src), directory
    if base.endswith(".safetensors"):
        from ..safetensors_io import SafetensorsFile

        return {k: np.array(a) for k, (_, a) in SafetensorsFile(src).tensors.items()}, directory
    raise CheckpointError(f"do not know how to read {base}: expected .bin, .h5, .safetensors or a sharded index")


def convert(src, dst, *, dtype: str = "float32") -> str:
    """Convert a checkpoint (file or directory) to DST/model.safetensors (DST a directory; config.json and
    tokenizer files next to the source are copied along). Returns the written path."""
    if dtype not in ("float32", "keep"):
        raise ValueError(f"dtype must be 'float32' or 'keep', got {dtype!r}")
    tensors, src_dir = _read_for_writing(src, upcast=dtype == "float32")
    untied = _complete_mlm_head(tensors)
    return _write(tensors, src_dir, dst, untied)


def quantize(src, dst) -> str:
    """Write an int8 checkpoint of `src` (any checkpoint convert() reads) to DST/model.safetensors: the encoder's
    Linears and the large embedding/MLM tensors as int8 with per-channel scales (mobilebert_lite/quantization.py),
    about a quarter of the float32 size. It loads with from_pretrained() and runs in int8. Returns the path."""
    from .. import quantization

    tensors, src_dir = _read_for_writing(src, upcast=True)
    if quantization.is_quantized_checkpoint(tensors):
        raise ValueError(f"{src} is already an int8 checkpoint")
    untied = _complete_mlm_head(tensors)
    for key, value in tensors.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"tensor {key!r} holds NaN or inf; refusing to quantise it")
    out = quantization.checkpoint_tensors(tensors)
    return _write(out, src_dir, dst, untied, metadata={quantization.FORMAT_KEY: quantization.FORMAT})


def _read_for_writing(src, upcast: bool) -> tuple[dict, str | None]:
    tensors, src_dir = read_any(src)
    tensors = {k: v for k, v in tensors.items() if not k.endswith("embeddings.position_ids")}
    if upcast:
        tensors = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in tensors.items()}
    return tensors, src_dir


def _write(tensors: dict, src_dir, dst, untied: bool, metadata: dict | None = None) -> str:
    from ..safetensors_io import save_safetensors

    os.makedirs(dst, exist_ok=True)
    out = os.path.join(dst, "model.safetensors")
    save_safetensors({k: np.ascontiguousarray(v) for k, v in tensors.items()}, out, metadata=metadata)
    if src_dir is not None and os.path.abspath(src_dir) != os.path.abspath(dst):
        _copy_side_files(src_dir, dst, untied)
    return out


def _complete_mlm_head(tensors: dict) -> bool:
    """Write cls.predictions.decoder.bias explicitly (transformers 5 leaves a missing one random when untied);
    return whether the decoder differs from the word embeddings."""
    prefix = "mobilebert." if any(k.startswith("mobilebert.") for k in tensors) else ""
    if "cls.predictions.bias" in tensors and "cls.predictions.decoder.bias" not in tensors:
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    decoder = tensors.get("cls.predictions.decoder.weight")
    words = tensors.get(prefix + "embeddings.word_embeddings.weight")
    return decoder is not None and words is not None and not np.array_equal(decoder, words)


def _copy_side_files(src_dir, dst, untied: bool) -> None:
    from ..io_utils import atomic_write_bytes

    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.isfile(os.path.join(src_dir, name)):
            shutil.copyfile(os.path.join(src_dir, name), os.path.join(dst, name))
    config_path = os.path.join(src_dir, "config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        if untied:
            config["tie_word_embeddings"] = False
        atomic_write_bytes(os.path.join(dst, "config.json"), json.dumps(config, indent=2).encode("utf-8"))
