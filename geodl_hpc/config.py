"""Typed job configs: YAML files validated into frozen dataclasses, with ``key.sub=value`` overrides.

Every problem is reported as one line naming the key path (``storage.chunk: expected int, got 'big'``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from geodl_hpc.archive.store import CodecSpec
from geodl_hpc.errors import ConfigError

T = TypeVar("T")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be positive, got {value}")


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """How archives are chunked and compressed."""

    chunk: int = 512
    codec: Literal["zstd", "blosc", "gzip", "none"] = "zstd"
    level: int = 3

    def __post_init__(self) -> None:
        _positive("storage.chunk", self.chunk)

    def codec_spec(self) -> CodecSpec:
        return CodecSpec(self.codec, self.level)


@dataclasses.dataclass(frozen=True)
class MurchisonConfig:
    """The built-in GSWA Murchison gold data rasterised onto a grid (EPSG:32750, metres)."""

    resolution: float = 500.0

    def __post_init__(self) -> None:
        _positive("murchison.resolution", self.resolution)


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """One batch job: which job runs, where it writes, and the options of each step it uses."""

    job: Literal["ingest_murchison"] = "ingest_murchison"
    output: str = "runs/demo"
    overwrite: bool = False
    storage: StorageConfig = dataclasses.field(default_factory=StorageConfig)
    murchison: MurchisonConfig = dataclasses.field(default_factory=MurchisonConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against a type hint; raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of options, got {value!r}")
        return from_dict(tp, value, key)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(c) for c in get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{key}: unsupported option type {_type_name(tp)}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types name their key path."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{path}: unknown key; known keys here: {known}")
        kwargs[key] = _convert(value, hints[key], path)
    for name, field in fields.items():
        missing = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if missing and name not in kwargs:
            path = f"{prefix}.{name}" if prefix else name
            raise ConfigError(f"{path}: missing value; set it in the config or as {path}=VALUE")
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-YAML form of a config dataclass (paths as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    result = plain(config)
    assert isinstance(result, dict)  # a dataclass always maps to a dict
    return result


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into a key path and a YAML-typed value (``chunk=256`` gives an int)."""
    if "=" not in text:
        raise ConfigError(f"{text}: an override must look like key.sub=value (e.g. storage.chunk=256)")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{text}: empty key in override; write key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.sub=value`` override set."""
    result: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data)) or {}
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, not a section; cannot set {text}")
            node = child
        node[parts[-1]] = value
    return result


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a one-line error for a missing file, malformed YAML or a non-mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; see configs/ for examples")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of options at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: Path | None, overrides: Sequence[str] = ()) -> T:
    """Load a YAML config into ``cls`` (defaults when ``path`` is None), apply overrides and validate."""
    data = read_yaml(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))


def load_job_config(path: Path | None, overrides: Sequence[str] = ()) -> JobConfig:
    """Load a job config file such as ``configs/demo.yaml``."""
    return load_config(JobConfig, path, overrides)


def dump_config(config: Any, path: Path) -> None:
    """Write the fully resolved config next to a job's outputs."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
