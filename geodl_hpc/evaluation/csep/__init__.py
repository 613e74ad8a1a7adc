"""CSEP evaluation of gridded earthquake forecasts: forecasts and binning, test kernels, `evaluate csep`, plots.

Modules: :mod:`~geodl_hpc.evaluation.csep.forecast` (``GriddedForecast``, CSEP ASCII and Zarr I/O, ``bin_events``
with pyCSEP's edge conventions), :mod:`~geodl_hpc.evaluation.csep.kernels` (N, L, CL, S, M, T, W, Brier, ROC,
Molchan, area skill score and cumulative tests; pure numpy with a leading window axis),
:mod:`~geodl_hpc.evaluation.csep.evaluate` (``evaluate_csep``, what `geodl evaluate csep` runs) and
:mod:`~geodl_hpc.evaluation.csep.plots` (PNG figures; matplotlib imported on use).
"""

from __future__ import annotations

from geodl_hpc.evaluation.csep.forecast import (
    GriddedForecast,
    bin_events,
    load_csep_ascii,
    read_forecast,
    to_pycsep,
    write_forecast_zarr,
)
from geodl_hpc.evaluation.csep.kernels import (
    TestResult,
    area_skill_score,
    brier_score,
    cl_test,
    cumulative,
    cumulative_cl_test,
    cumulative_l_test,
    cumulative_m_test,
    cumulative_n_test,
    cumulative_s_test,
    cumulative_t_test,
    l_test,
    m_test,
    molchan_curve,
    n_test,
    roc_curve,
    s_test,
    t_test,
    w_test,
)

__all__ = [
    "GriddedForecast",
    "TestResult",
    "area_skill_score",
    "bin_events",
    "brier_score",
    "cl_test",
    "cumulative",
    "cumulative_cl_test",
    "cumulative_l_test",
    "cumulative_m_test",
    "cumulative_n_test",
    "cumulative_s_test",
    "cumulative_t_test",
    "l_test",
    "load_csep_ascii",
    "m_test",
    "molchan_curve",
    "n_test",
    "read_forecast",
    "roc_curve",
    "s_test",
    "t_test",
    "to_pycsep",
    "w_test",
    "write_forecast_zarr",
]
