"""DSSR: a Jarvice downstream scheduler that runs jobs on an existing HPC cluster."""

__version__ = "0.2.0"
