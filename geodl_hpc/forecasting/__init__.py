"""Earthquake forecasting: CSEP-style grid and binning, history features, the ETAS simulator, baseline and RNN
forecasters, and the batch source that trains the RNN with the training engine.

Modules: :mod:`~geodl_hpc.forecasting.grid` (SpaceMagGrid), :mod:`~geodl_hpc.forecasting.binning` (windows,
counts), :mod:`~geodl_hpc.forecasting.features` (history-only features), :mod:`~geodl_hpc.forecasting.gr`
(b-values), :mod:`~geodl_hpc.forecasting.etas` (simulator, published parameters, expected rates),
:mod:`~geodl_hpc.forecasting.forecasters` (Forecaster protocol and implementations),
:mod:`~geodl_hpc.forecasting.dataset` (SequenceBatches), :mod:`~geodl_hpc.forecasting.scores` (log-likelihood),
:mod:`~geodl_hpc.forecasting.benchmark` (RNN vs baselines on a synthetic ETAS catalog), and the rolling-origin
hindcast campaign in :mod:`~geodl_hpc.forecasting.hindcast` (the driver; its steps are the ``hindcast_*``
modules: config, inputs, blocks, scoring, stores, summary, plots, report).
Nothing is imported here, so ``import geodl_hpc.forecasting`` stays light.
"""
