"""geodl_hpc: deep learning for the geosciences as batch jobs on HPC clusters.

Data flows one way: archive -> sampling -> pipeline -> training -> inference -> evaluation,
with launch (submitit/Slurm, Ray, Horovod) around it. Importing the package has no side effects.
"""

__version__ = "0.1.0"
