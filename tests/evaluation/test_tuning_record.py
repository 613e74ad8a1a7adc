"""benchmarks/prospectivity_tuning.py without training: candidate configs, the model cache key, and the record
summary (final choice, paired lead, targets) merged from per-fold-seed parts. Metric values are made up."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from geodl_hpc.config import read_yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tuning() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "prospectivity_tuning", REPO / "benchmarks" / "prospectivity_tuning.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _m(top5: float, gs: float) -> dict[str, float]:
    return {"auc_blockcv": 0.94, "auc_within_greenstone": gs, "capture_top2pct": 0.25, "capture_top5pct": top5,
            "capture_top10pct": 0.85}  # fmt: skip


def _part(seed: int, plain_hardneg: float, chosen: list[str]) -> dict[str, Any]:
    return {
        "candidates": [{"name": "base", "overrides": {"ensemble": 1}}, {"name": "hardneg", "overrides": {"x": 1}}],
        "config": "configs/prospectivity_murchison.yaml",
        "criterion": "mean of capture_top5pct and auc_within_greenstone",
        "setup": {"fold_seeds": [seed], "inner": "the outer training folds"},
        "per_seed": [
            {
                "fold_seed": seed,
                "deposits_per_fold": [3, 69, 86, 20, 77],
                "chosen": chosen,
                "nested_cnn": _m(0.55 + 0.01 * seed, 0.60),
                "plain": {"base": _m(0.55, 0.60), "hardneg": _m(plain_hardneg, 0.60)},
                "baselines": {"logistic": _m(0.53, 0.56), "gboost": _m(0.50, 0.53)},
            }
        ],
        "trainings": 45,
        "seconds": 100.0,
        "load_avg_1m": 3.0,
    }


def test_candidates_share_member_models_across_ensemble_sizes(tuning: ModuleType) -> None:
    base = read_yaml(REPO / "configs" / "prospectivity_murchison.yaml")
    base.pop("job")
    one = tuning.candidate_config(base, tuning.CANDIDATES["base"], 1)
    two = tuning.candidate_config(base, tuning.CANDIDATES["ens2"], 1)
    hard = tuning.candidate_config(base, tuning.CANDIDATES["hardneg"], 1)
    assert (one.ensemble, two.ensemble, one.cv.seed, one.cv.repeat_seeds) == (1, 2, 1, ())
    held = frozenset({0, 3})
    assert tuning._model_key(one, held) == tuning._model_key(two, held)  # ens2 reuses base's seed-0 members
    assert tuning._model_key(one, held) != tuning._model_key(hard, held)
    assert tuning._model_key(one, held) != tuning._model_key(one, frozenset({0, 2}))


def test_merged_record_summarises_every_fold_seed(tuning: ModuleType, tmp_path: Path) -> None:
    paths = []
    for seed, plain, chosen in ((0, 0.60, ["hardneg"] * 5), (1, 0.58, ["base", "hardneg", "base", "base", "base"])):
        path = tmp_path / f"rec{seed}.json"
        path.write_text(json.dumps(_part(seed, plain, chosen)))
        paths.append(path)
    record = tuning.merge(paths)
    s = record["summary"]
    assert record["setup"]["fold_seeds"] == [0, 1] and record["trainings"] == 90
    assert s["chosen_counts"] == {"base": 4, "hardneg": 6}
    assert s["models"]["nested_cnn"]["capture_top5pct"]["mean"] == pytest.approx(0.555)
    # paired per seed against the better baseline (logistic here): 0.55 - 0.53 and 0.56 - 0.53
    lead = s["cnn_minus_best_baseline"]["capture_top5pct"]
    assert lead["mean"] == pytest.approx(0.025) and lead["cnn_ahead"] == 2
    assert s["targets"]["auc_within_greenstone"] == {"target": 0.65, "cnn_mean": pytest.approx(0.60), "met": False}
    # final choice: best plain-CV selection score averaged over seeds (hardneg: (0.59 + 0.60 + 0.58 + 0.60) / 4)
    assert record["final_choice"]["name"] == "hardneg" and record["final_choice"]["overrides"] == {"x": 1}
    text = tuning.markdown(record)
    assert "| CNN (nested selection) | 0.940 ± 0.000 | 0.600 ± 0.000 |" in text and "not met" in text
