"""Slurm as text: the commands DSSR runs and the parsers for what they print (no I/O)."""
