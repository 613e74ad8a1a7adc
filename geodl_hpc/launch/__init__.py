"""Launch: turn a job spec into what a cluster runs (sbatch scripts for Slurm) and say what it will cost."""
