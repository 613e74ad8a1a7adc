"""Picking evaluation: one-to-one matching of picks, precision/recall/F1 and time residuals per phase, an STA/LTA
trigger baseline tuned on a validation split, and ObsPy's AR picker on the real RJOB local event.

The kernels (:func:`match_picks`, :func:`score_picks`) are pure numpy/scipy; ObsPy is imported where it is used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import InputDataError

if TYPE_CHECKING:
    import obspy

# ObsPy's own test of ar_pick (obspy/signal/tests/test_trigger.py::test_ar_pick): f1, f2, lta_p, sta_p, lta_s,
# sta_s, m_p, m_s, l_p, l_s for loc_RJOB20050801145719850.{z,n,e} at 200 Hz; it expects P 30.635 s, S ~31.165 s.
AR_PICK_RJOB = (1.0, 20.0, 1.0, 0.1, 4.0, 1.0, 2, 8, 0.1, 0.2)
RJOB_FILE = "loc_RJOB20050801145719850"
RJOB_RATE = 200.0
RJOB_START = "2005-08-01T14:57:19.850"  # from the file name


@dataclass(frozen=True)
class Picks:
    """A set of picks: station index, phase and time (seconds after a common start) per pick."""

    station: np.ndarray
    phase: np.ndarray
    time_s: np.ndarray

    @staticmethod
    def of(station: Iterable[int], phase: Iterable[str], time_s: Iterable[float]) -> Picks:
        return Picks(
            np.asarray(list(station), dtype=np.int64),
            np.asarray([str(p) for p in phase], dtype=object),
            np.asarray(list(time_s), dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.time_s)

    def select(self, station: int, phase: str) -> np.ndarray:
        return self.time_s[(self.station == station) & (self.phase == phase)]


@dataclass(frozen=True)
class PhaseScores:
    """Detection and timing scores of one phase (residual = predicted - true time of matched picks, seconds)."""

    phase: str
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    residual_mean_s: float
    residual_std_s: float
    residual_mae_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def match_picks(pred: np.ndarray, true: np.ndarray, tolerance_s: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of predicted to true times within ``tolerance_s``: index arrays ``(i_pred, i_true)``.

    The most pairs possible, and among those the smallest total |residual| (an assignment problem)."""
    from scipy.optimize import linear_sum_assignment

    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.size == 0 or true.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dist = np.abs(pred[:, None] - true[None, :])
    inside = dist <= tolerance_s
    big = 1.0 + float(tolerance_s) * (min(pred.size, true.size) + 1)  # any extra pair beats any residual sum
    cost = np.where(inside, dist, big)
    rows, cols = linear_sum_assignment(cost)
    keep = inside[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def score_picks(pred: Picks, true: Picks, tolerance_s: float, phases: Sequence[str] = ("P", "S")) -> dict[str, Any]:
    """Per phase: matched per station (one-to-one, within ``tolerance_s``), precision, recall, F1, residuals."""
    out: dict[str, Any] = {}
    stations = sorted(set(pred.station.tolist()) | set(true.station.tolist()))
    for phase in phases:
        residuals: list[np.ndarray] = []
        n_pred = n_true = tp = 0
        for s in stations:
            p, t = pred.select(s, phase), true.select(s, phase)
            i, j = match_picks(p, t, tolerance_s)
            residuals.append(p[i] - t[j])
            n_pred, n_true, tp = n_pred + p.size, n_true + t.size, tp + i.size
        r = np.concatenate(residuals) if residuals else np.zeros(0)
        precision, recall = _ratio(tp, n_pred), _ratio(tp, n_true)
        f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else math.nan
        out[phase] = PhaseScores(
            phase=phase,
            n_true=n_true,
            n_pred=n_pred,
            tp=tp,
            fp=n_pred - tp,
            fn=n_true - tp,
            precision=precision,
            recall=recall,
            f1=f1,
            residual_mean_s=float(r.mean()) if r.size else math.nan,
            residual_std_s=float(r.std()) if r.size else math.nan,
            residual_mae_s=float(np.abs(r).mean()) if r.size else math.nan,
        ).as_dict()
    return out


# ------------------------------------------------------------------------------------------------ archives


def archive_labels(path: Path) -> tuple[Picks, float, str]:
    """The labelled picks of a waveform archive (``pick_*`` arrays), its sampling rate and start time."""
    import zarr

    group: Any = zarr.open_group(str(path), mode="r")
    names = {name for name, _ in group.arrays()}
    attrs = dict(group.attrs)
    if not {"pick_station", "pick_phase", "pick_time_s"} <= names:
        raise InputDataError(f"{path}: has no pick labels (pick_station/phase/time_s); ingest it with --picks FILE")
    picks = Picks.of(group["pick_station"][...], group["pick_phase"][...], group["pick_time_s"][...])
    return picks, float(attrs["sampling_rate"]), str(attrs["starttime"])


def split_stations(path: Path, split: str) -> list[int] | None:
    """Indices of the stations whose ``split`` is ``split``; None when the archive has no ``split`` variable."""
    import zarr

    group: Any = zarr.open_group(str(path), mode="r")
    if "split" not in {name for name, _ in group.arrays()}:
        return None
    return [i for i, v in enumerate(group["split"][...]) if str(v) == split]


def subset(picks: Picks, stations: Sequence[int] | None) -> Picks:
    """The picks of ``stations`` (all picks for None)."""
    if stations is None:
        return picks
    keep = np.isin(picks.station, np.asarray(list(stations), dtype=np.int64))
    return Picks(picks.station[keep], picks.phase[keep], picks.time_s[keep])


def n_stations(path: Path) -> int:
    import zarr

    group: Any = zarr.open_group(str(path), mode="r")
    return int(group["data"].shape[0])


# ------------------------------------------------------------------------------------------------ STA/LTA


@dataclass(frozen=True)
class StaLta:
    """Classic STA/LTA trigger settings (seconds, ratios) and the causal band-pass applied first (Hz)."""

    sta_s: float = 0.5
    lta_s: float = 10.0
    on: float = 3.5
    off: float = 1.0
    freqmin: float = 1.0
    freqmax: float = 20.0


def bandpassed_vertical(
    path: Path, stations: Sequence[int], freqmin: float, freqmax: float
) -> tuple[list[np.ndarray], float]:
    """Band-passed (causal, 4 corners: a zero-phase filter would move onsets early) demeaned vertical traces.

    Evaluation splits are small (a trace per station in memory); annotation itself never loads whole traces."""
    import zarr
    from obspy.signal.filter import bandpass

    group: Any = zarr.open_group(str(path), mode="r")
    rate = float(group.attrs["sampling_rate"])
    channels = [str(c) for c in group["channel"][...]]
    z = channels.index("Z") if "Z" in channels else 0
    out = []
    for s in stations:
        x = np.asarray(group["data"][s, z, :], dtype=np.float64)
        x = x - x.mean()
        out.append(bandpass(x, freqmin, min(freqmax, 0.45 * rate), rate, corners=4, zerophase=False))
    return out, rate


def sta_lta_onsets(x: np.ndarray, rate: float, params: StaLta) -> np.ndarray:
    """Trigger-on times (s from the trace start) of ``classic_sta_lta`` + ``trigger_onset`` on a filtered trace."""
    from obspy.signal.trigger import classic_sta_lta, trigger_onset

    nsta, nlta = max(1, round(params.sta_s * rate)), max(2, round(params.lta_s * rate))
    if len(x) <= nlta:
        return np.zeros(0)
    cft = classic_sta_lta(x, nsta, nlta)
    cft[:nlta] = 0.0  # the LTA is not filled yet: ratios there are meaningless
    onsets = trigger_onset(cft, params.on, params.off)
    return np.array([on for on, _off in onsets], dtype=np.float64) / rate if len(onsets) else np.zeros(0)


def sta_lta_picks(traces: Sequence[np.ndarray], stations: Sequence[int], rate: float, params: StaLta) -> Picks:
    """STA/LTA onsets of each filtered vertical trace, labelled ``P`` (it is a first-arrival detector)."""
    station: list[int] = []
    times: list[float] = []
    for s, x in zip(stations, traces, strict=True):
        onsets = sta_lta_onsets(x, rate, params)
        station += [s] * len(onsets)
        times += onsets.tolist()
    return Picks.of(station, ["P"] * len(times), times)


DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "sta_s": (0.1, 0.2, 0.5),
    "lta_s": (1.0, 2.0, 5.0, 10.0),
    "on": (2.0, 3.0, 4.0, 6.0),
    "off": (0.5, 1.0),
}


def tune_sta_lta(
    validation: Path,
    tolerance_s: float,
    stations: Sequence[int] | None = None,
    grid: dict[str, tuple[float, ...]] | None = None,
    band: tuple[float, float] = (1.0, 20.0),
) -> tuple[StaLta, list[dict[str, Any]]]:
    """The grid point with the best P F1 on the validation stations (ties: first in grid order) and every trial."""
    grid = grid or DEFAULT_GRID
    stations = list(range(n_stations(validation))) if stations is None else list(stations)
    labels = subset(archive_labels(validation)[0], stations)
    traces, rate = bandpassed_vertical(validation, stations, *band)
    keys = list(grid)
    trials: list[dict[str, Any]] = []
    best: tuple[float, StaLta] | None = None
    for values in itertools.product(*(grid[k] for k in keys)):
        params = StaLta(**dict(zip(keys, values, strict=True)), freqmin=band[0], freqmax=band[1])
        if params.lta_s <= params.sta_s or params.off >= params.on:
            continue
        f1 = score_picks(sta_lta_picks(traces, stations, rate, params), labels, tolerance_s, ("P",))["P"]["f1"]
        f1 = 0.0 if math.isnan(f1) else f1
        trials.append({**asdict(params), "f1_P": f1})
        if best is None or f1 > best[0]:
            best = (f1, params)
    if best is None:
        raise InputDataError(f"{validation}: the STA/LTA grid has no valid point (need lta > sta and off < on)")
    return best[1], trials


# ------------------------------------------------------------------------------------------------ ours


def annotation_traces(out: Path, stations: Sequence[int], phases: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Each phase's probability trace of ``stations`` (evaluation splits are small; read once, re-picked often)."""
    import zarr

    group: Any = zarr.open_group(str(out), mode="r")
    classes = [str(c) for c in group["class"][...]]
    traces: dict[str, list[np.ndarray]] = {p: [] for p in phases}
    for s in stations:
        block = np.asarray(group["probabilities"][s])
        for p in phases:
            traces[p].append(block[classes.index(p)])
    return traces


def annotation_picks(
    traces: dict[str, list[np.ndarray]],
    stations: Sequence[int],
    thresholds: dict[str, float],
    distance: int,
    rate: float,
) -> Picks:
    """Picks re-extracted from probability traces at other thresholds (the annotation's local-maximum rule)."""
    from geodl_hpc.inference.annotate_kernels import local_peaks

    station: list[int] = []
    phase: list[str] = []
    times: list[float] = []
    for name, threshold in thresholds.items():
        for s, trace in zip(stations, traces[name], strict=True):
            found = local_peaks(trace, threshold, distance)
            station += [s] * len(found)
            phase += [name] * len(found)
            times += (found / rate).tolist()
    return Picks.of(station, phase, times)


def evaluate_annotation(
    archive: Path,
    out: Path,
    *,
    tolerance_s: float,
    min_separation_s: float,
    thresholds: dict[str, float],
    validation: Path | None = None,
    threshold_grid: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    sta_lta_grid: dict[str, tuple[float, ...]] | None = None,
) -> dict[str, Any]:
    """Scores on the held-out (test) stations: ours at the run's thresholds, ours with thresholds tuned on the
    validation stations, and the STA/LTA baseline tuned on the same validation stations (P only)."""
    labels, rate, _start = archive_labels(archive)
    test = split_stations(archive, "test")
    split_note = "split == 'test' stations" if test is not None else "all stations (archive has no split)"
    test = list(range(n_stations(archive))) if test is None else test
    val_path, val_stations = archive, split_stations(archive, "validation")
    if validation is not None:
        val_path, val_stations = Path(validation), split_stations(Path(validation), "validation")
    truth = subset(labels, test)
    distance = max(1, round(min_separation_s * rate))
    phases = list(thresholds)
    test_traces = annotation_traces(out, test, phases)
    result: dict[str, Any] = {
        "test": {"archive": str(archive), "stations": split_note, "n_stations": len(test)},
        "tolerance_s": tolerance_s,
        "ours": {
            "thresholds": thresholds,
            "scores": score_picks(
                annotation_picks(test_traces, test, thresholds, distance, rate), truth, tolerance_s, phases
            ),
        },
    }
    have_validation = validation is not None or val_stations is not None
    if have_validation:
        tuned: dict[str, float] = {}
        if val_path == archive:  # the annotation covers the validation stations too: tune our thresholds there
            assert val_stations is not None  # have_validation without a validation archive means a split exists
            val_truth = subset(labels, val_stations)
            val_traces = annotation_traces(out, val_stations, phases)
            for phase in phases:

                def f1_at(t: float, phase: str = phase) -> float:
                    picks = annotation_picks(val_traces, val_stations, {phase: t}, distance, rate)
                    return float(np.nan_to_num(score_picks(picks, val_truth, tolerance_s, (phase,))[phase]["f1"]))

                best = max(threshold_grid, key=f1_at)
                tuned[phase] = float(best)
            picks = annotation_picks(test_traces, test, tuned, distance, rate)
            result["ours_tuned"] = {"thresholds": tuned, "scores": score_picks(picks, truth, tolerance_s, phases)}
        params, trials = tune_sta_lta(val_path, tolerance_s, val_stations, sta_lta_grid)
        traces, _ = bandpassed_vertical(archive, test, params.freqmin, params.freqmax)
        baseline = sta_lta_picks(traces, test, rate, params)
        result["sta_lta"] = {
            "params": asdict(params),
            "tuned_on": f"{val_path} ({'all' if val_stations is None else len(val_stations)} stations)",
            "validation_f1_P": max(t["f1_P"] for t in trials),
            "grid_points": len(trials),
            "scores": score_picks(baseline, truth, tolerance_s, ("P",)),
        }
    return result


# ------------------------------------------------------------------------------------------------ RJOB


def rjob_stream() -> obspy.Stream:
    """ObsPy's real local event ``loc_RJOB20050801145719850.{z,n,e}`` (200 Hz, 60 s, ASCII) as a 3-C Stream."""
    import importlib.util

    import obspy

    spec = importlib.util.find_spec("obspy")
    if spec is None or spec.origin is None:
        raise InputDataError("obspy is not installed; the RJOB example ships with it")
    folder = Path(spec.origin).parent / "signal" / "tests" / "data"
    stream = obspy.Stream()
    for comp in "ZNE":
        path = folder / f"{RJOB_FILE}.{comp.lower()}"
        if not path.is_file():
            raise InputDataError(f"{path}: ObsPy's RJOB example is missing; reinstall obspy")
        data = np.loadtxt(path, dtype=np.float32)
        header = {"network": "BW", "station": "RJOB", "channel": f"EH{comp}", "sampling_rate": RJOB_RATE,
                  "starttime": obspy.UTCDateTime(RJOB_START)}  # fmt: skip
        stream.append(obspy.Trace(data=data, header=header))
    return stream


def ar_pick_rjob(stream: obspy.Stream | None = None) -> dict[str, float]:
    """ObsPy's AR picker on RJOB with the parameters of ObsPy's own test: P and S in seconds after the start."""
    from obspy.signal.trigger import ar_pick

    st = stream or rjob_stream()
    z, n, e = (st.select(component=c)[0].data.astype(np.float32) for c in "ZNE")
    p, s = ar_pick(z, n, e, float(st[0].stats.sampling_rate), *AR_PICK_RJOB)
    return {"P": float(p), "S": float(s)}


def rjob_comparison(model: Any, workdir: Path, *, threshold: float = 0.1, stride: int | None = None) -> dict[str, Any]:
    """Annotate the RJOB event with ``model`` and put its best P and S picks next to ObsPy's AR picker.

    The event is ingested at the picker's sampling rate (ObsPy's FFT resampling, 200 Hz -> model rate)."""
    from geodl_hpc.archive.waveforms import ingest_waveforms
    from geodl_hpc.inference.annotate import annotate, as_picker
    from geodl_hpc.inference.annotate_config import AnnotateJobConfig, PhaseThresholds

    picker = as_picker(model)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "rjob_event.mseed"
    stream = rjob_stream()
    stream.write(str(source), format="MSEED")
    archive = ingest_waveforms(
        workdir / "rjob_event.zarr", [source], sampling_rate=picker.sampling_rate, progress=False, overwrite=True
    )
    config = AnnotateJobConfig(
        archive=str(archive), output=str(workdir / "rjob_event.annotations.zarr"), stride=stride,
        threshold=PhaseThresholds(threshold, threshold),
        min_separation_s=0.2, progress=False, overwrite=True, quakeml=False,
    )  # fmt: skip
    result = annotate(picker, config)
    import zarr

    group: Any = zarr.open_group(result["output"], mode="r")
    phase = np.array([str(v) for v in group["pick_phase"][...]], dtype=object)
    times = np.asarray(group["pick_time_s"][...])
    prob = np.asarray(group["pick_probability"][...])
    ours: dict[str, Any] = {}
    for name in ("P", "S"):
        sel = np.flatnonzero(phase == name)
        if sel.size:
            best = sel[np.argmax(prob[sel])]
            ours[name] = {"time_s": float(times[best]), "probability": float(prob[best]), "n_picks": int(sel.size)}
        else:
            ours[name] = None
    trace = np.asarray(group["probabilities"][0])
    peaks = {name: float(np.nanmax(trace[i])) for i, name in enumerate(str(c) for c in group["class"][...])}
    return {
        "event": RJOB_FILE,
        "start": RJOB_START,
        "ours": ours,
        "ours_peak_probability": peaks,
        "ar_pick": ar_pick_rjob(stream),
        "obspy_test_expects": {"P": 30.635, "S": 31.165},
        "threshold": threshold,
    }
