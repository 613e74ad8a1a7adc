"""Class legends: the codes, names and colours of a categorical layer, as they travel with an archive.

A class layer is a float32 layer of integer class codes (NaN = no class) whose attributes carry its legend in the
CF way (``flag_values`` and ``flag_meanings``, names joined by spaces with spaces inside a name as ``_``) plus
``flag_colors`` (``#rrggbb``, as ESA CCI land cover writes them) and a plain ``classes`` list of
``{value, name, color}`` for readers that do not parse CF. Class maps, their GeoTIFF colour table and the report
figures all take names and colours from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geodl_hpc.errors import ArchiveError, ConfigError

# A qualitative palette (matplotlib's tab10 then tab20's light tones) for legends without given colours.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
LEGEND_KEYS = ("flag_values", "flag_meanings", "flag_colors", "classes")


def _hex(color: str | Sequence[int]) -> str:
    if isinstance(color, str):
        text = color.strip().lower()
        if len(text) == 7 and text[0] == "#" and all(c in "0123456789abcdef" for c in text[1:]):
            return text
        raise ConfigError(f"classes: colour {color!r} is not #rrggbb")
    values = [int(v) for v in color][:3]
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ConfigError(f"classes: colour {list(color)!r} needs three values in 0..255")
    return "#{:02x}{:02x}{:02x}".format(*values)


@dataclass(frozen=True)
class ClassLegend:
    """Class codes (distinct integers >= 1; 0 is kept for "no class" in uint8 exports), names and colours."""

    values: tuple[int, ...]
    names: tuple[str, ...]
    colors: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("classes: a legend needs at least one class")
        if not len(self.values) == len(self.names) == len(self.colors):
            raise ConfigError("classes: values, names and colours must have the same length")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(f"classes: class values {list(self.values)} are not distinct")
        if min(self.values) < 1 or max(self.values) > 254:
            raise ConfigError(f"classes: class values must lie in 1..254 (0 and 255 mark no class), got {self.values}")
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise ConfigError(f"classes: class names {list(self.names)} must be distinct and non-empty")

    @classmethod
    def build(
        cls, values: Iterable[int], names: Iterable[str] | None = None, colors: Iterable[Any] | None = None
    ) -> ClassLegend:
        """A legend with default names (``class_<value>``) and palette colours where none are given."""
        vals = tuple(int(v) for v in values)
        nms = tuple(str(n) for n in names) if names is not None else tuple(f"class_{v}" for v in vals)
        cols = (
            tuple(_hex(c) for c in colors)
            if colors is not None
            else tuple(PALETTE[i % len(PALETTE)] for i in range(len(vals)))
        )
        return cls(vals, nms, cols)

    @classmethod
    def from_mapping(cls, classes: Mapping[int, str] | Sequence[Mapping[str, Any]]) -> ClassLegend:
        """From ``{value: name}`` or a list of ``{value, name, color?}`` (a config's ``classes`` section)."""
        if isinstance(classes, Mapping):
            items = sorted((int(k), str(v)) for k, v in classes.items())
            return cls.build([v for v, _ in items], [n for _, n in items])
        try:
            rows = [(int(c["value"]), str(c["name"]), c.get("color")) for c in classes]
        except (KeyError, TypeError, ValueError):
            raise ConfigError("classes: each class needs a value (integer) and a name") from None
        colors = [c for _, _, c in rows]
        return cls.build(
            [v for v, _, _ in rows],
            [n for _, n, _ in rows],
            None if any(c is None for c in colors) else colors,
        )

    @property
    def n_classes(self) -> int:
        return len(self.values)

    def index_of(self, codes: np.ndarray) -> np.ndarray:
        """0-based class index of each code (-1 for NaN or a code not in the legend)."""
        codes = np.asarray(codes, dtype=np.float64)
        lut_values = np.asarray(self.values, dtype=np.float64)
        order = np.argsort(lut_values)
        pos = np.clip(np.searchsorted(lut_values[order], codes), 0, len(order) - 1)
        found = np.isfinite(codes) & (lut_values[order][pos] == codes)
        return np.where(found, order[pos], -1).astype(np.int64)

    def rgb(self) -> np.ndarray:
        """``(n_classes, 3)`` uint8 colours."""
        return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in self.colors], dtype=np.uint8)

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL colour table entries ``{value: (r, g, b, 255)}`` (0: transparent "no class")."""
        table = {0: (0, 0, 0, 0)}
        for value, (r, g, b) in zip(self.values, self.rgb().tolist(), strict=True):
            table[value] = (r, g, b, 255)
        return table

    def attrs(self) -> dict[str, Any]:
        """The legend as layer attributes (CF flags + ``flag_colors`` + a ``classes`` list)."""
        return {
            "flag_values": list(self.values),
            "flag_meanings": " ".join(n.replace(" ", "_") for n in self.names),
            "flag_colors": " ".join(self.colors),
            "classes": [
                {"value": v, "name": n, "color": c}
                for v, n, c in zip(self.values, self.names, self.colors, strict=True)
            ],
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], where: str = "layer") -> ClassLegend:
        """The legend stored in a layer's attributes (``classes`` list, else the CF flags)."""
        rows = attrs.get("classes")
        if isinstance(rows, list) and rows:
            return cls.from_mapping(rows)
        values = attrs.get("flag_values")
        if values is None:
            raise ArchiveError(
                f"{where}: has no class legend (flag_values / classes attributes); it is not a class layer"
            )
        names = str(attrs.get("flag_meanings", "")).split() or None
        colors = str(attrs.get("flag_colors", "")).split() or None
        return cls.build([int(v) for v in values], names, colors)


def legend_of_layer(archive: Any, layer: str) -> ClassLegend:
    """The legend of class layer ``layer`` of the raster archive at path ``archive``."""
    import zarr

    group = zarr.open_group(str(archive), mode="r")
    if layer not in group:
        raise ArchiveError(f"{archive}: no layer {layer!r}")
    return ClassLegend.from_attrs(dict(group[layer].attrs), f"{archive}: layer {layer!r}")
