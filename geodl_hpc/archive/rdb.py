"""A tolerant reader of R's serialization format (XDR, versions 2 and 3) and of R lazy-load databases.

R packages ship their data sets as a lazy-load database: ``Rdata.rdx`` (a gzipped serialized index: object name ->
offset and length in ``Rdata.rdb``) and ``Rdata.rdb`` (one compressed serialization per object). Objects there may
point at *persistent references* (R type 247, ``PERSISTSXP``: environments stored once, under ``env::N``), which
``rdata`` 1.1.0 does not parse. This reader resolves them from the database's ``references`` index, reads
environments, closures and language objects as inert placeholders, and expands ALTREP compact sequences and
wrappers, so a data object (vectors, lists, data frames, spatstat ``ppp`` / ``psp`` / ``owin``) always comes back.

    read_rdb(prefix, name)   -> the object as Python values (see :func:`to_python`)
    parse_serialized(bytes)  -> the raw tree of :class:`RObject`
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.errors import InputDataError

# SEXP types (R's Rinternals.h) and serialization pseudo-types (serialize.c)
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP, SPECIALSXP, BUILTINSXP, CHARSXP = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)
LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP, VECSXP, EXPRSXP, BCODESXP = 10, 13, 14, 15, 16, 17, 19, 20, 21
EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 22, 23, 24, 25
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP = 255, 254, 253, 252, 251, 250
NAMESPACESXP, PACKAGESXP, PERSISTSXP, CLASSREFSXP, GENERICREFSXP, BCREPDEF, BCREPREF = 249, 248, 247, 246, 245, 244, 243
EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 242, 241, 240, 239, 238
NA_INTEGER = -(2**31)
_LOG = logging.getLogger(__name__)
_PAIRS = (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP)
_SPECIAL_ENVS = {
    GLOBALENV_SXP: "R_GlobalEnv",
    EMPTYENV_SXP: "R_EmptyEnv",
    BASEENV_SXP: "R_BaseEnv",
    BASENAMESPACE_SXP: "R_BaseNamespace",
    UNBOUNDVALUE_SXP: "R_UnboundValue",
    MISSINGARG_SXP: "R_MissingArg",
}


class RFormatError(InputDataError):
    """The bytes are not an R serialization this reader understands (names the file and the offset)."""


@dataclass(eq=False)
class RObject:
    """One node of a serialized R object: its SEXP ``kind``, ``value`` and attributes (name -> RObject)."""

    kind: int
    value: Any = None
    attributes: dict[str, RObject] = field(default_factory=dict)
    tag: str | None = None  # pairlist nodes: the element's name

    def attr(self, name: str) -> Any:
        """Attribute ``name`` as a Python value (None when absent)."""
        a = self.attributes.get(name)
        return None if a is None else to_python(a)


@dataclass(frozen=True)
class RReference:
    """An unresolved persistent reference (``PERSISTSXP``), a namespace, package or special environment."""

    kind: str
    name: str


class _Reader:
    """Recursive-descent reader over one serialization (``serialize.c``'s ``ReadItem``)."""

    def __init__(self, data: bytes, source: str, persistent: Callable[[list[str]], RObject] | None) -> None:
        self.data, self.pos, self.source = data, 0, source
        self.refs: list[RObject] = []
        self.persistent = persistent

    def fail(self, what: str) -> RFormatError:
        return RFormatError(f"{self.source}: {what} at byte {self.pos}; not an R serialization this reader knows")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"unexpected end of data (wanted {n} bytes)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        value: int = struct.unpack(">i", self.take(4))[0]
        return value

    def length(self) -> int:
        n = self.i32()
        if n == -1:  # long vector: two 32-bit halves
            hi, lo = self.i32(), self.i32()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        if n < 0:
            raise self.fail(f"negative length {n}")
        return n

    def header(self) -> None:
        fmt = self.take(2)
        if fmt != b"X\n":
            raise self.fail(f"format {fmt!r} (only the binary XDR format 'X' is supported)")
        version = self.i32()
        self.i32(), self.i32()  # writer's R version, minimal reader version
        if version == 3:
            self.take(self.i32())  # native encoding name
        elif version != 2:
            raise self.fail(f"serialization version {version}")

    def item(self) -> RObject:
        flags = self.i32()
        kind, levels = flags & 0xFF, flags >> 12
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == NILVALUE_SXP:
            return RObject(NILSXP)
        if kind in _SPECIAL_ENVS:
            return RObject(ENVSXP, RReference("special", _SPECIAL_ENVS[kind]))
        if kind == REFSXP:
            index = (flags >> 8) or self.i32()
            if not 0 < index <= len(self.refs):
                raise self.fail(f"reference {index} to an object not yet read ({len(self.refs)} known)")
            return self.refs[index - 1]
        if kind == PERSISTSXP:
            names = self.string_vector()
            obj = (
                self.persistent(names)
                if self.persistent
                else RObject(ENVSXP, RReference("persistent", ",".join(names)))
            )
            self.refs.append(obj)
            return obj
        if kind in (NAMESPACESXP, PACKAGESXP):
            obj = RObject(ENVSXP, RReference("namespace" if kind == NAMESPACESXP else "package",
                                             ":".join(self.string_vector())))  # fmt: skip
            self.refs.append(obj)
            return obj
        if kind == SYMSXP:
            obj = RObject(SYMSXP)
            self.refs.append(obj)  # placeholder first: R adds the symbol after reading its name
            obj.value = self.item().value
            return obj
        if kind == ENVSXP:
            env = RObject(ENVSXP, {})
            self.refs.append(env)
            self.i32()  # locked
            enclos, frame, hashtab, attrib = self.item(), self.item(), self.item(), self.item()
            bindings: dict[str, RObject] = {}
            for node in (frame, *_hash_chains(hashtab)):
                bindings.update(_pairlist_items(node))
            env.value = {"bindings": bindings, "enclos": enclos}
            env.attributes = _pairlist_items(attrib)
            return env
        if kind in _PAIRS:
            return self.pairlist(kind, has_attr or kind in (ATTRLANGSXP, ATTRLISTSXP), has_tag)
        if kind == ALTREP_SXP:
            return self.altrep()
        if kind in (EXTPTRSXP, WEAKREFSXP):
            obj = RObject(kind)
            self.refs.append(obj)
            if kind == EXTPTRSXP:
                self.item(), self.item()  # protected value, tag
        elif kind in (SPECIALSXP, BUILTINSXP):
            obj = RObject(kind, self.take(self.i32()).decode("latin-1"))
        elif kind == CHARSXP:
            n = self.i32()
            encoding = "latin-1" if levels & (1 << 2) and not levels & (1 << 3) else "utf-8"
            obj = RObject(CHARSXP, None if n == -1 else self.take(n).decode(encoding, errors="replace"))
        elif kind in (LGLSXP, INTSXP):
            n = self.length()
            obj = RObject(kind, np.frombuffer(self.take(4 * n), ">i4").astype(np.int32))
        elif kind == REALSXP:
            n = self.length()
            obj = RObject(kind, np.frombuffer(self.take(8 * n), ">f8").astype(np.float64))
        elif kind == CPLXSXP:
            n = self.length()
            pairs = np.frombuffer(self.take(16 * n), ">f8").astype(np.float64)
            obj = RObject(kind, pairs[0::2] + 1j * pairs[1::2])
        elif kind == RAWSXP:
            obj = RObject(kind, self.take(self.length()))
        elif kind in (STRSXP, VECSXP, EXPRSXP):
            n = self.length()
            obj = RObject(kind, [self.item() for _ in range(n)])
        elif kind == S4SXP:
            obj = RObject(kind)
        elif kind == BCODESXP:  # compiled function body: read past it (its source is in the closure anyway)
            reps: list[RObject | None] = [None] * self.i32()
            self.bytecode(reps)
            obj = RObject(BCODESXP)
        else:
            raise self.fail(f"unknown R object type {kind}")
        if has_attr:
            obj.attributes = _pairlist_items(self.item())
        return obj

    def bytecode(self, reps: list[RObject | None]) -> None:
        """``ReadBC1``: the code vector, then the constant pool (nested code and shared language cells)."""
        self.item()
        for _ in range(self.i32()):
            kind = self.i32()
            if kind == BCODESXP:
                self.bytecode(reps)
            elif kind in (LANGSXP, LISTSXP, BCREPDEF, BCREPREF, ATTRLANGSXP, ATTRLISTSXP):
                self.bytecode_lang(kind, reps)
            else:
                self.item()

    def bytecode_lang(self, kind: int, reps: list[RObject | None]) -> RObject:
        """``ReadBCLang``: a call or pairlist of the constant pool, cells possibly shared through ``reps``."""
        if kind == BCREPREF:
            index = self.i32()
            return reps[index] or RObject(NILSXP)
        if kind not in (BCREPDEF, LANGSXP, LISTSXP, ATTRLANGSXP, ATTRLISTSXP):
            return self.item()
        pos = self.i32() if kind == BCREPDEF else -1
        if kind == BCREPDEF:
            kind = self.i32()
        cell = RObject(LANGSXP if kind in (LANGSXP, ATTRLANGSXP) else LISTSXP)
        if pos >= 0:
            reps[pos] = cell
        if kind in (ATTRLANGSXP, ATTRLISTSXP):
            self.item()
        self.item()  # tag
        car = self.bytecode_lang(self.i32(), reps)
        cdr = self.bytecode_lang(self.i32(), reps)
        cell.value = [car, cdr]
        return cell

    def string_vector(self) -> list[str]:
        if self.i32() != 0:
            raise self.fail("persistent name vector with a non-zero header")
        return [str(self.item().value) for _ in range(self.i32())]

    def pairlist(self, kind: int, has_attr: bool, has_tag: bool) -> RObject:
        """A pairlist / call / closure: CAR, CDR chains read iteratively (long lists do not recurse)."""
        nodes: list[RObject] = []
        attributes: dict[str, RObject] = {}
        while True:
            attrib = self.item() if has_attr else None
            tag = self.item().value if has_tag else None
            car = self.item()
            if isinstance(tag, str):  # a tagged copy: the element may be a shared (referenced) object
                car = RObject(car.kind, car.value, car.attributes, tag)
            if attrib is not None and not nodes:
                attributes = _pairlist_items(attrib)
            nodes.append(car if kind in (LISTSXP, ATTRLISTSXP) else RObject(kind, car, tag=tag))
            flags = self.i32()
            nxt = flags & 0xFF
            if nxt != kind or kind not in (LISTSXP, ATTRLISTSXP):
                self.pos -= 4
                rest = self.item()
                if kind not in (LISTSXP, ATTRLISTSXP):
                    return RObject(kind, [car, rest], attributes, tag)
                if rest.kind != NILSXP:
                    nodes.append(rest)
                break
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        return RObject(LISTSXP, nodes, attributes)

    def altrep(self) -> RObject:
        info, state, attrib = self.item(), self.item(), self.item()
        cls = info.value[0].value if info.kind == LISTSXP and info.value else None
        obj = _expand_altrep(str(cls), state)
        obj.attributes = _pairlist_items(attrib)
        return obj


def _pairlist_items(node: RObject | None) -> dict[str, RObject]:
    """Tagged elements of a pairlist as name -> value (an attribute list, an environment frame)."""
    if node is None or node.kind != LISTSXP:
        return {}
    return {str(v.tag): v for v in node.value if v.tag is not None}


def _hash_chains(hashtab: RObject) -> list[RObject]:
    return [c for c in hashtab.value if c.kind == LISTSXP] if hashtab.kind == VECSXP else []


def _expand_altrep(cls: str, state: RObject) -> RObject:
    """The ordinary vector behind an ALTREP object (compact sequences, deferred strings, wrappers)."""
    if cls in ("compact_intseq", "compact_realseq"):
        n, start, step = (float(v) for v in np.asarray(state.value)[:3])
        values = start + step * np.arange(int(n))
        return RObject(INTSXP, values.astype(np.int32)) if cls == "compact_intseq" else RObject(REALSXP, values)
    if cls == "deferred_string":
        source = state.value[0] if state.kind == LISTSXP else state
        arr = np.asarray(source.value)
        text = [str(int(v)) if source.kind == INTSXP else repr(float(v)) for v in arr]
        return RObject(STRSXP, [RObject(CHARSXP, t) for t in text])
    if cls.startswith("wrap_"):
        return state.value[0] if state.kind == VECSXP else state
    raise RFormatError(f"ALTREP class {cls!r} is not supported (compact_*seq, deferred_string and wrap_* are)")


def parse_serialized(data: bytes, source: str = "<bytes>", persistent: Any = None) -> RObject:
    """The object tree of one R serialization (``X\\n`` header); ``persistent(names)`` resolves PERSISTSXP."""
    reader = _Reader(data, source, persistent)
    reader.header()
    return reader.item()


def to_python(obj: RObject) -> Any:
    """Plain Python values: numbers -> numpy arrays (NA integers -> NaN floats; ``dim`` reshaped column-major),
    strings -> lists, named lists -> dicts (``RList`` keeping class and attributes), data frames -> pandas,
    factors -> pandas Categorical; environments, functions and calls -> :class:`RReference` placeholders."""
    kind, value = obj.kind, obj.value
    if kind == NILSXP:
        return None
    if kind in (CHARSXP, SYMSXP):
        return value
    if kind in (LGLSXP, INTSXP, REALSXP, CPLXSXP):
        arr = np.asarray(value)
        if kind in (LGLSXP, INTSXP):
            na = arr == NA_INTEGER
            levels = obj.attributes.get("levels")
            if levels is not None and kind == INTSXP:
                import pandas as pd

                cats = [str(c) for c in to_python(levels)]
                return pd.Categorical.from_codes(np.where(na, -1, arr - 1), cats)
            if kind == LGLSXP:
                arr = arr.astype(bool) if not na.any() else np.where(na, np.nan, arr.astype(np.float64))
            elif na.any():
                arr = np.where(na, np.nan, arr.astype(np.float64))
        dim = obj.attributes.get("dim")
        if dim is not None:
            arr = np.asarray(arr).reshape([int(d) for d in np.asarray(dim.value)], order="F")
        return arr
    if kind == STRSXP:
        return [c.value for c in value]
    if kind == RAWSXP:
        return bytes(value)
    if kind in (VECSXP, EXPRSXP, LISTSXP):
        items = [to_python(v) for v in value]
        names = obj.attr("names") if kind != LISTSXP else [v.tag for v in value]
        cls = obj.attr("class") or []
        if "data.frame" in cls and names:
            import pandas as pd

            return pd.DataFrame({str(n): np.asarray(v) for n, v in zip(names, items, strict=True)})
        if names and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names):
            out = RList(zip(names, items, strict=True))
        else:
            return items
        out.r_class = list(cls)
        out.r_attributes = {k: to_python(v) for k, v in obj.attributes.items() if k not in ("names", "class")}
        return out
    if kind == ENVSXP and isinstance(value, dict):
        env = RList((k, to_python(v)) for k, v in value["bindings"].items())
        env.r_class = ["environment"]
        return env
    if kind == ENVSXP:
        return value
    return RReference("language" if kind in (LANGSXP, CLOSXP, PROMSXP, SYMSXP) else f"type {kind}", "")


class RList(dict[str, Any]):
    """A named R list as a dict, keeping the R ``class`` and its other attributes."""

    r_class: list[str]
    r_attributes: dict[str, Any]


def _decompress(blob: bytes, compressed: int, where: str) -> bytes:
    """One lazy-load blob: 4-byte big-endian length, then zlib (type 1) or a type byte + stream (types 2, 3)."""
    try:
        if compressed in (0, 1) or blob[4:5] not in (b"Z", b"2", b"X", b"0"):
            return zlib.decompress(blob[4:]) if compressed else blob[4:]
        body, kind = blob[5:], blob[4:5]
        if kind == b"Z":
            return zlib.decompress(body)
        if kind == b"2":
            return bz2.decompress(body)
        return lzma.decompress(body) if kind == b"X" else body
    except (zlib.error, OSError, lzma.LZMAError) as exc:
        raise RFormatError(f"{where}: corrupt compressed blob ({exc}); fetch the data set again") from None


class LazyLoadDB:
    """An R lazy-load database (``prefix.rdx`` + ``prefix.rdb``): names, and objects with references resolved."""

    def __init__(self, prefix: Path | str) -> None:
        self.prefix = Path(prefix)
        self.rdx, self.rdb = self.prefix.with_suffix(".rdx"), self.prefix.with_suffix(".rdb")
        for path in (self.rdx, self.rdb):
            if not path.exists():
                raise InputDataError(f"{path}: not found; an R lazy-load database needs both .rdx and .rdb")
        raw = self.rdx.read_bytes()
        try:
            raw = gzip.decompress(raw)
        except OSError:
            raw = zlib.decompress(raw[4:])
        index = parse_serialized(raw, str(self.rdx))
        items = {v.tag: v for v in index.value} if index.kind == LISTSXP else dict(
            zip(index.attr("names") or [], index.value, strict=True)
        )  # fmt: skip
        self.compressed = int(np.asarray(items["compressed"].value).ravel()[0]) if "compressed" in items else 1
        self.variables = self._offsets(items.get("variables"))
        self.references = self._offsets(items.get("references"))
        self._resolved: dict[str, RObject] = {}

    @staticmethod
    def _offsets(node: RObject | None) -> dict[str, tuple[int, int]]:
        if node is None or node.kind != VECSXP:
            return {}
        names = node.attr("names") or []
        return {str(n): (int(v.value[0]), int(v.value[1])) for n, v in zip(names, node.value, strict=True)}

    def names(self) -> list[str]:
        """The objects the database holds."""
        return sorted(self.variables)

    def _blob(self, offset: int, length: int, what: str) -> bytes:
        with self.rdb.open("rb") as f:
            f.seek(offset)
            blob = f.read(length)
        if len(blob) != length:
            raise RFormatError(f"{self.rdb}: {what} is cut short ({len(blob)} of {length} bytes); fetch it again")
        return _decompress(blob, self.compressed, f"{self.rdb} ({what})")

    def _persistent(self, names: list[str]) -> RObject:
        key = names[0] if names else ""
        if key in self._resolved:
            return self._resolved[key]
        if key not in self.references:
            return RObject(ENVSXP, RReference("persistent", key))
        placeholder = RObject(ENVSXP, {"bindings": {}, "enclos": RObject(NILSXP)})
        self._resolved[key] = placeholder  # environments may refer to themselves
        try:
            stored = parse_serialized(self._blob(*self.references[key], key), f"{self.rdb} ({key})", self._persistent)
        except RFormatError as exc:  # an environment is never data here: keep the object, note the reference
            _LOG.warning("%s: environment %s left unread (%s)", self.rdb, key, exc)
            placeholder.value = RReference("persistent", key)
            return placeholder
        # makeLazyLoadDB stores an environment as list(bindings=, enclos=, attributes=, isS4=, locked=)
        parts = dict(zip(stored.attr("names") or [], stored.value, strict=False)) if stored.kind == VECSXP else {}
        bindings = parts.get("bindings")
        if bindings is not None and bindings.kind == VECSXP:
            placeholder.value["bindings"] = dict(zip(bindings.attr("names") or [], bindings.value, strict=True))
        return placeholder

    def raw(self, name: str) -> RObject:
        """The object tree of ``name``."""
        if name not in self.variables:
            raise InputDataError(f"{self.rdb}: holds no object {name!r}; it has {', '.join(self.names())}")
        return parse_serialized(self._blob(*self.variables[name], name), f"{self.rdb} ({name})", self._persistent)

    def read(self, name: str) -> Any:
        """Object ``name`` as Python values (:func:`to_python`)."""
        return to_python(self.raw(name))


def read_rdb(prefix: Path | str, name: str) -> Any:
    """Object ``name`` of the lazy-load database ``prefix`` (``.../data/Rdata``) as Python values."""
    return LazyLoadDB(prefix).read(name)
