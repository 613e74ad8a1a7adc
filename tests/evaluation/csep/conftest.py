"""Real CSEP data for the CSEP tests: pyCSEP's shipped Helmstetter et al. (2007) RELM California forecasts and the
ComCat Ridgecrest catalog (829 events, M2.5-5.5, 2019-07-06..13).

The real forecasts start at M4.95, so only 3 of the Ridgecrest events fall in their bins. For tests that need
many events in the bins, ``ridgecrest_pair`` keeps the real forecasts' cells around Ridgecrest
(-119..-116 E, 34.5..37 N: 750 cells) and extends them below M4.95 down to M2.45 with a Gutenberg-Richter law
(b = 1: each 0.1 lower bin has 10**0.1 times the rate of the bin above, starting from the real M4.95 bin).
That magnitude extension is synthetic and labelled so in the forecasts' names; cells, rates >= M4.95 and the
catalog are real.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geodl_hpc.evaluation.csep.forecast import GriddedForecast, bin_events, load_csep_ascii, to_pycsep
from tests.conftest import package_file

BOX = ((-119.0, 34.5), (-116.0, 37.0))
GR_B = 1.0
GR_M_MIN = 2.45


def forecast_file(name: str) -> Path:
    return package_file("csep", "artifacts", "ExampleForecasts", "GriddedForecasts", name)


@pytest.fixture(scope="session")
def helmstetter_path() -> Path:
    return forecast_file("helmstetter_et_al.hkj-fromXML.dat")


@pytest.fixture(scope="session")
def helmstetter(helmstetter_path: Path) -> GriddedForecast:
    return load_csep_ascii(helmstetter_path)


@pytest.fixture(scope="session")
def helmstetter_aftershock() -> GriddedForecast:
    return load_csep_ascii(forecast_file("helmstetter_et_al.hkj.aftershock-fromXML.dat"))


@pytest.fixture(scope="session")
def comcat(comcat_csv: Path) -> Any:
    from geodl_hpc.archive.catalog import read_catalog_table

    return read_catalog_table(comcat_csv)


def restrict(fc: GriddedForecast, box: tuple[tuple[float, float], tuple[float, float]] = BOX) -> GriddedForecast:
    """The forecast's cells whose lower-left corner lies in the lon/lat box."""
    (x0, y0), (x1, y1) = box
    o = fc.origins
    keep = (o[:, 0] >= x0) & (o[:, 0] < x1) & (o[:, 1] >= y0) & (o[:, 1] < y1)
    return GriddedForecast(fc.rates[keep], o[keep], fc.dh, fc.mag_edges, fc.start, fc.end, fc.name)


def gr_extend(fc: GriddedForecast, m_min: float = GR_M_MIN, b: float = GR_B) -> GriddedForecast:
    """Synthetic magnitude extension: bins from m_min up to the forecast's first bin, Gutenberg-Richter with b."""
    dm = round(float(fc.mag_edges[1] - fc.mag_edges[0]), 6)
    k = round((fc.mag_edges[0] - m_min) / dm)
    low = np.round(fc.mag_edges[0] - dm * np.arange(k, 0, -1), 6)
    extension = fc.rates[:, :1] * 10.0 ** (b * (fc.mag_edges[0] - low))[None, :]
    rates = np.hstack([extension, fc.rates])
    mags = np.concatenate([low, fc.mag_edges])
    name = f"{fc.name} + GR(b={b}) below M{fc.mag_edges[0]} (synthetic)"
    return GriddedForecast(rates, fc.origins, fc.dh, mags, fc.start, fc.end, name)


@dataclass(frozen=True)
class Pair:
    """Two forecasts on one grid, observed counts on it, and the same as pyCSEP objects."""

    a: GriddedForecast
    b: GriddedForecast
    counts: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    mag: np.ndarray
    csep_a: Any
    csep_b: Any
    catalog: Any


def pycsep_catalog(lon: np.ndarray, lat: np.ndarray, mag: np.ndarray, region: Any) -> Any:
    """A pyCSEP catalog of the events, filtered the way pyCSEP's tutorials do (region, then minimum magnitude)."""
    from csep.core.catalogs import CSEPCatalog

    n = len(lon)
    data = np.zeros(n, dtype=CSEPCatalog.dtype)
    data["id"] = [str(i).encode() for i in range(n)]
    data["origin_time"] = 1562371200000 + np.arange(n) * 1000
    data["longitude"], data["latitude"], data["magnitude"] = lon, lat, mag
    catalog = CSEPCatalog(data=data, name="events", region=region)
    catalog.filter_spatial(region)
    catalog.filter(f"magnitude >= {region.magnitudes[0]}")
    catalog.region = region
    return catalog


def make_pair(a: GriddedForecast, b: GriddedForecast, lon: np.ndarray, lat: np.ndarray, mag: np.ndarray) -> Pair:
    csep_a, csep_b = to_pycsep(a), to_pycsep(b)
    counts = bin_events(lon, lat, mag, a)
    return Pair(a, b, counts, lon, lat, mag, csep_a, csep_b, pycsep_catalog(lon, lat, mag, csep_a.region))


@pytest.fixture(scope="session")
def ridgecrest_pair(helmstetter: GriddedForecast, helmstetter_aftershock: GriddedForecast, comcat: Any) -> Pair:
    """Real Ridgecrest events on the (GR-extended, see module doc) Helmstetter forecasts around Ridgecrest."""
    a = gr_extend(restrict(helmstetter))
    b = gr_extend(restrict(helmstetter_aftershock))
    lon, lat, mag = (comcat[c].to_numpy(dtype=np.float64) for c in ("longitude", "latitude", "magnitude"))
    return make_pair(a, b, lon, lat, mag)


def poisson_events(fc: GriddedForecast, expected: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic events drawn from the forecast itself (Poisson counts of the rates scaled to ``expected`` events),
    placed at cell centres and bin lower edges + 0.05: a catalog the forecast should pass (uniform quantiles).
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(fc.rates * (expected / fc.event_count))
    cells, mags = np.nonzero(counts)
    reps = counts[cells, mags]
    cells, mags = np.repeat(cells, reps), np.repeat(mags, reps)
    lon = fc.origins[cells, 0] + fc.dh / 2
    lat = fc.origins[cells, 1] + fc.dh / 2
    return lon, lat, fc.mag_edges[mags] + 0.05


def scaled(fc: GriddedForecast, factor: float) -> GriddedForecast:
    return replace(fc, rates=fc.rates * factor)


@pytest.fixture(scope="session")
def consistent_pair(ridgecrest_pair: Pair) -> Pair:
    """Both forecasts scaled to a 60-event window and a synthetic catalog drawn from forecast a itself (seed 7),
    so that the quantiles are not all 0 or 1 (the real Ridgecrest sequence fails every test of a long-term
    forecast).
    """
    factor = 60.0 / ridgecrest_pair.a.event_count
    a, b = scaled(ridgecrest_pair.a, factor), scaled(ridgecrest_pair.b, factor)
    lon, lat, mag = poisson_events(a, 60.0, seed=7)
    return make_pair(a, b, lon, lat, mag)
