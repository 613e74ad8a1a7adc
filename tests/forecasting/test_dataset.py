"""SequenceBatches: equal disjoint rank shards, per-epoch shuffles, and exact resume from a cursor."""

from __future__ import annotations

import numpy as np

from geodl_hpc.forecasting.dataset import SequenceBatches, sequences
from geodl_hpc.sampling import Cursor


def _source(seed: int = 3) -> SequenceBatches:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 25, 4)).astype(np.float32)
    targets = rng.poisson(0.3, size=(40, 25))
    return SequenceBatches(features, targets, np.arange(1, 40), seq_len=5, batch_size=32, seed=seed)


def test_sequences_end_at_the_target_window_and_pad_before_zero() -> None:
    features = np.arange(6 * 2 * 1, dtype=np.float32).reshape(6, 2, 1)
    x = sequences(features, np.array([4, 1]), np.array([1, 0]), 3)
    assert x[0, :, 0].tolist() == [5.0, 7.0, 9.0]  # windows 2, 3, 4 of cell 1
    assert x[1, :, 0].tolist() == [0.0, 0.0, 2.0]  # window -1 padded, windows 0, 1 of cell 0


def test_resume_from_a_cursor_gives_the_same_batches() -> None:
    full = [b["index"].tolist() for b in _source().iter_numpy(1)]
    src = _source()
    seen, cursor = [], None
    for i, batch in enumerate(src.iter_numpy(1)):
        seen.append(batch["index"].tolist())
        if i == 6:
            cursor = Cursor.from_dict(src.cursor.to_dict())  # what a checkpoint stores
            break
    rest = [b["index"].tolist() for b in _source().iter_numpy(1, cursor=cursor)]
    assert seen + rest == full
    first = _source().iter_epoch(1).__next__()
    assert first["x"].shape == (32, 5, 4) and first["y"].shape == (32, 1)


def test_rank_shards_are_equal_disjoint_and_shuffled_per_epoch() -> None:
    src = _source()
    ranks = [np.concatenate([b["index"] for b in src.iter_numpy(0, r, 2)]) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    real = set(ranks[0].tolist()) | set(ranks[1].tolist())
    assert real == set(range(len(src)))
    e0 = np.concatenate([b["index"] for b in src.iter_numpy(0)])
    e1 = np.concatenate([b["index"] for b in src.iter_numpy(1)])
    assert sorted(e0.tolist()) == sorted(e1.tolist()) and not np.array_equal(e0, e1)
