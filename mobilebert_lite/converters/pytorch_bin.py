"""Read a PyTorch ``pytorch_model.bin`` state dict into numpy arrays without torch and without running pickle code.

``torch.save`` writes a pickle whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)`` calls and whose storages are pickle *persistent ids* pointing at raw byte blobs. Unpickling with the stock
``pickle`` module would import and call whatever the file names (``os.system`` included), so this reader uses an
unpickler whose ``find_class`` knows only the handful of globals a tensor state dict needs, each mapped to a local
stand-in that merely records its arguments. Nothing from torch is ever imported.

Two container layouts exist:

* zip (torch >= 1.6): ``<top>/data.pkl`` plus one member ``<top>/data/<key>`` per storage, in the byte order named
  by ``<top>/byteorder`` (little when absent); ``<top>`` is the file's stem and varies.
* legacy (``_use_new_zipfile_serialization=False``): five pickles in a row (magic number, protocol version,
  sys_info, the object, the sorted storage keys), then each storage as a little-endian int64 element count followed
  by its little-endian elements.
"""

from __future__ import annotations

import collections
import io
import mmap
import os
import pickle
import struct
import zipfile

import numpy as np

from mobilebert_lite.errors import CheckpointError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class name -> element dtype (little-endian). bfloat16 has no numpy dtype: its raw uint16 bits are
# widened to float32 after the tensor view is taken.
_BF16 = "bfloat16"
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": _BF16,
    "DoubleStorage": np.dtype("<f8"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    # An untyped storage is plain bytes; torch rebuilds a uint8 tensor on it.
    "UntypedStorage": np.dtype("u1"),
}
_STORAGE_MODULES = ("torch", "torch.storage", "torch.cuda")
_MAX_BROADCAST_BYTES = 1 << 26


# --------------------------------------------------------------------------------------------------------------------
# Stand-ins for the globals a checkpoint may reference. They only record arguments; the arrays are built afterwards,
# once every storage's bytes are available (the legacy format stores them *after* the pickle).


class _Frozen:
    """Immutable record. Pickle's BUILD opcode sets attributes on whatever object it is applied to: a hostile file
    must not be able to alter a record after it was validated (offsets feed as_strided), nor poison the shared
    stand-ins in _SAFE_GLOBALS for later loads."""

    __slots__ = ()

    def __init__(self, **fields):
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is read-only")


class _StorageType(_Frozen):
    __slots__ = ("name", "dtype")


class _StorageRef(_Frozen):
    """One storage blob: key into the file, element dtype, element count, and (legacy views) an element offset."""

    __slots__ = ("key", "dtype", "numel", "view_offset")


class _TensorRef(_Frozen):
    __slots__ = ("storage", "offset", "size", "stride")


class _Callable(_Frozen):
    """Wraps a rebuild function, so the unpickler never hands out a function object whose __dict__ a pickle could
    edit."""

    __slots__ = ("fn",)

    def __call__(self, *args):
        return self.fn(*args)


def _int_tuple(value, what):
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"tensor {what} {value!r} is not a tuple of integers")
    return value


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    # _rebuild_tensor_v2 adds requires_grad, backward_hooks and (newer torch) metadata: irrelevant to the values.
    if not isinstance(storage, _StorageRef):
        raise ValueError(f"tensor storage is a {type(storage).__name__}, not a storage reference")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ValueError(f"tensor storage offset {storage_offset!r} is not a non-negative integer")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or any(d < 0 for d in size) or any(s < 0 for s in stride):
        raise ValueError(f"tensor size {size} / stride {stride} are inconsistent")
    return _TensorRef(storage=storage, offset=storage_offset, size=size, stride=stride)


def _rebuild_parameter(data, *_ignored):
    # nn.Parameter(data, requires_grad) [+ hooks, + python state]: the values are those of `data`.
    if not isinstance(data, _TensorRef):
        raise ValueError(f"parameter data is a {type(data).__name__}, not a tensor")
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _Callable(fn=_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor"): _Callable(fn=_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Callable(fn=_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Callable(fn=_rebuild_parameter),
    ("collections", "OrderedDict"): _Callable(fn=_ordered_dict),
}
for _module in _STORAGE_MODULES:
    for _name, _dtype in _STORAGE_DTYPES.items():
        _SAFE_GLOBALS[(_module, _name)] = _StorageType(name=_name, dtype=_dtype)
_SAFE_GLOBALS[("torch.storage", "_UntypedStorage")] = _StorageType(name="UntypedStorage", dtype=np.dtype("u1"))


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves only _SAFE_GLOBALS; storages come back as _StorageRef, shared by key.

    Built on the pure-Python unpickler: the C one keeps its memo in an array indexed by the file's PUT numbers, so
    one forged index makes it allocate and clear gigabytes. A state dict's pickle is small; speed is not a concern.
    """

    def __init__(self, file, filename):
        super().__init__(file)
        self.filename = filename
        self.storages = {}

    def find_class(self, module, name):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise CheckpointError(
                f"refusing to load {self.filename}: it references {module}.{name}, which is not part of a tensor "
                "checkpoint"
            ) from None

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata (None, or (view_key, offset, size)
        # for the storage views that pre-1.0 torch could save).
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) not in (5, 6):
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise CheckpointError(f"refusing to load {self.filename}: unsupported persistent object {kind!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise ValueError(f"storage type {storage_type!r:.80} is not a known torch storage class")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ValueError(f"malformed storage record {pid!r:.200}")
        root = self._storage(key, storage_type.dtype, numel)
        if view is None:
            return root
        view_key, offset, size = view
        if not isinstance(offset, int) or not isinstance(size, int) or offset < 0 or size < 0 or offset + size > numel:
            raise ValueError(f"storage view {view!r:.80} lies outside its {numel}-element storage")
        return _StorageRef(key=root.key, dtype=root.dtype, numel=size, view_offset=offset)

    def _storage(self, key, dtype, numel):
        known = self.storages.get(key)
        if known is None:
            known = self.storages[key] = _StorageRef(key=key, dtype=dtype, numel=numel, view_offset=0)
        elif not _same_dtype(known.dtype, dtype) or known.numel != numel:
            raise ValueError(f"storage {key!r} is referenced with two different types or sizes")
        return known


# --------------------------------------------------------------------------------------------------------------------
# Materialising tensors from storage bytes.


def _same_dtype(a, b):
    return (a is _BF16) == (b is _BF16) and _element_dtype(a) == _element_dtype(b)


def _element_dtype(storage_dtype):
    return np.dtype("<u2") if storage_dtype is _BF16 else storage_dtype


def _storage_array(raw, storage: _StorageRef, big_endian: bool) -> np.ndarray:
    """The storage's elements as a 1-D array over `raw` (no copy); `raw` was checked to be long enough."""
    dtype = _element_dtype(storage.dtype)
    if big_endian:
        dtype = dtype.newbyteorder(">")
    return np.frombuffer(raw, dtype=dtype, count=storage.numel + storage.view_offset)[storage.view_offset:]


def _tensor_array(ref: _TensorRef, elements: np.ndarray) -> np.ndarray:
    size, stride = ref.size, ref.stride
    count = 1
    for d in size:
        count *= d
    if count == 0:
        return np.zeros(size, elements.dtype)
    if count > len(elements) and count * elements.itemsize > _MAX_BROADCAST_BYTES:
        # stride-0 axes let a few stored elements stand for a huge tensor; the copy below would materialise it
        raise ValueError(f"tensor of size {size} would expand {len(elements)} stored elements to {count}")
    last = ref.offset + sum((d - 1) * s for d, s in zip(size, stride))
    if last >= len(elements):
        raise ValueError(
            f"tensor of size {size}, stride {stride} at offset {ref.offset} reaches element {last} of a "
            f"{len(elements)}-element storage"
        )
    contiguous = all(s == expected for s, expected, d in zip(stride, _c_strides(size), size) if d != 1)
    if contiguous:
        # A plain view: tensors that share a storage (tied weights) share memory here too, as in torch.
        return elements[ref.offset:ref.offset + count].reshape(size)
    strided = np.lib.stride_tricks.as_strided(
        elements[ref.offset:], shape=size, strides=tuple(s * elements.itemsize for s in stride), writeable=False
    )
    return strided.copy()


def _c_strides(size):
    strides, step = [], 1
    for d in reversed(size):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _finish_dtype(array, storage_dtype, upcast_float16):
    if storage_dtype is _BF16:
        # bfloat16 is the top half of a float32: widen the bits, no rounding involved. (In place: `a << 16` would
        # turn a 0-d array into a numpy scalar.)
        widened = array.astype(np.uint32)
        widened <<= 16
        return widened.view(np.float32)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if upcast_float16 and array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def _materialize(state, storage_bytes, big_endian, upcast_float16):
    """name -> ndarray from the unpickled name -> _TensorRef mapping; storage_bytes(key, nbytes) returns the blob."""
    blobs = {}
    out = {}
    for name, ref in state.items():
        storage = ref.storage
        nbytes = (storage.view_offset + storage.numel) * _element_dtype(storage.dtype).itemsize
        if storage.key not in blobs:
            blobs[storage.key] = storage_bytes(storage.key, nbytes)
        elements = _storage_array(blobs[storage.key], storage, big_endian)
        try:
            array = _tensor_array(ref, elements)
        except ValueError as exc:
            raise ValueError(f"tensor {name!r}: {exc}") from None
        out[name] = _finish_dtype(array, storage.dtype, upcast_float16)
    return out


def _check_state_dict(obj, filename):
    """The top object must be name -> tensor; nested training checkpoints get a pointed error."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{filename} holds a {type(obj).__name__}, not a state dict (a mapping of parameter name to tensor)"
        )
    for nested in ("state_dict", "model", "module"):
        if isinstance(obj.get(nested), dict):
            raise CheckpointError(
                f"{filename} is a training checkpoint with the weights nested under {nested!r}; save "
                f"checkpoint[{nested!r}] on its own (a mapping of parameter name to tensor) and load that"
            )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, _TensorRef)]
    if bad:
        shown = ", ".join(repr(k) for k in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise CheckpointError(f"{filename} is not a state dict: entries {shown} are not name -> tensor")


# --------------------------------------------------------------------------------------------------------------------
# The two container formats.


_MAX_PICKLE_BYTES = 1 << 30  # a state dict's pickle is kilobytes; refuse to inflate a forged one


def _read_zip(path, filename, upcast_float16):
    archive_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{filename} is a zip file but not a torch checkpoint: expected one <folder>/data.pkl, found "
                f"{len(pickles)}"
            )
        top = pickles[0][: -len("data.pkl")]

        def read_member(member, nbytes):
            # Bounded reads: the sizes in a zip directory are claims, and a forged one must not allocate gigabytes.
            info = zf.getinfo(member)
            if info.compress_size > archive_size or info.file_size > _MAX_PICKLE_BYTES + nbytes:
                raise ValueError(f"record {member} claims {info.file_size} bytes, more than the file can hold")
            if info.file_size < nbytes:
                raise ValueError(f"storage record {member} has {info.file_size} bytes, its tensors need {nbytes}")
            with zf.open(info) as fh:
                # reading a whole member also checks its CRC
                return fh.read(nbytes if nbytes else -1)

        big_endian = False
        if top + "byteorder" in names:
            order = read_member(top + "byteorder", 0).strip()
            if order not in (b"little", b"big"):
                raise ValueError(f"unknown byteorder record {order[:20]!r}")
            big_endian = order == b"big"
        unpickler = _RestrictedUnpickler(io.BytesIO(read_member(pickles[0], 0)), filename)
        state = unpickler.load()
        _check_state_dict(state, filename)

        def storage_bytes(key, nbytes):
            member = f"{top}data/{key}"
            if member not in names:
                raise ValueError(f"storage record {member} is missing")
            return read_member(member, nbytes)

        return _materialize(state, storage_bytes, big_endian, upcast_float16)


def _read_legacy(path, filename, upcast_float16):
    with open(path, "rb") as f:
        # A read-only map serves both the pickles (mmap.read never returns more than the file holds, so forged
        # lengths cannot allocate) and the storages (zero-copy views, as for safetensors).
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def next_pickle(unpickler=None):
        return (unpickler or _RestrictedUnpickler(data, filename)).load()

    magic = next_pickle()
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{filename} is neither a zip nor a legacy torch checkpoint (no magic number)")
    protocol = next_pickle()
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointError(f"{filename} uses unsupported legacy torch protocol version {protocol!r:.40}")
    if not isinstance(next_pickle(), dict):
        raise ValueError("sys_info record is not a dict")
    unpickler = _RestrictedUnpickler(data, filename)
    state = next_pickle(unpickler)
    _check_state_dict(state, filename)
    keys = next_pickle()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("storage key list is malformed")

    # Storages follow in `keys` order, each an int64 element count then its bytes; walk them to find each start.
    blobs = {}
    pos = data.tell()
    for key in keys:
        if pos + 8 > len(data):
            raise ValueError(f"file ends before storage {key!r}")
        (count,) = struct.unpack_from("<q", data, pos)
        storage = unpickler.storages.get(key)
        if storage is None or count != storage.numel:
            raise ValueError(f"storage {key!r} has {count} elements on disk, the pickle says otherwise")
        nbytes = count * _element_dtype(storage.dtype).itemsize
        pos += 8
        if pos + nbytes > len(data):
            raise ValueError(f"storage {key!r} needs {nbytes} bytes, only {len(data) - pos} remain")
        blobs[key] = memoryview(data)[pos:pos + nbytes]
        pos += nbytes

    def storage_bytes(key, nbytes):
        if key not in blobs:
            raise ValueError(f"storage {key!r} is referenced but not stored")
        return blobs[key]

    # Legacy storages are always written little-endian, whatever the saving machine was.
    return _materialize(state, storage_bytes, False, upcast_float16)


def read_pytorch_bin(path, *, upcast_float16: bool = False) -> dict[str, np.ndarray]:
    """Load a torch.save'd state dict (zip or legacy format) as name -> ndarray, without torch and without
    executing any code from the file.

    dtypes: float32/float64/int*/uint8/bool keep their dtype; bfloat16 becomes float32 (exact); float16 stays
    float16 unless upcast_float16. Contiguous tensors come back as read-only views of the storage bytes (of a
    memory map for the legacy format), so tensors sharing a storage (tied weights) share memory as in torch;
    non-contiguous ones are copied into C order. Raises CheckpointError for anything that is not a plain, intact
    state dict (the message names the file).
    """
    path = os.fspath(path)
    filename = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot read {filename}: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"corrupt PyTorch checkpoint {filename}: the file is empty")
    try:
        if head.startswith(b"PK"):
            return _read_zip(path, filename, upcast_float16)
        if head[:1] == b"\x80":
            return _read_legacy(path, filename, upcast_float16)
        if zipfile.is_zipfile(path):  # a zip with something prepended
            return _read_zip(path, filename, upcast_float16)
        raise CheckpointError(f"{filename} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    except CheckpointError:
        raise
    except Exception as exc:  # any decoding failure of untrusted bytes means a damaged file
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise CheckpointError(f"corrupt or truncated PyTorch checkpoint {filename}: {detail:.300}") from exc
