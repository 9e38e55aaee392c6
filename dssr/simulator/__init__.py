"""``dssr sim``: a stand-in for Jarvice upstream that submits jobs to a DSSR and follows them.

``dssr.sim`` is the command; the modules here are its parts: ``script`` (job names and
the ``hpc_script``), ``client`` (the legacy API over HTTP), ``tail`` (new output lines),
``display`` (what is printed), ``follow`` (the polling loop and the exit code).
"""
