"""Makes ``twistd dssr`` find DSSR; all the work is in ``dssr.tap``."""

from twisted.application.service import ServiceMaker

dssr = ServiceMaker(
    "DSSR", "dssr.tap", "Jarvice downstream scheduler for HPC clusters", "dssr"
)
