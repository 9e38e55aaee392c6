"""DSSR: a Jarvice downstream scheduler that runs jobs on an existing HPC cluster."""
