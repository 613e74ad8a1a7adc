"""Picking evaluation: optimal one-to-one matching, scores by hand, the STA/LTA baseline tuned on a validation
split of the synthetic-on-real archive (labelled synthetic events on real ObsPy noise), and ObsPy's AR picker on
the real RJOB event through our loader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from geodl_hpc.evaluation.picking import (
    Picks,
    ar_pick_rjob,
    archive_labels,
    bandpassed_vertical,
    evaluate_annotation,
    match_picks,
    rjob_stream,
    score_picks,
    split_stations,
    sta_lta_picks,
    subset,
    tune_sta_lta,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTHETIC events (Brune source, stochastic waveforms) on real noise: 40 validation and 40 test records."""
    from geodl_hpc.archive.synthetic_seismic import SyntheticSeismicConfig, build_synthetic_archive

    out = tmp_path_factory.mktemp("syn") / "syn.zarr"
    return build_synthetic_archive(out, SyntheticSeismicConfig(records=(2, 40, 40), record_samples=512, seed=5))


def test_matching_is_one_to_one_and_beats_greedy_nearest() -> None:
    # Greedy nearest-first would pair 0.3 with 0.5 (|dt| 0.2) and leave 0.75 unmatched; two pairs are possible.
    i, j = match_picks(np.array([0.3, 0.75]), np.array([0.0, 0.5]), tolerance_s=0.3)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 0), (1, 1)]
    i, j = match_picks(np.array([1.0, 1.05, 1.1]), np.array([1.02]), tolerance_s=0.5)
    assert i.tolist() == [0] and j.tolist() == [0]  # one true pick takes one prediction: the closest (0.02 s)
    i, j = match_picks(np.array([5.0]), np.array([1.0]), tolerance_s=0.5)
    assert i.size == 0 and j.size == 0


def test_scores_by_hand() -> None:
    true = Picks.of([0, 0, 1, 1], ["P", "S", "P", "S"], [1.0, 3.0, 2.0, 4.0])
    pred = Picks.of([0, 0, 1, 1, 1], ["P", "S", "P", "P", "S"], [1.1, 3.5, 2.0, 9.0, 4.2])
    scores = score_picks(pred, true, tolerance_s=0.3)
    p = scores["P"]
    assert (p["tp"], p["fp"], p["fn"]) == (2, 1, 0)
    assert p["precision"] == pytest.approx(2 / 3) and p["recall"] == 1.0 and p["f1"] == pytest.approx(0.8)
    assert p["residual_mean_s"] == pytest.approx(0.05) and p["residual_mae_s"] == pytest.approx(0.05)
    assert p["residual_std_s"] == pytest.approx(0.05)
    s = scores["S"]  # 3.5 is 0.5 s late: outside the tolerance, a false positive and a miss
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and s["residual_mean_s"] == pytest.approx(0.2)
    empty = score_picks(Picks.of([], [], []), true, 0.3)["P"]
    assert empty["recall"] == 0.0 and math.isnan(empty["precision"]) and math.isnan(empty["residual_mean_s"])


def test_sta_lta_tuned_on_validation_finds_strong_p_arrivals(synthetic: Path) -> None:
    val, test = split_stations(synthetic, "validation"), split_stations(synthetic, "test")
    assert val and test and not set(val) & set(test)
    params, trials = tune_sta_lta(synthetic, 0.5, val)
    best = max(t["f1_P"] for t in trials)
    assert best > 0.3 and len(trials) > 20
    assert all(t["lta_s"] > t["sta_s"] for t in trials)
    labels, rate, _ = archive_labels(synthetic)
    traces, _ = bandpassed_vertical(synthetic, test, params.freqmin, params.freqmax)
    scores = score_picks(sta_lta_picks(traces, test, rate, params), subset(labels, test), 0.5, ("P",))["P"]
    assert scores["n_true"] == int(sum(1 for s, ph in zip(labels.station, labels.phase, strict=True)
                                       if s in test and ph == "P"))  # fmt: skip
    # On the loudest test events (SNR >= 20) a tuned STA/LTA must find the P onset.
    import zarr

    snr = np.asarray(zarr.open_group(str(synthetic), mode="r")["snr"][...])
    loud = [s for s in test if snr[s] >= 20]
    traces_loud, _ = bandpassed_vertical(synthetic, loud, params.freqmin, params.freqmax)
    loud_scores = score_picks(sta_lta_picks(traces_loud, loud, rate, params), subset(labels, loud), 0.5, ("P",))
    assert loud and loud_scores["P"]["recall"] >= 0.7


def test_ar_picker_on_real_rjob_matches_obspys_own_test() -> None:
    stream = rjob_stream()
    assert len(stream) == 3 and stream[0].stats.sampling_rate == 200.0 and stream[0].stats.npts == 12000
    picks = ar_pick_rjob(stream)
    assert abs(picks["P"] - 30.635) < 1e-3
    assert abs(picks["S"] - 31.165) < 0.05


def test_evaluate_annotation_scores_test_split_against_tuned_baseline(synthetic: Path, tmp_path: Path) -> None:
    """End to end with an UNTRAINED tiny picker (weights from a fixed seed): checks plumbing, not skill."""
    import torch

    from geodl_hpc.inference.annotate import annotate, as_picker
    from geodl_hpc.inference.annotate_config import AnnotateJobConfig
    from geodl_hpc.models.picker import LoadedPicker, PhaseNet

    torch.manual_seed(0)
    picker = as_picker(LoadedPicker(PhaseNet(3, width=4, depth=3, kernel=5).eval(), 256, 50.0, ("Z", "N", "E")))
    out = tmp_path / "ann.zarr"
    annotate(picker, AnnotateJobConfig(archive=str(synthetic), output=str(out), progress=False, threads=1))
    grid = {"sta_s": (0.2,), "lta_s": (1.0, 2.0), "on": (3.0,), "off": (0.5,)}
    result = evaluate_annotation(
        synthetic, out, tolerance_s=0.5, min_separation_s=0.5, thresholds={"P": 0.3, "S": 0.3}, sta_lta_grid=grid
    )
    labels, _, _ = archive_labels(synthetic)
    test = split_stations(synthetic, "test")
    assert test is not None
    n_true_p = int(np.sum((labels.phase == "P") & np.isin(labels.station, test)))
    assert result["ours"]["scores"]["P"]["n_true"] == n_true_p == result["sta_lta"]["scores"]["P"]["n_true"]
    assert set(result["ours_tuned"]["thresholds"]) == {"P", "S"}
    assert result["sta_lta"]["grid_points"] == 2 and result["sta_lta"]["params"]["sta_s"] == 0.2
