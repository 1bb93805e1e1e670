"""read_pytorch_bin: torch.save'd state dicts (zip and legacy) read bit-exactly without torch, hostile or damaged
files refused with CheckpointError and never executed."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mobilebert_lite.converters.pytorch_bin import read_pytorch_bin
from mobilebert_lite.errors import CheckpointError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_hf import make_tiny_hf_model  # noqa: E402

FORMATS = ("zip", "legacy")


def save(obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


def hf_state_dict(dtype=None):
    """The tiny MobileBertForPreTraining state dict (decoder.weight tied to word_embeddings: one shared storage)."""
    model = make_tiny_hf_model("MobileBertForPreTraining")
    if dtype is not None:
        model = model.to(dtype)
    return model.state_dict()


def with_extras(sd):
    """Add the awkward cases on top of a real state dict."""
    sd = sd.copy()  # keeps the OrderedDict type and its _metadata attribute
    word = sd["mobilebert.embeddings.word_embeddings.weight"]
    # the old HF position_ids buffer: int64, expanded (stride 0 on the size-1 axis)
    sd["mobilebert.embeddings.position_ids"] = torch.arange(24).expand((1, -1))
    sd["extra.transposed_view"] = word.t()  # non-contiguous view sharing the embedding storage
    sd["extra.strided_slice"] = word[1::3, ::2]  # offset + strides into the same storage
    sd["extra.scalar"] = torch.tensor(2.5)
    sd["extra.empty"] = torch.zeros(0, 3)
    sd["extra.bool"] = torch.tensor([True, False, True])
    sd["extra.int32"] = torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32)
    sd["extra.int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["extra.uint8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["extra.float64"] = torch.tensor([1e-300, -3.5], dtype=torch.float64)
    sd["extra.int16"] = torch.tensor([-32768, 5], dtype=torch.int16)
    return sd


def expected_numpy(tensor, upcast_float16=False):
    t = tensor.detach()
    if t.dtype == torch.bfloat16 or (upcast_float16 and t.dtype == torch.float16):
        t = t.float()  # exact for both
    return t.contiguous().numpy()


def assert_bit_exact(arrays, sd, upcast_float16=False):
    assert list(arrays) == list(sd), "names or order differ"
    for name, tensor in sd.items():
        want = expected_numpy(tensor, upcast_float16)
        got = arrays[name]
        assert isinstance(got, np.ndarray), name
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape)
        assert np.ascontiguousarray(got).tobytes() == want.tobytes(), name


# --------------------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("fmt", FORMATS)
def test_hf_state_dict_bit_exact(tmp_path, fmt):
    sd = with_extras(hf_state_dict())
    arrays = read_pytorch_bin(save(sd, tmp_path / "pytorch_model.bin", fmt))
    assert_bit_exact(arrays, sd)
    assert arrays["mobilebert.embeddings.position_ids"].dtype == np.int64
    assert arrays["extra.scalar"].shape == ()
    # tied weights stay tied: both names view one buffer, as in torch
    word = arrays["mobilebert.embeddings.word_embeddings.weight"]
    assert np.shares_memory(word, arrays["cls.predictions.decoder.weight"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_float16(tmp_path, fmt):
    sd = hf_state_dict(torch.float16)
    path = save(sd, tmp_path / "half.bin", fmt)
    arrays = read_pytorch_bin(path)
    assert arrays["cls.seq_relationship.weight"].dtype == np.float16
    assert_bit_exact(arrays, sd)
    assert_bit_exact(read_pytorch_bin(path, upcast_float16=True), sd, upcast_float16=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_widened_to_float32(tmp_path, fmt):
    sd = hf_state_dict(torch.bfloat16)
    sd["extra.transposed"] = sd["cls.predictions.dense.weight"].t()
    sd["extra.scalar"] = torch.tensor(-1.5e-3, dtype=torch.bfloat16)
    arrays = read_pytorch_bin(save(sd, tmp_path / "bf16.bin", fmt))
    assert arrays["cls.predictions.bias"].dtype == np.float32
    assert_bit_exact(arrays, sd)


def test_parameters_saved_with_keep_vars(tmp_path):
    # state_dict(keep_vars=True) pickles nn.Parameter objects (torch._utils._rebuild_parameter)
    sd = make_tiny_hf_model("MobileBertForPreTraining").state_dict(keep_vars=True)
    assert_bit_exact(read_pytorch_bin(save(sd, tmp_path / "params.bin", "zip")), sd)


def test_plain_dict_and_any_top_folder_name(tmp_path):
    sd = {"a": torch.arange(6.0).reshape(2, 3)}
    path = save(sd, tmp_path / "some_other_name.pt", "zip")
    with zipfile.ZipFile(path) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"some_other_name"}
    assert_bit_exact(read_pytorch_bin(str(path)), sd)


def test_big_endian_zip(tmp_path):
    sd = {"f": torch.tensor([[1.5, -2.0], [3.25, 1e-8]]), "i": torch.tensor([1, -2, 2**40])}
    path = save(sd, tmp_path / "le.bin", "zip")
    # rewrite as a big-endian machine would have saved it: byteorder record + byte-swapped storages
    swapped = tmp_path / "be.bin"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(swapped, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                key = info.filename.rsplit("/", 1)[1]
                dtype = {"0": "<f4", "1": "<i8"}[key]
                data = np.frombuffer(data, dtype).byteswap().tobytes()
            dst.writestr(info, data)
    assert_bit_exact(read_pytorch_bin(swapped), sd)


def test_reads_without_torch(tmp_path):
    path = save(with_extras(hf_state_dict()), tmp_path / "pytorch_model.bin", "zip")
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from mobilebert_lite.converters.pytorch_bin import read_pytorch_bin\n"
        f"a = read_pytorch_bin({str(path)!r})\n"
        "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
        "print(len(a))\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == len(with_extras(hf_state_dict()))


# --------------------------------------------------------------------------------------------------------------
# hostile pickles: refused by name, never executed


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    return {
        "os.system": (os.system, (f"touch {marker}",)),
        "builtins.eval": (builtins.eval, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": (subprocess.Popen, (["touch", str(marker)],)),
        "builtins.exec": (builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
    }


def _torch_like_zip(path, pickle_bytes, top="archive"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/data.pkl", pickle_bytes)
        zf.writestr(f"{top}/byteorder", "little")
        zf.writestr(f"{top}/version", "3\n")
    return path


def _legacy_file(path, main_pickle_bytes, magic_bytes=None):
    buf = io.BytesIO()
    buf.write(magic_bytes if magic_bytes is not None else pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, buf, protocol=2)
    buf.write(main_pickle_bytes)
    pickle.dump([], buf, protocol=2)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "subprocess.Popen", "builtins.exec"])
@pytest.mark.parametrize("where", ["zip_top", "zip_nested", "legacy_main", "legacy_magic"])
def test_malicious_pickle_refused_and_not_run(tmp_path, target, where):
    marker = tmp_path / "pwned"
    payload = _Payload(*_payloads(marker)[target])
    # the payload either is the whole pickle or sits inside an otherwise plausible state dict
    obj = payload if where in ("zip_top", "legacy_magic") else {"weight": payload}
    data = pickle.dumps(obj, protocol=2)
    path = tmp_path / "pytorch_model.bin"
    if where.startswith("zip"):
        _torch_like_zip(path, data)
    elif where == "legacy_main":
        _legacy_file(path, data)
    else:
        _legacy_file(path, b"", magic_bytes=data)
    with pytest.raises(CheckpointError) as err:
        read_pytorch_bin(path)
    message = str(err.value)
    func_name = target.split(".")[1]
    assert message.startswith("refusing to load pytorch_model.bin: it references "), message
    assert f".{func_name}, which is not part of a tensor checkpoint" in message
    assert not marker.exists(), "the payload ran"


def test_payload_hidden_inside_tensor_arguments(tmp_path):
    # a real torch checkpoint whose pickle is edited so a tensor's backward_hooks slot calls posix.system
    marker = tmp_path / "pwned"
    path = save({"a": torch.ones(2)}, tmp_path / "pytorch_model.bin", "zip")
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    pkl_name = next(n for n in members if n.endswith("data.pkl"))
    evil = pickle.dumps(_Payload(os.system, (f"touch {marker}",)), protocol=2)[2:-1]  # no PROTO / STOP
    hooks = b"ccollections\nOrderedDict\n"
    assert hooks in members[pkl_name]
    members[pkl_name] = members[pkl_name].replace(hooks, evil + b"0" + hooks, 1)  # push payload, POP it
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"references (posix|os)\.system"):
        read_pytorch_bin(path)
    assert not marker.exists()


def test_other_globals_refused(tmp_path):
    # torch globals outside the allow-list (here: the tensor-subclass rebuild path) are refused too
    data = b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n."
    path = _torch_like_zip(tmp_path / "pytorch_model.bin", data)
    with pytest.raises(CheckpointError, match=r"torch\._tensor\._rebuild_from_type_v2, which is not part"):
        read_pytorch_bin(path)


# --------------------------------------------------------------------------------------------------------------
# not a state dict


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"state_dict": {"a": 1}}, r"nested under 'state_dict'"),
        ({"model": {"a": 2}, "epoch": 3}, r"nested under 'model'"),
        ([1, 2], r"holds a list, not a state dict"),
        ({"a": 1}, r"entries 'a' are not name -> tensor"),
    ],
)
def test_not_a_state_dict(tmp_path, obj, match):
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = {"state_dict": {"w": torch.ones(2)}}
    if isinstance(obj, dict) and "model" in obj:
        obj = {"model": {"w": torch.ones(2)}, "epoch": 3}
    for fmt in FORMATS:
        path = save(obj, tmp_path / f"{fmt}.bin", fmt)
        with pytest.raises(CheckpointError, match=match):
            read_pytorch_bin(path)


# --------------------------------------------------------------------------------------------------------------
# damaged files


def _good_bytes(tmp_path, fmt):
    return save(with_extras(hf_state_dict()), tmp_path / f"good_{fmt}.bin", fmt).read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.6, 0.9, 0.999])
def test_truncated(tmp_path, fmt, fraction):
    data = _good_bytes(tmp_path, fmt)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        read_pytorch_bin(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_cut_of_the_head_fails_cleanly(tmp_path, fmt):
    # every prefix of the pickle section: CheckpointError, no other exception, no hang
    data = _good_bytes(tmp_path, fmt)
    path = tmp_path / "cut.bin"
    for cut in range(0, 700, 7):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            read_pytorch_bin(path)


def test_empty_random_and_missing(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.bin: the file is empty"):
        read_pytorch_bin(empty)
    rng = np.random.default_rng(0)
    for i in range(20):
        noise = tmp_path / f"noise{i}.bin"
        noise.write_bytes(rng.integers(0, 256, size=int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
        with pytest.raises(CheckpointError, match=f"noise{i}.bin"):
            read_pytorch_bin(noise)
    # random bytes after a pickle PROTO opcode, and after a zip magic
    for i, head in enumerate([b"\x80\x02", b"PK\x03\x04"]):
        noisy = tmp_path / f"head{i}.bin"
        noisy.write_bytes(head + rng.integers(0, 256, size=3000, dtype=np.uint8).tobytes())
        with pytest.raises(CheckpointError):
            read_pytorch_bin(noisy)
    with pytest.raises(CheckpointError, match="cannot read missing.bin"):
        read_pytorch_bin(tmp_path / "missing.bin")


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"not a torch checkpoint: expected one <folder>/data.pkl"):
        read_pytorch_bin(path)


def _rewrite_zip(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
    return dst


def test_zip_storage_missing_or_short(tmp_path):
    src = save({"a": torch.arange(10.0)}, tmp_path / "src.bin", "zip")
    missing = _rewrite_zip(src, tmp_path / "missing.bin", lambda n, d: None if "/data/" in n else d)
    with pytest.raises(CheckpointError, match=r"missing.bin: .*storage record src/data/0 is missing"):
        read_pytorch_bin(missing)
    short = _rewrite_zip(src, tmp_path / "short.bin", lambda n, d: d[:20] if "/data/" in n else d)
    with pytest.raises(CheckpointError, match=r"has 20 bytes, its tensors need 40"):
        read_pytorch_bin(short)


def test_zip_crc_mismatch(tmp_path):
    src = save({"a": torch.arange(10.0)}, tmp_path / "src.bin", "zip")
    data = bytearray(src.read_bytes())
    raw = np.arange(10.0, dtype=np.float32).tobytes()
    pos = bytes(data).index(raw)
    data[pos + 5] ^= 0xFF  # flip bits inside the stored tensor bytes; the zip CRC no longer matches
    src.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC"):
        read_pytorch_bin(src)


def test_tensor_outside_its_storage(tmp_path):
    src = save({"a": torch.arange(10.0)[2:]}, tmp_path / "src.bin", "zip")

    def grow(name, data):
        # claim size 9 for the 8-element view at offset 2 of a 10-element storage
        return data.replace(b"K\x08\x85", b"K\x09\x85", 1) if name.endswith("data.pkl") else data

    bad = _rewrite_zip(src, tmp_path / "bad.bin", grow)
    with pytest.raises(CheckpointError, match=r"tensor 'a': .*reaches element 10 of a 10-element storage"):
        read_pytorch_bin(bad)


def test_legacy_storage_count_mismatch(tmp_path):
    data = bytearray(save({"a": torch.arange(4.0)}, tmp_path / "src.bin", "legacy").read_bytes())
    count = (4).to_bytes(8, "little")
    pos = bytes(data).rindex(count + np.arange(4.0, dtype=np.float32).tobytes())
    data[pos:pos + 8] = (1 << 40).to_bytes(8, "little")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"bad.bin: .*storage '\d+' has 1099511627776 elements"):
        read_pytorch_bin(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_byte_flips_never_crash(tmp_path, fmt):
    # flipped bytes in the pickle/header region: either still a valid state dict or CheckpointError, nothing else
    data = _good_bytes(tmp_path, fmt)
    rng = np.random.default_rng(1)
    path = tmp_path / "flipped.bin"
    span = len(data) if fmt == "zip" else 6000
    for _ in range(300):
        mutated = bytearray(data)
        for pos in rng.integers(0, span, size=int(rng.integers(1, 4))):
            mutated[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(mutated))
        try:
            arrays = read_pytorch_bin(path)
        except CheckpointError:
            continue
        assert all(isinstance(a, np.ndarray) for a in arrays.values())


def _unicode(text):
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def test_build_cannot_alter_the_stand_ins(tmp_path):
    # BUILD with slot state = setattr(top of stack, 'dtype', 'x'): on the shared FloatStorage stand-in this would
    # poison every later load; on a tensor record it would bypass the offset/stride validation
    from mobilebert_lite.converters import pytorch_bin

    attacks = {
        "storage_type": b"\x80\x02ctorch\nFloatStorage\nN}" + _unicode("dtype") + _unicode("x") + b"s\x86b.",
        "rebuild_fn": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}" + _unicode("fn") + b"K\x01s\x86b.",
        "instance_dict": b"\x80\x02ccollections\nOrderedDict\n}" + _unicode("fn") + b"K\x01sb.",
    }
    for name, data in attacks.items():
        path = _torch_like_zip(tmp_path / f"{name}.bin", data)
        with pytest.raises(CheckpointError, match=f"{name}.bin"):
            read_pytorch_bin(path)
    assert pytorch_bin._SAFE_GLOBALS[("torch", "FloatStorage")].dtype == np.dtype("<f4")
    sd = {"a": torch.arange(3.0)}
    assert_bit_exact(read_pytorch_bin(save(sd, tmp_path / "after.bin", "zip")), sd)


def test_huge_memo_index_is_cheap(tmp_path):
    # LONG_BINPUT 2**31 - 1: the C unpickler would allocate a 16 GiB memo array
    path = _torch_like_zip(tmp_path / "memo.bin", b"\x80\x02}r\xff\xff\xff\x7f.")
    assert read_pytorch_bin(path) == {}


def test_broadcast_bomb_refused(tmp_path):
    path = save({"a": torch.tensor(1.0).expand(10**8)}, tmp_path / "bomb.bin", "zip")
    with pytest.raises(CheckpointError, match=r"would expand 1 stored elements to 100000000"):
        read_pytorch_bin(path)
    small = {"a": torch.tensor([1.0, 2.0]).expand(3, 2)}  # an ordinary broadcast still loads
    assert_bit_exact(read_pytorch_bin(save(small, tmp_path / "small.bin", "legacy")), small)
