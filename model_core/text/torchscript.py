"""Tensors out of a TorchScript archive (OpenAI's `ViT-B-32.pt`) without running anything in it.

`torch.jit.load` would execute the archive's code and `torch.load(weights_only=True)` refuses
TorchScript, yet OpenAI publishes CLIP only in that format. A TorchScript archive is a zip whose
`<root>/data.pkl` pickles the module tree (objects of `__torch__.*` classes holding their
attributes) and whose `<root>/data/<key>` records hold raw tensor storages. We unpickle data.pkl
with an allow-list: `__torch__` classes become inert records of their state, tensors become
`TensorRecord`s (where and how to read them), and storages are read only for the tensors a caller
asks for, so the vision tower of a 350 MB file is never touched.
"""
from __future__ import annotations

import ast
import collections
import io
import mmap
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class TensorRecord:
    """A tensor in the archive, described but not read: its storage record and view into it."""

    storage: str
    dtype: torch.dtype
    storage_numel: int
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: torch.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: _StorageType
    numel: int


class _ScriptObject:
    """An inert stand-in for a `__torch__.*` object: it only keeps what the pickle gave it."""

    qualname = "__torch__"

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Refused(Exception):
    """Raised inside the unpickler; turned into a ValueError that names the file."""


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, stride: Any, *_rest: Any) -> TensorRecord:
    """Stand-in for torch._utils._rebuild_tensor_v2: checks the view fits, reads nothing."""
    if not isinstance(storage, _StorageRef):
        raise _Refused(f"a tensor whose storage is {type(storage).__name__}, not a storage record")
    try:
        shape_t = tuple(int(s) for s in shape)
        stride_t = tuple(int(s) for s in stride)
        offset_i = int(offset)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"a malformed tensor view ({exc})") from exc
    if len(shape_t) != len(stride_t) or offset_i < 0 or min((*shape_t, *stride_t), default=0) < 0:
        raise _Refused(f"a malformed tensor view: shape {shape_t}, stride {stride_t}, offset {offset_i}")
    if 0 not in shape_t:
        last = offset_i + sum((n - 1) * s for n, s in zip(shape_t, stride_t, strict=True))
        if last >= storage.numel:
            raise _Refused(
                f"a tensor view (shape {shape_t}, stride {stride_t}, offset {offset_i}) past the end "
                f"of storage {storage.key!r} ({storage.numel} elements)"
            )
    return TensorRecord(storage.key, storage.storage_type.dtype, storage.numel, offset_i, shape_t, stride_t)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only records: every global outside the short allow-list is refused."""

    _ALLOWED: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._classes: dict[str, type[_ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self._classes:
                self._classes[qualname] = type(name, (_ScriptObject,), {"qualname": qualname})
            return self._classes[qualname]
        raise _Refused(f"the global {module}.{name}, which a weights file has no reason to use")

    def persistent_load(self, pid: Any) -> _StorageRef:
        ok = (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        )
        if not ok:
            raise _Refused(f"an unexpected persistent id {pid!r}")
        return _StorageRef(pid[2], pid[1], pid[4])


def _find_root(names: Iterable[str]) -> str | None:
    roots = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return roots[0] if len(roots) == 1 else None


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a zip laid out as TorchScript saves it: `<root>/data.pkl` beside `<root>/code/`."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    root = _find_root(names)
    return root is not None and (
        f"{root}/constants.pkl" in names or any(n.startswith(f"{root}/code/") for n in names)
    )


_MAX_DEPTH = 64  # real models nest a handful of levels; this only stops hostile recursion
_DECLARATION = re.compile(r"^\s+(__parameters__|__buffers__) = (\[.*\])\s*$", re.MULTILINE)


class TorchScriptArchive:
    """An open TorchScript archive: `records` names every parameter and buffer as the state dict does.

    Keys are those of `torch.jit.load(path).state_dict()`: a module's declared parameters and buffers
    (from the `__parameters__`/`__buffers__` lines of its class in `code/`, read as text), then its
    submodules, joined with dots.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TorchScript archive not found: {self.path}")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{self.path}: not a readable zip archive ({exc})") from exc
        try:
            self._names = set(self._zip.namelist())
            root = _find_root(self._names)
            if root is None:
                raise ModelError(f"{self.path}: no single <root>/data.pkl, so not a TorchScript archive")
            self.root = root
            self._check_byteorder()
            data = self._read(f"{root}/data.pkl")
            try:
                tree = _RestrictedUnpickler(data).load()
            except _Refused as exc:
                raise ModelError(f"{self.path}: data.pkl refused: it contains {exc}") from None
            except Exception as exc:  # a damaged pickle fails in many ways; all mean the same here
                raise ModelError(f"{self.path}: data.pkl is damaged ({type(exc).__name__}: {exc})") from exc
            if not isinstance(tree, _ScriptObject):
                raise ModelError(f"{self.path}: data.pkl holds a {type(tree).__name__}, not a module")
            self._mapped: mmap.mmap | None = None
            self._declared: dict[str, set[str] | None] = {}
            self.records: dict[str, TensorRecord] = {}
            self._walk(tree, "", [])
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> TorchScriptArchive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._mapped = None  # tensors made from the mapping keep it alive as long as they need it

    def _read(self, name: str) -> bytes:
        if name not in self._names:
            raise ModelError(f"{self.path}: record {name} is missing from the archive")
        try:
            return self._zip.read(name)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ModelError(f"{self.path}: record {name} is damaged ({exc})") from exc

    def _check_byteorder(self) -> None:
        name = f"{self.root}/byteorder"
        if name in self._names:
            order = self._read(name).decode("ascii", "replace").strip()
            if order != "little":
                raise ModelError(f"{self.path}: storages are {order!r}-endian; only little-endian is read")

    def _declared_tensors(self, qualname: str) -> set[str] | None:
        """Parameter and buffer names of a class, from its source text; None if the text isn't there."""
        if qualname in self._declared:
            return self._declared[qualname]
        module, _, cls = qualname.rpartition(".")
        source_name = f"{self.root}/code/{module.replace('.', '/')}.py"
        names: set[str] | None = None
        if source_name in self._names:
            source = self._read(source_name).decode("utf-8", "replace")
            block = rf"^class {re.escape(cls)}\(.*?(?=^class |\Z)"
            match = re.search(block, source, re.MULTILINE | re.DOTALL)
            if match:
                found = {kind: body for kind, body in _DECLARATION.findall(match.group(0))}
                if "__parameters__" in found:
                    names = set()
                    for body in found.values():
                        try:
                            names.update(str(n) for n in ast.literal_eval(body))
                        except (ValueError, SyntaxError) as exc:
                            raise ModelError(f"{self.path}: unreadable declaration in {source_name}") from exc
        self._declared[qualname] = names
        return names

    def _walk(self, obj: _ScriptObject, prefix: str, ancestors: list[int]) -> None:
        if id(obj) in ancestors:
            raise ModelError(f"{self.path}: module {prefix.rstrip('.')!r} contains itself")
        if len(ancestors) > _MAX_DEPTH:
            raise ModelError(f"{self.path}: modules nested deeper than {_MAX_DEPTH} levels at {prefix!r}")
        if not isinstance(obj.state, dict):
            return
        declared = self._declared_tensors(obj.qualname)
        children = []
        for name, value in obj.state.items():
            if isinstance(value, TensorRecord):
                if declared is None or name in declared:
                    self.records[prefix + str(name)] = value
            elif isinstance(value, _ScriptObject):
                children.append((str(name), value))
        for name, child in children:
            self._walk(child, f"{prefix}{name}.", [*ancestors, id(obj)])

    def load(self, keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Materialise the named tensors (all if None), reading each storage at most once."""
        wanted = list(self.records) if keys is None else list(keys)
        storages: dict[str, torch.Tensor] = {}
        out: dict[str, torch.Tensor] = {}
        for key in wanted:
            if key not in self.records:
                raise ModelError(f"{self.path}: no tensor named {key!r}")
            rec = self.records[key]
            if rec.storage not in storages:
                storages[rec.storage] = self._read_storage(rec)
            out[key] = torch.as_strided(storages[rec.storage], rec.shape, rec.stride, rec.offset)
        return out

    def _read_storage(self, rec: TensorRecord) -> torch.Tensor:
        name = f"{self.root}/data/{rec.storage}"
        itemsize = torch.empty((), dtype=rec.dtype).element_size()
        expected = rec.storage_numel * itemsize
        if name not in self._names:
            raise ModelError(f"{self.path}: storage record {name} is missing from the archive")
        info = self._zip.getinfo(name)
        if info.file_size != expected:
            raise ModelError(f"{self.path}: storage record {name} holds {info.file_size} bytes, expected {expected}")
        if info.compress_type == zipfile.ZIP_STORED:
            return self._map_storage(info, rec.dtype)
        try:
            buffer = torch.empty(expected, dtype=torch.uint8)  # not zero-filled, unlike bytearray
        except (RuntimeError, MemoryError) as exc:
            raise ModelError(f"{self.path}: storage record {name} claims {expected} bytes ({exc})") from exc
        try:
            with self._zip.open(name) as f:
                got = f.readinto(buffer.numpy())
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ModelError(f"{self.path}: storage record {name} is damaged ({exc})") from exc
        if got != expected:
            raise ModelError(f"{self.path}: storage record {name} is truncated ({got} of {expected} bytes)")
        return buffer.view(rec.dtype)


    def _map_storage(self, info: zipfile.ZipInfo, dtype: torch.dtype) -> torch.Tensor:
        """A stored (uncompressed) record as a tensor over the memory-mapped file: no copy, no read
        until used. TorchScript writes storages stored; the zip's CRC is not checked this way."""
        if self._mapped is None:
            with open(self.path, "rb") as f:  # copy-on-write: the tensors may be written, the file never is
                self._mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        header = self._mapped[info.header_offset:info.header_offset + 30]
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise ModelError(f"{self.path}: storage record {info.filename} has a damaged header")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_length + extra_length
        if start + info.file_size > len(self._mapped):
            raise ModelError(f"{self.path}: storage record {info.filename} is truncated")
        if info.file_size == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(self._mapped, dtype=dtype, count=info.file_size // dtype.itemsize, offset=start)


def read_torchscript_state_dict(
    path: str | Path, keep: Callable[[str], bool] | None = None
) -> dict[str, torch.Tensor]:
    """The archive's state dict (as torch.jit.load would name it), reading only keys `keep` accepts."""
    with TorchScriptArchive(path) as archive:
        return archive.load(k for k in archive.records if keep is None or keep(k))
