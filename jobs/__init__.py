"""Batch job entry points: each module has ``main(config) -> result``, run in-process, locally or on Slurm."""
