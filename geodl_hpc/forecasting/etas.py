"""Space-time ETAS: a branching simulator of synthetic catalogs and the expected rates it implies.

The model (Ogata 1998's space-time ETAS in the parametrisation of Nandan et al. 2017, JGR, used by Mizrahi,
Nandan & Wiemer 2021, SRL, doi:10.1785/0220200231): background events at ``mu`` per km² per day, uniform in
area or from a given density; each event of magnitude ``m`` triggers on average

    K * 10**(alpha * (m - m_ref))                                   direct aftershocks,

at time lags from the tapered Omori-Utsu law ``exp(-t/tau) / (t + c)**(1 + omega)`` (``p = 1 + omega``), at
distances from the power law ``(r² + D(m))**-(1 + rho)`` with ``D(m) = d * exp(gamma * (m - m_ref))``, and all
magnitudes follow Gutenberg-Richter with ``b`` above ``m_min``, truncated at ``m_max``. Nandan's kernel
``k0 exp(a (m - m_ref)) ... (r² + D(m))**-(1+rho)`` integrates to exactly that productivity with
``alpha = (a - gamma * rho) / ln 10`` and ``K = k0 * T * pi * d**-rho / rho`` (``T`` the Omori integral).

Every catalog made here is SYNTHETIC; :func:`write_etas_catalog` records the model, parameters and seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.grid import KM_PER_DEGREE, SpaceMagGrid, as_ms

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class ETASParams:
    """Space-time ETAS parameters (Nandan et al. 2017 form); times in days, distances in km.

    ``mu``: background events >= ``m_min`` per km² per day; ``k0``, ``a`` (natural-log productivity); ``c``,
    ``omega`` (Omori ``p = 1 + omega``), ``tau`` (exponential taper, ``inf`` for none); ``d`` (km²), ``gamma``,
    ``rho`` (spatial kernel); ``b``; ``m_ref`` (reference magnitude of productivity and ``D``), ``m_min``
    (smallest simulated magnitude), ``m_max`` (GR truncation).
    """

    mu: float
    k0: float
    a: float
    c: float
    omega: float
    tau: float
    d: float
    gamma: float
    rho: float
    b: float = 1.0
    m_ref: float = 3.55
    m_min: float = 3.55
    m_max: float = 8.5
    name: str = "custom"
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for key in ("mu", "k0", "c", "tau", "d", "rho", "b"):
            if not float(getattr(self, key)) > 0:
                raise ConfigError(f"etas.{key}: must be positive, got {getattr(self, key)}")
        if not math.isfinite(self.tau) and self.omega <= 0:
            raise ConfigError("etas.omega: without a taper (tau=inf) Omori needs omega > 0 (p > 1)")
        if not self.m_min < self.m_max:
            raise ConfigError(f"etas.m_min/m_max: {self.m_min} must be below {self.m_max}")

    @property
    def p(self) -> float:
        """Omori-Utsu exponent."""
        return 1.0 + self.omega

    @property
    def alpha(self) -> float:
        """Productivity exponent (base 10) of the space-integrated kernel."""
        return (self.a - self.gamma * self.rho) / math.log(10.0)

    @property
    def K(self) -> float:
        """Direct aftershocks of an ``m_ref`` event (time and space integrated)."""
        return self.k0 * omori_integral(self.c, self.omega, self.tau) * math.pi * self.d**-self.rho / self.rho

    def productivity(self, m: np.ndarray) -> np.ndarray:
        """Expected direct aftershocks of events of magnitude ``m``."""
        return self.K * 10.0 ** (self.alpha * (np.asarray(m, dtype=np.float64) - self.m_ref))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters plus the derived K, alpha, p and branching ratio."""
        data = asdict(self)
        data.update(
            {"tau": self.tau if math.isfinite(self.tau) else "inf", "K": self.K, "alpha": self.alpha, "p": self.p}
        )
        data["branching_ratio"] = branching_ratio(self)
        return data


def omori_integral(c: float, omega: float, tau: float) -> float:
    """``∫_0^∞ exp(-t/tau) (t + c)**-(1 + omega) dt`` (days**-omega)."""
    if not math.isfinite(tau):
        return c**-omega / omega
    from scipy.integrate import quad

    # substitute x = log(t + c): integrand exp(-(e^x - c)/tau) e^(-omega x)
    upper = math.log(c + 60.0 * tau)
    value, _ = quad(lambda x: math.exp(-(math.exp(x) - c) / tau - omega * x), math.log(c), upper, limit=400)
    return float(value)


def branching_ratio(params: ETASParams) -> float:
    """Mean direct aftershocks per event over the truncated GR law: the criticality (< 1 for a stable process)."""
    beta = params.b * math.log(10.0)
    k = params.alpha * math.log(10.0)
    span = params.m_max - params.m_min
    norm = 1.0 - math.exp(-beta * span)
    prod_min = params.K * 10.0 ** (params.alpha * (params.m_min - params.m_ref))
    if abs(beta - k) < 1e-12:
        return prod_min * beta * span / norm
    return prod_min * beta / (beta - k) * (1.0 - math.exp(-(beta - k) * span)) / norm


# Mizrahi, Nandan & Wiemer (2021, SRL, doi:10.1785/0220200231): ETAS fitted to the ComCat catalog of California,
# mc = 3.6 with 0.1 magnitude bins (so m_min = m_ref = 3.55), as shipped in the California example of their code
# (github.com/lmizrahi/etas, config/simulate_catalog_config.json): log10_mu=-7.5, log10_k0=-2.49, a=1.69,
# log10_c=-2.95, omega=-0.03, log10_tau=3.99, log10_d=-0.35, gamma=1.22, rho=0.51, beta=ln 10 (b=1).
# Derived here: p=0.97 with a ~27-year taper, alpha~0.464, K~0.481, branching ratio ~0.895 (GR truncated at 8.5).
CALIFORNIA_MIZRAHI_2021 = ETASParams(
    mu=10**-7.5,
    k0=10**-2.49,
    a=1.69,
    c=10**-2.95,
    omega=-0.03,
    tau=10**3.99,
    d=10**-0.35,
    gamma=1.22,
    rho=0.51,
    b=1.0,
    m_ref=3.55,
    m_min=3.55,
    m_max=8.5,
    name="california_mizrahi2021",
    reference="Mizrahi, Nandan & Wiemer (2021), SRL 92(4), doi:10.1785/0220200231; California, mc=3.6",
)

PARAMETER_SETS = {"california_mizrahi2021": CALIFORNIA_MIZRAHI_2021}

# California-like test region (lon_min, lat_min, lon_max, lat_max): the RELM testing region's bounding box, rounded.
CALIFORNIA_BBOX = (-125.0, 31.5, -113.0, 43.0)


class _OmoriSampler:
    """Inverse-CDF sampler of tapered Omori-Utsu lags from a fine table in log(t + c)."""

    def __init__(self, c: float, omega: float, tau: float, n: int = 20001) -> None:
        hi = c + (60.0 * tau if math.isfinite(tau) else c * 1e15)
        x = np.linspace(math.log(c), math.log(hi), n)
        taper = np.exp(-(np.exp(x) - c) / tau) if math.isfinite(tau) else 1.0
        dens = taper * np.exp(-omega * x)  # density in x = log(t + c)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
        self.c = c
        self.x = x
        self.cdf = cdf / cdf[-1]

    def cdf_at(self, t: np.ndarray) -> np.ndarray:
        """CDF of the lag ``t`` (days)."""
        return np.interp(np.log(np.asarray(t, dtype=np.float64) + self.c), self.x, self.cdf)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.exp(np.interp(rng.random(n), self.cdf, self.x)) - self.c


def gr_magnitudes(rng: np.random.Generator, n: int, b: float, m_min: float, m_max: float) -> np.ndarray:
    """``n`` magnitudes from Gutenberg-Richter with ``b`` on ``[m_min, m_max]`` (continuous)."""
    beta = b * math.log(10.0)
    u = rng.random(n)
    return m_min - np.log(1.0 - u * (1.0 - math.exp(-beta * (m_max - m_min)))) / beta


def _uniform_area(rng: np.random.Generator, n: int, bbox: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    lon_min, lat_min, lon_max, lat_max = bbox
    s0, s1 = math.sin(math.radians(lat_min)), math.sin(math.radians(lat_max))
    lat = np.degrees(np.arcsin(s0 + (s1 - s0) * rng.random(n)))
    return lon_min + (lon_max - lon_min) * rng.random(n), lat


def bbox_area_km2(bbox: Sequence[float]) -> float:
    """Area of a lon/lat box on the sphere (km²)."""
    lon_min, lat_min, lon_max, lat_max = bbox
    r = KM_PER_DEGREE * 180.0 / math.pi
    return r * r * math.radians(lon_max - lon_min) * (math.sin(math.radians(lat_max)) - math.sin(math.radians(lat_min)))


@dataclass
class SimulatedEvents:
    """Raw simulator output: days since the burn-in start, position, magnitude, parent (-1: background)."""

    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    m: np.ndarray
    parent: np.ndarray
    generation: np.ndarray
    n_children_drawn: np.ndarray  # direct aftershocks drawn per event, before any were cut at the end time


def simulate_events(
    params: ETASParams,
    bbox: Sequence[float],
    duration_days: float,
    rng: np.random.Generator,
    *,
    background: tuple[SpaceMagGrid, np.ndarray] | None = None,
    max_events: int = 5_000_000,
) -> SimulatedEvents:
    """Branching simulation over ``[0, duration_days)``: background in ``bbox``, then generation by generation.

    ``background=(grid, weights)`` draws background cells with probability ``weights`` (uniform inside a cell);
    otherwise uniform in area. Aftershocks may fall outside ``bbox`` and still trigger.
    """
    lon_min, lat_min, lon_max, lat_max = (float(v) for v in bbox)
    if not (lon_min < lon_max and lat_min < lat_max):
        raise ConfigError(f"etas region: bbox {tuple(bbox)} must be (lon_min, lat_min, lon_max, lat_max)")
    area = bbox_area_km2(bbox)
    n_bg = int(rng.poisson(params.mu * area * duration_days))
    if background is None:
        lon, lat = _uniform_area(rng, n_bg, bbox)
    else:
        grid, weights = background
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (grid.n_cells,) or not np.all(w >= 0) or w.sum() <= 0:
            raise ConfigError(f"etas background: weights must be ({grid.n_cells},) non-negative, not all zero")
        cells = rng.choice(grid.n_cells, size=n_bg, p=w / w.sum())
        lon = grid.origins[cells, 0] + grid.dh * rng.random(n_bg)
        lat = grid.origins[cells, 1] + grid.dh * rng.random(n_bg)
    t = np.sort(rng.random(n_bg) * duration_days)
    m = gr_magnitudes(rng, n_bg, params.b, params.m_min, params.m_max)
    ts, lons, lats, ms = [t], [lon], [lat], [m]
    parents, gens = [np.full(n_bg, -1, np.int64)], [np.zeros(n_bg, np.int64)]
    drawn: list[np.ndarray] = []
    omori = _OmoriSampler(params.c, params.omega, params.tau)
    offset, gen = 0, 0
    cur_t, cur_lon, cur_lat, cur_m = t, lon, lat, m
    while len(cur_t):
        n_kids = rng.poisson(params.productivity(cur_m))
        drawn.append(n_kids)
        idx = np.repeat(np.arange(len(cur_t)), n_kids)
        lag = omori.sample(rng, len(idx))
        kt = cur_t[idx] + lag
        keep = kt < duration_days
        idx, kt = idx[keep], kt[keep]
        pm = cur_m[idx]
        dd = params.d * np.exp(params.gamma * (pm - params.m_ref))
        r = np.sqrt(dd * ((1.0 - rng.random(len(idx))) ** (-1.0 / params.rho) - 1.0))
        phi = rng.random(len(idx)) * 2.0 * math.pi
        klat = cur_lat[idx] + r * np.cos(phi) / KM_PER_DEGREE
        klon = cur_lon[idx] + r * np.sin(phi) / (KM_PER_DEGREE * np.cos(np.radians(cur_lat[idx])))
        klat = np.clip(klat, -90.0, 90.0)
        km = gr_magnitudes(rng, len(idx), params.b, params.m_min, params.m_max)
        parents.append(offset + idx)
        offset += len(cur_t)
        gen += 1
        gens.append(np.full(len(idx), gen, np.int64))
        ts.append(kt)
        lons.append(klon)
        lats.append(klat)
        ms.append(km)
        if offset + len(idx) > max_events:
            raise ConfigError(f"etas: more than {max_events} events; shorten the run or check the branching ratio")
        cur_t, cur_lon, cur_lat, cur_m = kt, klon, klat, km
    drawn.append(np.zeros(0, np.int64))
    return SimulatedEvents(
        t=np.concatenate(ts),
        lon=np.concatenate(lons),
        lat=np.concatenate(lats),
        m=np.concatenate(ms),
        parent=np.concatenate(parents),
        generation=np.concatenate(gens),
        n_children_drawn=np.concatenate(drawn)[: sum(len(x) for x in ts)],
    )


def simulate_etas(
    params: ETASParams,
    bbox: Sequence[float],
    start: object,
    end: object,
    rng: np.random.Generator,
    *,
    burn_in_days: float = 36525.0,
    background: tuple[SpaceMagGrid, np.ndarray] | None = None,
) -> pd.DataFrame:
    """A SYNTHETIC catalog (contract columns of ``geodl_hpc.archive.catalog``) of events in ``bbox`` and
    ``[start, end)``, after ``burn_in_days`` of spin-up so the long Omori tails are already running.

    Depth is NaN (the model is 2-D); ``magnitude_type`` is ``"M(ETAS)"``; ``attrs["synthetic"]`` describes the run.
    """
    import pandas as pd

    from geodl_hpc.archive.catalog import COLUMNS

    t0 = as_ms(start)
    t1 = as_ms(end)
    span = (t1 - t0).astype(np.int64) / MS_PER_DAY
    if span <= 0:
        raise ConfigError(f"etas: end {t1} must be after start {t0}")
    ev = simulate_events(params, bbox, span + burn_in_days, rng, background=background)
    lon_min, lat_min, lon_max, lat_max = bbox
    day = ev.t - burn_in_days
    keep = (day >= 0) & (ev.lon >= lon_min) & (ev.lon < lon_max) & (ev.lat >= lat_min) & (ev.lat < lat_max)
    order = np.argsort(day[keep], kind="stable")
    ms = np.round(day[keep][order] * MS_PER_DAY).astype(np.int64)
    times = pd.to_datetime(t0.astype(np.int64) + ms, unit="ms", utc=True).as_unit("ns")
    n = len(ms)
    table = pd.DataFrame(
        {
            "time": times,
            "latitude": ev.lat[keep][order].astype(np.float64),
            "longitude": ev.lon[keep][order].astype(np.float64),
            "depth_km": np.full(n, np.nan),
            "magnitude": np.round(ev.m[keep][order], 4),
            "magnitude_type": np.full(n, "M(ETAS)", dtype=object),
            "event_id": np.array([f"etas{i:07d}" for i in range(n)], dtype=object),
        }
    )[list(COLUMNS)]
    table.attrs["synthetic"] = {
        "synthetic": True,
        "model": "space-time ETAS (Nandan et al. 2017 kernel), geodl_hpc.forecasting.etas",
        "params": params.to_dict(),
        "bbox": [float(v) for v in bbox],
        "start": str(t0),
        "end": str(t1),
        "burn_in_days": burn_in_days,
        "background": "uniform in area" if background is None else "given cell density",
    }
    return table


def write_etas_catalog(out: Path, table: pd.DataFrame, *, seed: int, overwrite: bool = False) -> Path:
    """Store a table from :func:`simulate_etas` as a catalog archive (Parquet if ``out`` ends in ``.parquet``,
    else Zarr) whose provenance says synthetic, the model, its parameters and the seed."""
    from geodl_hpc.archive.catalog import _write_parquet, _write_zarr
    from geodl_hpc.archive.store import provenance

    info = table.attrs.get("synthetic")
    if not isinstance(info, dict):
        raise ConfigError("write_etas_catalog: the table has no synthetic-run record; make it with simulate_etas")
    record = provenance([], chunks={"event": len(table)}, extra={"synthetic": {**info, "seed": int(seed)}})
    out = Path(out)
    body = table.copy()
    body.attrs = {}
    if out.suffix == ".parquet":
        _write_parquet(out, body, record, overwrite)
    else:
        _write_zarr(out, body, record, overwrite)
    return out


def _spread(
    lon: np.ndarray,
    lat: np.ndarray,
    m: np.ndarray,
    weight: np.ndarray,
    per_event: np.ndarray,
    params: ETASParams,
    grid: SpaceMagGrid,
    rng: np.random.Generator,
) -> np.ndarray:
    """Expected counts per cell (n_cells,) of aftershocks ``weight`` of events at ``lon, lat`` with magnitude
    ``m``, spread by ``per_event`` draws each from the spatial kernel (the kernel is far narrower than a cell
    near its peak, so evaluating it at cell centres would be wrong). Mass outside the grid is dropped."""
    idx = np.repeat(np.arange(len(lon)), per_event)
    dd = params.d * np.exp(params.gamma * (m[idx] - params.m_ref))
    r = np.sqrt(dd * ((1.0 - rng.random(len(idx))) ** (-1.0 / params.rho) - 1.0))
    phi = rng.random(len(idx)) * 2.0 * math.pi
    plat = lat[idx] + r * np.cos(phi) / KM_PER_DEGREE
    plon = lon[idx] + r * np.sin(phi) / (KM_PER_DEGREE * np.cos(np.radians(lat[idx])))
    cell = grid.cell_of(plon, plat)
    inside = cell >= 0
    w = (weight / np.maximum(per_event, 1))[idx][inside]
    return np.bincount(cell[inside], weights=w, minlength=grid.n_cells)


def _past_events(history: pd.DataFrame, params: ETASParams, w0: int) -> tuple[np.ndarray, ...]:
    """Lag to the window start (days), lon, lat, magnitude of events before ``w0`` (ms) above ``m_min``."""
    from geodl_hpc.forecasting.binning import event_times_ms

    t = event_times_ms(history).astype(np.int64)
    m = history["magnitude"].to_numpy(dtype=np.float64)
    keep = (t < w0) & (m >= params.m_min - 1e-9)
    lon = history["longitude"].to_numpy(dtype=np.float64)[keep]
    lat = history["latitude"].to_numpy(dtype=np.float64)[keep]
    return (w0 - t[keep]) / MS_PER_DAY, lon, lat, m[keep]


def _window_ms(window: tuple[object, object]) -> tuple[int, int]:
    w0 = int(as_ms(window[0]).astype(np.int64))
    w1 = int(as_ms(window[1]).astype(np.int64))
    if w1 <= w0:
        raise ConfigError(f"etas window: end {window[1]} must be after start {window[0]}")
    return w0, w1


def _by_magnitude(rate: np.ndarray, params: ETASParams, grid: SpaceMagGrid) -> np.ndarray:
    """Per-cell rates of events >= m_min -> (n_cells, n_mags) from the grid's first edge up, by GR."""
    from geodl_hpc.forecasting.gr import gr_fractions

    above = 10.0 ** (-params.b * max(grid.mc - params.m_min, 0.0))
    return np.outer(rate * above, gr_fractions(params.b, np.asarray(grid.mag_edges)))


def _history_rate(
    lag0: np.ndarray, lon: np.ndarray, lat: np.ndarray, m: np.ndarray, duration: float, params: ETASParams,
    grid: SpaceMagGrid, omori: _OmoriSampler, rng: np.random.Generator, n_points: int, budget: int,
) -> np.ndarray:  # fmt: skip
    """Background plus direct aftershocks of past events expected per cell in the window (events >= m_min)."""
    in_window = params.productivity(m) * (omori.cdf_at(lag0 + duration) - omori.cdf_at(lag0))
    active = np.flatnonzero(in_window > 1e-6 * max(float(in_window.sum()), 1e-300))
    rate = params.mu * grid.cell_area_km2() * duration
    if active.size:
        share = in_window[active] / in_window[active].sum()
        per_event = np.clip(np.round(budget * share), 16, n_points).astype(np.int64)
        rate = rate + _spread(lon[active], lat[active], m[active], in_window[active], per_event, params, grid, rng)
    return rate


def etas_expected_rates(
    history: pd.DataFrame,
    params: ETASParams,
    grid: SpaceMagGrid,
    window: tuple[object, object],
    *,
    n_points: int = 2000,
    budget: int = 200_000,
    seed: int = 0,
) -> np.ndarray:
    """Expected counts (n_cells, n_mags) in ``window = (start, end)`` from the ETAS intensity given the events of
    ``history`` before ``start`` (later events are never read).

    Background: ``mu`` x cell area x duration. Aftershocks: each past event's productivity x its Omori-Utsu mass
    inside the window, spread over cells by draws from its spatial kernel (about ``budget`` draws shared in
    proportion to the events' expected counts, 16 to ``n_points`` each; fixed ``seed``: deterministic).
    Events triggered inside the window are not included (no secondary triggering), so in an active sequence this
    is a lower bound (see :func:`etas_simulated_rates`). Magnitudes from GR with the params' ``b``.
    """
    w0, w1 = _window_ms(window)
    lag0, lon, lat, m = _past_events(history, params, w0)
    omori = _OmoriSampler(params.c, params.omega, params.tau)
    rng = np.random.default_rng(seed)
    rate = _history_rate(lag0, lon, lat, m, (w1 - w0) / MS_PER_DAY, params, grid, omori, rng, n_points, budget)
    return _by_magnitude(rate, params, grid)


def etas_simulated_rates(
    history: pd.DataFrame,
    params: ETASParams,
    grid: SpaceMagGrid,
    window: tuple[object, object],
    *,
    n_sims: int = 100,
    seed: int = 0,
    points_per_event: int = 64,
) -> np.ndarray:
    """Expected counts (n_cells, n_mags) in ``window`` including aftershocks triggered inside the window, from
    ``n_sims`` ETAS continuations of ``history`` (events before the window start only).

    Low-variance (Rao-Blackwellised) estimate: the expected count is the background plus the aftershocks of past
    events (:func:`etas_expected_rates`, exact in expectation) plus, averaged over the simulations, the expected
    in-window aftershocks ``productivity(m) x Omori mass until the window end`` of every event the simulation
    puts inside the window (background, aftershocks of past events, and theirs), spread over cells by draws
    from the spatial kernel. Counting the simulated events themselves instead would be far noisier.
    """
    if n_sims < 1:
        raise ConfigError(f"etas n_sims: must be at least 1, got {n_sims}")
    w0, w1 = _window_ms(window)
    duration = (w1 - w0) / MS_PER_DAY
    lag0, lon, lat, m = _past_events(history, params, w0)
    omori = _OmoriSampler(params.c, params.omega, params.tau)
    rng = np.random.default_rng(seed)
    base = _history_rate(lag0, lon, lat, m, duration, params, grid, omori, rng, 2000, 200_000)
    f0, f1 = omori.cdf_at(lag0), omori.cdf_at(lag0 + duration)
    expect = params.productivity(m) * (f1 - f0)
    area = grid.cell_area_km2()
    n_bg_mean = params.mu * float(area.sum()) * duration
    extra = np.zeros(grid.n_cells)

    def children(
        pt: np.ndarray, plon: np.ndarray, plat: np.ndarray, pm: np.ndarray, n: np.ndarray, lo: np.ndarray,
        hi: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """``n`` children per parent, lags with Omori CDF values uniform in ``[lo, hi)`` per parent."""
        idx = np.repeat(np.arange(len(pt)), n)
        u = lo[idx] + (hi[idx] - lo[idx]) * rng.random(len(idx))
        kt = pt[idx] + np.exp(np.interp(u, omori.cdf, omori.x)) - params.c
        dd = params.d * np.exp(params.gamma * (pm[idx] - params.m_ref))
        r = np.sqrt(dd * ((1.0 - rng.random(len(idx))) ** (-1.0 / params.rho) - 1.0))
        phi = rng.random(len(idx)) * 2.0 * math.pi
        klat = plat[idx] + r * np.cos(phi) / KM_PER_DEGREE
        klon = plon[idx] + r * np.sin(phi) / (KM_PER_DEGREE * np.cos(np.radians(plat[idx])))
        km = gr_magnitudes(rng, len(idx), params.b, params.m_min, params.m_max)
        return kt, klon, klat, km

    for _ in range(n_sims):
        n_kids = rng.poisson(expect)  # direct aftershocks of past events, times relative to the window start
        a = n_kids > 0
        kt, klon, klat, km = children(-lag0[a], lon[a], lat[a], m[a], n_kids[a], f0[a], f1[a])
        n_bg = int(rng.poisson(n_bg_mean))
        cells = rng.choice(grid.n_cells, size=n_bg, p=area / area.sum())
        pt = np.concatenate([kt, rng.random(n_bg) * duration])
        plon = np.concatenate([klon, grid.origins[cells, 0] + grid.dh * rng.random(n_bg)])
        plat = np.concatenate([klat, grid.origins[cells, 1] + grid.dh * rng.random(n_bg)])
        pm = np.concatenate([km, gr_magnitudes(rng, n_bg, params.b, params.m_min, params.m_max)])
        while len(pt):  # every in-window event: add its expected in-window aftershocks, then simulate them
            weight = params.productivity(pm) * omori.cdf_at(duration - pt)
            per_event = np.full(len(pt), points_per_event)
            extra += _spread(plon, plat, pm, weight, per_event, params, grid, rng)
            lo, hi = np.zeros(len(pt)), omori.cdf_at(duration - pt)
            pt, plon, plat, pm = children(pt, plon, plat, pm, rng.poisson(weight), lo, hi)
    return _by_magnitude(base + extra / n_sims, params, grid)
