"""Block bootstrap kernels: the weighted metrics equal the plain metrics on duplicated data."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_hpc.evaluation.bootstrap import (
    auc_parts,
    block_index,
    metric_replicates,
    paired_differences,
    replicate_weights,
    weighted_auc,
)
from geodl_hpc.evaluation.metrics import prospectivity_metrics, roc_auc


@pytest.fixture
def maps() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(40, 30))
    s[::5] = np.round(s[::5])  # tie groups
    d = (rng.random((40, 30)) < 0.02 + 0.05 * (s > 1)).astype(float)
    d[3, 3] = 2.0
    valid = rng.random((40, 30)) > 0.1
    mask = rng.random((40, 30)) > 0.4
    return s, d, valid, mask


def test_all_ones_weights_give_the_plain_metrics(maps: tuple[np.ndarray, ...]) -> None:
    s, d, valid, mask = maps
    blocks = block_index(s.shape, (4, 3))
    reps = metric_replicates(s, d, valid, blocks, np.ones((1, 12)), masks={"m": mask})
    plain = prospectivity_metrics(s, d, valid=valid, mask=mask)
    assert reps["auc_blockcv"][0] == pytest.approx(plain["auc_blockcv"])
    assert reps["auc_within_m"][0] == pytest.approx(plain["auc_within_greenstone"])
    for k in ("capture_top2pct", "capture_top5pct", "capture_top10pct"):
        assert reps[k][0] == pytest.approx(plain[k])


def test_weighted_auc_equals_auc_of_the_resampled_pixels(maps: tuple[np.ndarray, ...]) -> None:
    s, d, valid, _ = maps
    blocks = block_index(s.shape, (4, 3))
    w = replicate_weights(12, 3, seed=5)
    keep = valid
    parts = auc_parts(s[keep], d[keep] > 0, blocks[keep], 12)
    got = weighted_auc(parts, w)
    for r in range(3):  # build the resampled pixel set explicitly: every block repeated w times
        idx = np.concatenate([np.flatnonzero(keep.ravel() & (blocks.ravel() == b)) for b in range(12)
                              for _ in range(int(w[r, b]))])  # fmt: skip
        assert got[r] == pytest.approx(roc_auc(s.ravel()[idx], d.ravel()[idx]))


def test_paired_difference_of_a_model_with_itself_is_zero(maps: tuple[np.ndarray, ...]) -> None:
    s, d, valid, mask = maps
    blocks = block_index(s.shape, (4, 3))
    noisy = s + np.random.default_rng(3).normal(scale=3.0, size=s.shape)
    out = paired_differences({"a": s, "b": s.copy(), "noisy": noisy}, "a", d, valid, blocks, n_replicates=200,
                             masks={"m": mask})  # fmt: skip
    same = out["minus_a"]["b"]["auc_blockcv"]
    assert same["diff"] == same["low"] == same["high"] == 0.0
    worse = out["minus_a"]["noisy"]["auc_blockcv"]
    assert worse["diff"] < 0 and worse["low"] <= worse["diff"] <= worse["high"]
    m = out["models"]["a"]["auc_blockcv"]
    assert m["low"] <= m["value"] <= m["high"]
