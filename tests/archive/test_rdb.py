"""The tolerant R serialization / lazy-load database reader, on hand-built bytes and on the real spatstat.data."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.archive import rdb
from geodl_hpc.archive.rdb import LazyLoadDB, RFormatError, RReference, parse_serialized, to_python

HEADER = b"X\n" + struct.pack(">iii", 3, 0x040200, 0x030500) + struct.pack(">i", 5) + b"UTF-8"


def i32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def flags(kind: int, *, attr: bool = False, tag: bool = False, obj: bool = False, levels: int = 0) -> bytes:
    return i32(kind | (obj << 8) | (attr << 9) | (tag << 10) | (levels << 12))


def char(text: str | None) -> bytes:
    if text is None:
        return flags(rdb.CHARSXP) + i32(-1)
    data = text.encode()
    return flags(rdb.CHARSXP, levels=8) + i32(len(data)) + data


def strs(*texts: str | None) -> bytes:
    return flags(rdb.STRSXP) + i32(len(texts)) + b"".join(char(t) for t in texts)


def reals(*values: float, attr: bool = False) -> bytes:
    return flags(rdb.REALSXP, attr=attr) + i32(len(values)) + struct.pack(f">{len(values)}d", *values)


def ints(*values: int, attr: bool = False) -> bytes:
    return flags(rdb.INTSXP, attr=attr) + i32(len(values)) + i32(*values)


def sym(name: str) -> bytes:
    return flags(rdb.SYMSXP) + char(name)


def attributes(*pairs: tuple[bytes, bytes]) -> bytes:
    """A tagged pairlist of (tag item, value item), NILVALUE-terminated."""
    out = b""
    for tag, value in pairs:
        out += flags(rdb.LISTSXP, tag=True) + tag + value
    return out + flags(rdb.NILVALUE_SXP)


def test_vectors_na_and_attributes() -> None:
    na_int = rdb.NA_INTEGER
    body = flags(rdb.VECSXP, attr=True) + i32(3)
    body += ints(1, na_int, 3)
    body += reals(1.5, float("nan"), 2.5)
    body += strs("a", None)
    body += attributes((sym("names"), strs("i", "r", "s")), (sym("class"), strs("myclass")))
    out = to_python(parse_serialized(HEADER + body))
    assert list(out) == ["i", "r", "s"]
    assert out.r_class == ["myclass"]
    np.testing.assert_array_equal(out["i"], [1.0, np.nan, 3.0])  # NA integer -> NaN
    assert np.isnan(out["r"][1]) and out["r"][2] == 2.5
    assert out["s"] == ["a", None]


def test_symbol_reference_matrix_and_factor() -> None:
    inner = ints(7, attr=True) + attributes((sym("names"), strs("a")))  # symbol `names` becomes reference 1
    body = flags(rdb.VECSXP, attr=True) + i32(1) + inner + attributes((i32(rdb.REFSXP | (1 << 8)), strs("x")))
    out = to_python(parse_serialized(HEADER + body))
    assert list(out) == ["x"] and out["x"].tolist() == [7]
    matrix = ints(1, 2, 3, 4, 5, 6, attr=True) + attributes((sym("dim"), ints(2, 3)))
    np.testing.assert_array_equal(to_python(parse_serialized(HEADER + matrix)), [[1, 3, 5], [2, 4, 6]])  # by column
    factor = ints(2, 1, 2, attr=True) + attributes((sym("levels"), strs("lo", "hi")), (sym("class"), strs("factor")))
    fac = to_python(parse_serialized(HEADER + factor))
    assert isinstance(fac, pd.Categorical) and list(fac) == ["hi", "lo", "hi"]


def test_data_frame_and_compact_sequence() -> None:
    info = flags(rdb.LISTSXP) + sym("compact_intseq") + flags(rdb.LISTSXP) + sym("base")
    info += flags(rdb.LISTSXP) + ints(13) + flags(rdb.NILVALUE_SXP)
    altrep = flags(rdb.ALTREP_SXP) + info + reals(4.0, 10.0, 1.0) + flags(rdb.NILVALUE_SXP)
    body = flags(rdb.VECSXP, attr=True, obj=True) + i32(2) + altrep + reals(0.5, 1.5, 2.5, 3.5)
    body += attributes((sym("names"), strs("id", "v")), (sym("class"), strs("data.frame")))
    frame = to_python(parse_serialized(HEADER + body))
    assert isinstance(frame, pd.DataFrame)
    assert frame["id"].tolist() == [10, 11, 12, 13] and frame["v"].tolist() == [0.5, 1.5, 2.5, 3.5]


def test_persistent_reference_without_resolver_is_a_placeholder() -> None:
    """R type 247 (what rdata 1.1.0 stops on): a named placeholder, and the rest of the object still reads."""
    persist = flags(rdb.PERSISTSXP) + i32(0, 1) + char("env::7")
    body = flags(rdb.VECSXP) + i32(3) + persist + reals(1.0) + i32(rdb.REFSXP | (1 << 8))
    out = to_python(parse_serialized(HEADER + body))
    assert out[0] == RReference("persistent", "env::7") and out[2] == out[0]
    assert out[1].tolist() == [1.0]


def test_bad_bytes_name_the_source() -> None:
    with pytest.raises(RFormatError, match=r"thing\.rds.*format"):
        parse_serialized(b"A\n" + HEADER[2:], "thing.rds")
    with pytest.raises(RFormatError, match=r"thing\.rds: unexpected end"):
        parse_serialized(HEADER + flags(rdb.REALSXP) + i32(3) + b"\0" * 8, "thing.rds")
    with pytest.raises(RFormatError, match="unknown R object type 99"):
        parse_serialized(HEADER + flags(99))


def test_lazy_load_db_resolves_references(tmp_path: Path) -> None:
    """A two-object database written the way makeLazyLoadDB writes one: a gzipped index, zlib blobs with a
    4-byte length, environments stored once under ``env::N``."""
    env_blob = HEADER + flags(rdb.VECSXP, attr=True) + i32(1)
    env_blob += flags(rdb.VECSXP, attr=True) + i32(1) + reals(42.0) + attributes((sym("names"), strs("answer")))
    env_blob += attributes((sym("names"), strs("bindings")))
    obj = HEADER + flags(rdb.VECSXP) + i32(2) + reals(3.0, 4.0)
    obj += flags(rdb.PERSISTSXP) + i32(0, 1) + char("env::1")
    blobs = [struct.pack(">i", len(b)) + zlib.compress(b) for b in (obj, env_blob)]
    (tmp_path / "Rdata.rdb").write_bytes(b"".join(blobs))

    def offsets(name: str, start: int, length: int) -> bytes:
        return flags(rdb.VECSXP, attr=True) + i32(1) + ints(start, length) + attributes((sym("names"), strs(name)))

    index = HEADER + flags(rdb.VECSXP, attr=True) + i32(3)
    index += offsets("thing", 0, len(blobs[0])) + offsets("env::1", len(blobs[0]), len(blobs[1])) + ints(1)
    index += attributes((sym("names"), strs("variables", "references", "compressed")))
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
    db = LazyLoadDB(tmp_path / "Rdata")
    assert db.names() == ["thing"]
    values, env = db.read("thing")
    assert values.tolist() == [3.0, 4.0]
    assert env["answer"].tolist() == [42.0]
    with pytest.raises(Exception, match="holds no object 'other'; it has thing"):
        db.read("other")


def test_real_copper_and_murchison(spatstat_rdata: Path) -> None:
    """The real spatstat.data database: copper (what rdata 1.1.0 fails on) and murchison, which must equal the
    built-in copy that was converted from the same package."""
    from geodl_hpc.archive.murchison import MURCHISON_DIR

    db = LazyLoadDB(spatstat_rdata)
    copper = db.read("copper")
    assert list(copper)[:3] == ["FullWindow", "Points", "Lines"]
    assert int(copper["Points"]["n"][0]) == 67 and len(copper["Points"]["x"]) == 67
    assert len(copper["Lines"]["ends"]) == 146 and list(copper["Lines"]["ends"]) == ["x0", "y0", "x1", "y1"]
    assert copper["FullWindow"]["xrange"].tolist() == [-0.335, 70.11]
    assert copper["FullWindow"]["units"]["singular"] == ["km"]
    murchison = db.read("murchison")
    gold = pd.read_csv(MURCHISON_DIR / "gold_deposits.csv")
    np.testing.assert_array_equal(murchison["gold"]["x"], gold["x"].to_numpy())
    faults = pd.read_csv(MURCHISON_DIR / "faults.csv")
    np.testing.assert_array_equal(murchison["faults"]["ends"].to_numpy(), faults[["x0", "y0", "x1", "y1"]].to_numpy())
