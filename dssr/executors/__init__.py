"""Executors: pure text functions that turn an upstream job script into cluster work.

``singularity`` is the only executor upstream writes scripts for today.
"""

from dssr.executors.config import ExecutorSettings
from dssr.executors.singularity import SingularityJob, prepare

__all__ = ["ExecutorSettings", "SingularityJob", "prepare"]
