"""Nested block CV kernels on small synthetic rasters: pair models, inner maps without the outer fold, selection
that never looks at the outer fold, the spread summary and the selection record.

Synthetic data (labelled so): deposits drawn as Bernoulli(0.1 * signal^3) from a uniform random ``signal`` layer,
so a score equal to ``signal`` is informative and an independent uniform field is not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from geodl_hpc.evaluation.blockcv import EvaluationError, fold_map, make_folds
from geodl_hpc.evaluation.nested import (
    held_out_pairs,
    inner_map,
    nested_selection,
    select,
    selection_score,
    spread,
)
from geodl_hpc.evaluation.report import render_selection, render_spread, selection_summary, spread_summary

SHAPE = (60, 50)


def _synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.random(SHAPE)
    deposits = (rng.random(SHAPE) < 0.1 * signal**3).astype(float)
    fm = fold_map(make_folds(SHAPE, (5, 5), 5, seed=3), SHAPE)
    return signal, deposits, fm, signal > 0.3


def test_pairs_cover_every_inner_fold_once() -> None:
    pairs = held_out_pairs(5)
    assert len(pairs) == 10 == len(set(pairs))
    for k in range(5):  # outer k needs the models trained without {k, j} for the 4 other folds j
        assert sorted(next(iter(p - {k})) for p in pairs if k in p) == [j for j in range(5) if j != k]
    with pytest.raises(EvaluationError, match="at least 3 folds"):
        held_out_pairs(2)


def test_inner_map_takes_fold_j_from_the_model_without_k_and_j() -> None:
    _, _, fm, _ = _synthetic()
    pair_maps = {p: np.full(SHAPE, float(10 * min(p) + max(p))) for p in held_out_pairs(5)}
    m = inner_map(fm, 2, pair_maps)
    assert np.isnan(m[fm == 2]).all()
    for j in (0, 1, 3, 4):
        assert (m[fm == j] == 10 * min(2, j) + max(2, j)).all()
    del pair_maps[frozenset((2, 4))]
    with pytest.raises(EvaluationError, match=r"without folds \[2, 4\]"):
        inner_map(fm, 2, pair_maps)


def test_selection_never_looks_at_the_outer_fold() -> None:
    signal, deposits, fm, mask = _synthetic()
    noise = np.random.default_rng(9).random(SHAPE)
    calls: list[tuple[int, frozenset[int]]] = []

    def fit_map(c: int, held_out: frozenset[int]) -> np.ndarray:
        calls.append((c, held_out))
        if c == 0:  # honest candidate: the signal, blurred by noise everywhere
            return 0.6 * signal + 0.4 * noise
        # "leaky" candidate: perfect on fold 0 (as if it had seen fold 0's labels), noise on every other fold
        return np.where(fm == 0, deposits + 0.01 * noise, noise)

    result = nested_selection(fm, ["honest", "leaky"], fit_map, deposits, np.ones(SHAPE, bool), mask)
    # each model is asked for once: 10 pair models + 5 outer models per candidate
    assert len(calls) == len(set(calls)) == 2 * 15
    # outer fold 0's choice is made on folds 1-4 only, where the leaky candidate is noise
    assert result["chosen"][0] == 0
    assert result["inner"][0][0]["score"] > result["inner"][0][1]["score"]
    # the nested map of fold k is the chosen candidate's model trained without k
    k0 = fm == 0
    assert np.allclose(result["nested"][k0], (0.6 * signal + 0.4 * noise)[k0])
    assert np.allclose(result["plain"][1][k0], (deposits + 0.01 * noise)[k0])


def test_select_prefers_the_earliest_of_tied_scores_and_skips_nan() -> None:
    assert select([0.5, 0.7, 0.7]) == 1
    assert select([math.nan, 0.2]) == 1
    with pytest.raises(EvaluationError, match="no candidate"):
        select([math.nan])
    assert selection_score({"capture_top5pct": 0.6, "auc_within_greenstone": 0.7}) == pytest.approx(0.65)
    assert math.isnan(selection_score({"capture_top5pct": 0.6, "auc_within_greenstone": None}))


def test_spread_is_mean_and_sample_std() -> None:
    s = spread([0.5, 0.7, None, 0.6])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert spread([0.4])["std"] == 0.0 and spread([])["mean"] is None


def _metrics(top5: float, gs: float) -> dict[str, float]:
    return {"auc_blockcv": 0.9, "auc_within_greenstone": gs, "capture_top2pct": 0.2, "capture_top5pct": top5,
            "capture_top10pct": 0.8}  # fmt: skip


def test_spread_summary_pairs_the_cnn_with_the_best_baseline_per_seed() -> None:
    per_seed = {
        "cnn": [_metrics(0.62, 0.66), _metrics(0.58, 0.60)],
        "logistic": [_metrics(0.50, 0.55), _metrics(0.60, 0.52)],
        "gboost": [_metrics(0.55, 0.50), _metrics(0.40, 0.58)],
    }
    s = spread_summary([0, 1], per_seed)
    lead = s["cnn_minus_best_baseline"]["capture_top5pct"]
    assert lead["mean"] == pytest.approx(((0.62 - 0.55) + (0.58 - 0.60)) / 2)
    assert lead["cnn_ahead"] == 1
    assert s["targets"]["capture_top5pct"] == {"target": 0.6, "cnn_mean": pytest.approx(0.60), "met": True}
    assert s["targets"]["auc_within_greenstone"]["met"] is False
    text = render_spread({"spread": s})
    assert "| CNN | 0.900 ± 0.000 | 0.630 ± 0.042 |" in text and "not met" in text


def test_selection_summary_reads_the_record_and_checks_the_config(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    assert selection_summary("nested", str(record), {})["found"] is False
    hardneg = {"sampling.mask_negatives": 0.5}
    doc = {
        "criterion": "mean of x and y",
        "candidates": [{"name": "base", "overrides": {}}, {"name": "hardneg", "overrides": hardneg}],
        "summary": {
            "models": {"nested_cnn": {"auc_blockcv": {"mean": 0.95, "std": 0.01}}},
            "chosen_counts": {"hardneg": 5},
        },
        "final_choice": {"name": "hardneg", "overrides": hardneg, "rule": "best plain CV"},
    }
    record.write_text(json.dumps(doc))
    held = selection_summary("nested", str(record), {"sampling": {"mask_negatives": 0.5}})
    assert held["found"] and held["config_matches"] and held["candidates"] == ["base", "hardneg"]
    other = selection_summary("nested", str(record), {"sampling": {"mask_negatives": 0.0}})
    assert not other["config_matches"] and other["mismatched"] == ["sampling.mask_negatives"]
    text = render_selection({"selection": held})
    assert "CNN (nested selection) | 0.950 ± 0.010" in text and "holds them" in text
    assert "optimistic" in render_selection({"selection": selection_summary("fixed", None, {})})
