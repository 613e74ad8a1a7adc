"""Smoke test of benchmarks/hindcast.py with tiny sizes (2 windows of the forecast's first 600 cells,
20 simulations): both sides agree."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import numpy as np

from tests.conftest import REPO


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hindcast_benchmark", REPO / "benchmarks" / "hindcast.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hindcast_benchmark_tiny() -> None:
    bench = _benchmark()
    setup = bench._windows(2, seed=1, n_cells=600)
    setup["chunk"] = 2
    ours_s, ours_cpu, ours = bench.run_ours(setup, 20, 1, 2)
    pycsep_s, pycsep_cpu, ref = bench.run_pycsep(setup, 20, 1)
    assert ours_s > 0 and pycsep_s > 0 and ours_cpu > 0 and pycsep_cpu > 0
    for test in bench.TESTS:
        assert ours[f"{test}_stat"].shape == ref[f"{test}_stat"].shape == (2,)
        assert np.allclose(ours[f"{test}_stat"], ref[f"{test}_stat"], rtol=0, atol=1e-9)
    assert np.allclose(ours["N_q"], ref["N_q"], rtol=0, atol=1e-12)
