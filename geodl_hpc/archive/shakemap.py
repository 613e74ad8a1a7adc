"""ShakeMap input files (event.xml, station-list XML, rupture text) read into a point table with provenance.

Macroseismic points (DYFI ZIP-code or geocoded intensities, reported MMI) keep their reported intensity;
instrumental stations get MMI from their peak horizontal PGV (else PGA) through the ground-motion-to-intensity
conversion of Worden et al. (2012, BSSA 102(1), 204-221, eq. 3 bilinear form), named in every output.
"""

from __future__ import annotations

import itertools
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geodl_hpc.errors import InputDataError

GMICE_NAME = "Worden et al. (2012) GMICE, eq. 3 (PGV preferred, else PGA)"
ATTRIBUTION = (
    "ShakeMap input data: U.S. Geological Survey (public domain), via the esi-shakelib 1.2.1 sdist test data; "
    "Did You Feel It? intensities (USGS)"
)
G_CM_S2 = 980.665
# Worden et al. (2012) eq. 3: MMI = c1 + c2 log10(Y) for log10(Y) <= t1, else c3 + c4 log10(Y);
# Y is PGA in cm/s^2 or PGV in cm/s (their Table 1, coefficients without the M, R terms).
WORDEN2012 = {
    "pga": {"c1": 1.78, "c2": 1.55, "c3": -1.60, "c4": 3.70, "t1": 1.57},
    "pgv": {"c1": 3.78, "c2": 1.47, "c3": 2.89, "c4": 3.16, "t1": 0.53},
}
MACROSEISMIC_NETS = {"CIIM", "DYFI", "INTENSITY", "MMI"}
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class ShakeEvent:
    """An earthquake as the ShakeMap event file gives it (depth km, positive down)."""

    id: str
    lat: float
    lon: float
    depth_km: float
    mag: float
    time: str
    place: str


def worden2012_mmi(value: np.ndarray, imt: str) -> np.ndarray:
    """MMI from PGA (cm/s^2) or PGV (cm/s) by Worden et al. (2012) eq. 3; NaN where the motion is missing."""
    c = WORDEN2012[imt]
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(np.asarray(value, dtype=float))
    mmi = np.where(lg <= c["t1"], c["c1"] + c["c2"] * lg, c["c3"] + c["c4"] * lg)
    return np.clip(mmi, 1.0, 10.0)


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputDataError(f"{path}: not a readable ShakeMap XML file ({exc}); check the file") from None


def _float(element: ET.Element, name: str, path: Path) -> float:
    text = element.get(name)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputDataError(f"{path}: <{element.tag}> attribute {name!r} is {text!r}, expected a number") from None


def read_event(path: Path) -> ShakeEvent:
    """The <earthquake> element of an event.xml or of a shakemap-data file."""
    root = _parse(path)
    quake = root if root.tag == "earthquake" else root.find("earthquake")
    if quake is None:
        raise InputDataError(f"{path}: no <earthquake> element; give a ShakeMap event.xml")
    time = quake.get("time")
    if time is None and quake.get("year"):
        parts = [int(float(quake.get(k, "0"))) for k in ("year", "month", "day", "hour", "minute", "second")]
        time = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*parts)
    return ShakeEvent(
        id=str(quake.get("id", path.parent.name)),
        lat=_float(quake, "lat", path),
        lon=_float(quake, "lon", path),
        depth_km=_float(quake, "depth", path),
        mag=_float(quake, "mag", path),
        time=str(time or ""),
        place=str(quake.get("locstring", "")),
    )


def _peak_horizontal(station: ET.Element, tags: tuple[str, ...]) -> float:
    best = math.nan
    for comp in station.findall("comp"):
        name = comp.get("name", "").upper()
        if name.endswith("Z") or name in {"UD", "UP", "VERTICAL"}:
            continue
        for tag in tags:
            node = comp.find(tag)
            if node is None:
                continue
            try:
                value = float(node.get("value", "nan"))
            except ValueError:
                continue
            flag = node.get("flag", "0")
            if np.isfinite(value) and value > 0 and flag in {"0", ""} and not value <= best:
                best = value
    return best


def read_stations(path: Path) -> pd.DataFrame:
    """One row per station: code, lat, lon, kind (macroseismic/instrumental), mmi, mmi_source, pga_g, pgv_cms."""
    root = _parse(path)
    rows: list[dict[str, Any]] = []
    for st in root.iter("station"):
        net = st.get("netid", "")
        text = " ".join((st.get("insttype", ""), st.get("source", ""))).lower()
        macro = net.upper() in MACROSEISMIC_NETS or "did you feel" in text or st.get("insttype") == "OBSERVED"
        pga = _peak_horizontal(st, ("acc", "pga"))
        pgv = _peak_horizontal(st, ("vel", "pgv"))
        reported = st.get("intensity")
        if macro:
            if reported is None:
                continue
            mmi, source = float(reported), "reported"
            pga = pgv = math.nan  # ShakeMap's derived motions for felt reports are not observations
        elif np.isfinite(pgv):
            mmi, source = float(worden2012_mmi(np.array(pgv), "pgv")), "Worden2012(PGV)"
        elif np.isfinite(pga):
            mmi, source = float(worden2012_mmi(np.array(pga * G_CM_S2 / 100.0), "pga")), "Worden2012(PGA)"
        else:
            continue
        rows.append(
            {
                "code": f"{net}.{st.get('code', '')}",
                "lat": _float(st, "lat", path),
                "lon": _float(st, "lon", path),
                "kind": "macroseismic" if macro else "instrumental",
                "network": net,
                "mmi": mmi,
                "mmi_source": source,
                "pga_g": pga / 100.0,
                "pgv_cms": pgv,
                "vs30": float(st.get("vs30", "nan")),
                "file": path.name,
            }
        )
    if not rows:
        raise InputDataError(f"{path}: no <station> with an intensity or a horizontal PGA/PGV; check the file")
    return pd.DataFrame(rows)


def read_rupture(path: Path) -> list[np.ndarray]:
    """Rupture quadrilaterals/polygons of a ShakeMap fault text file: a list of (n, 3) lon, lat, depth_km arrays."""
    polys: list[list[list[float]]] = [[]]
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            polys.append([])
            continue
        try:
            lon, lat, depth = (float(v) for v in line.split()[:3])
        except ValueError:
            raise InputDataError(f"{path}:{number}: expected 'lon lat depth_km', got {line!r}") from None
        polys[-1].append([lon, lat, depth])
    out = [np.asarray(p, dtype=float) for p in polys if len(p) >= 2]
    if not out:
        raise InputDataError(f"{path}: no rupture polygon (lines of 'lon lat depth_km' between '>' separators)")
    return out


def _local_km(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular projection about (lon0, lat0), km: adequate within a few hundred km of the source."""
    x = np.radians(lon - lon0) * EARTH_RADIUS_KM * math.cos(math.radians(lat0))
    y = np.radians(lat - lat0) * EARTH_RADIUS_KM
    return x, y


def _sample_polygon(poly: np.ndarray, n: int = 24) -> np.ndarray:
    """Points filling a rupture quadrilateral (bilinear over its first four corners) or along a trace."""
    if len(poly) >= 4:
        a, b, c, d = poly[:4]
        u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
        u, v = u.ravel()[:, None], v.ravel()[:, None]
        return (1 - v) * ((1 - u) * a + u * b) + v * ((1 - u) * d + u * c)
    t = np.linspace(0, 1, n)[:, None]
    return np.concatenate([(1 - t) * p + t * q for p, q in itertools.pairwise(poly)])


def distances(
    event: ShakeEvent, lon: np.ndarray, lat: np.ndarray, rupture: list[np.ndarray] | None
) -> dict[str, np.ndarray]:
    """Epicentral, hypocentral and rupture distance (km; Rrup = hypocentral where no rupture is given)."""
    x, y = _local_km(np.asarray(lon, float), np.asarray(lat, float), event.lon, event.lat)
    repi = np.hypot(x, y)
    rhypo = np.hypot(repi, event.depth_km)
    if not rupture:
        return {"repi_km": repi, "rhypo_km": rhypo, "rrup_km": rhypo}
    pts = np.concatenate([_sample_polygon(p) for p in rupture])
    px, py = _local_km(pts[:, 0], pts[:, 1], event.lon, event.lat)
    rrup = np.full(repi.shape, np.inf)
    for start in range(0, len(x), 4096):
        sl = slice(start, start + 4096)
        d2 = (x[sl, None] - px) ** 2 + (y[sl, None] - py) ** 2 + pts[:, 2] ** 2
        rrup[sl] = np.sqrt(d2.min(axis=1))
    return {"repi_km": repi, "rhypo_km": rhypo, "rrup_km": np.minimum(rrup, rhypo)}


# Each event of the fetched data set: folder, event file, station files, rupture file (or None).
EVENTS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "northridge": ("event.xml", ("dyfi_dat.xml", "hist_dat.xml"), "fault.txt"),  # hist: 1994 strong-motion peaks
    "calexico": ("event.xml", ("dyfi_dat.xml", "stationlist_dat.xml"), "fault.txt"),
    "wenchuan": ("event.xml", ("stationlist_dat.xml",), "fault.txt"),
    "gorkha": ("nepal_dat.xml", ("nepal_dat.xml",), None),
}


def read_event_points(folder: Path, name: str, *, max_repi_km: float = 600.0) -> tuple[ShakeEvent, pd.DataFrame]:
    """The event and its points with distances, within ``max_repi_km`` of the epicentre (ShakeMap-scale)."""
    if name not in EVENTS:
        raise InputDataError(f"unknown ShakeMap event {name!r}; known: {', '.join(EVENTS)}")
    event_file, station_files, rupture_file = EVENTS[name]
    event = read_event(folder / event_file)
    table = pd.concat([read_stations(folder / f) for f in station_files], ignore_index=True)
    rupture = read_rupture(folder / rupture_file) if rupture_file else None
    for key, value in distances(event, table["lon"].to_numpy(), table["lat"].to_numpy(), rupture).items():
        table[key] = value
    table = table[table["repi_km"] <= max_repi_km].reset_index(drop=True)
    table.insert(0, "event", name)
    table["mag"] = event.mag
    table["depth_km"] = event.depth_km
    return event, table


def load_events(
    names: list[str] | None = None, *, max_repi_km: float = 600.0
) -> tuple[dict[str, ShakeEvent], pd.DataFrame]:
    """The fetched ShakeMap events (data set ``shakelib``) as events and one point table."""
    from geodl_hpc.archive.sources import data_file

    events: dict[str, ShakeEvent] = {}
    tables = []
    for name in names or list(EVENTS):
        folder = data_file("shakelib", name, EVENTS[name][0]).parent
        events[name], table = read_event_points(folder, name, max_repi_km=max_repi_km)
        tables.append(table)
    return events, pd.concat(tables, ignore_index=True)


def write_points(out: Path, events: dict[str, ShakeEvent], table: pd.DataFrame) -> Path:
    """Write the point table as Parquet with the events, GMICE and USGS attribution in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geodl_hpc.archive.store import staged_output

    meta = {
        "kind": "intensity_points",
        "provenance": {"attribution": ATTRIBUTION, "licence": "public domain (USGS)", "gmice": GMICE_NAME},
        "events": {k: asdict(v) for k, v in events.items()},
    }
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"geodl": json.dumps(meta)})
    with staged_output(Path(out), overwrite=True) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")
    return Path(out)
