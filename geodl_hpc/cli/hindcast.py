"""`geodl hindcast CONFIG`: a rolling-origin earthquake forecast hindcast campaign (the hindcast job)."""

from __future__ import annotations

from geodl_hpc.cli.common import Verbs, add_job_verb, cmd_job


def add_hindcast(verbs: Verbs) -> None:
    """`geodl hindcast CONFIG`: the hindcast job; its items fan out as the config's ``campaign`` says."""
    add_job_verb(
        verbs,
        "hindcast",
        "hindcast",
        "rolling-origin earthquake forecast hindcast: N models x M windows x CSEP tests, resumable",
        "Bin a catalog onto a CSEP grid, fit each forecasting model on the past only, forecast the next window,\n"
        "and test every window (N, L, CL, S, M, Brier; paired T and W against the reference; Molchan area skill\n"
        "score). Work items (model x block of windows) are written as idempotent pieces with a ledger: a\n"
        "killed campaign resumes with only the missing items; a finished one is a no-op. Ends with results.csv,\n"
        "forecasts/MODEL.zarr, plots and report.md. --cluster sends the whole job to a cluster; to fan the items\n"
        "out as Slurm array tasks set campaign.executor=slurm campaign.cluster=PROFILE campaign.array_tasks=N.",
        [
            "geodl hindcast configs/hindcast_ridgecrest.yaml",
            "geodl hindcast configs/hindcast_sed.yaml",
            "geodl hindcast configs/hindcast_etas.yaml campaign.executor=ray",
            "geodl hindcast configs/hindcast_etas.yaml campaign.executor=slurm campaign.cluster=localslurm",
        ],
        cmd_job,
    )
