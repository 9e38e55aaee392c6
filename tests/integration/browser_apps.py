"""Real interactive apps as job scripts for the rig: a noVNC desktop and a Jupyter notebook.

Each serves on ``$JARVICE_SERVICE_PORT`` under its public root path,
``$DSSR_SERVICE_PATH`` (``/`` host-based, ``/job<number>/`` path-based: DSSR's proxy
passes the full request path to the app). The tools come from Debian packages on the
node (``.ci/run`` installs them); a job missing one prints ``browser app: ... is not
installed`` and ends, which the test reports with the job's output.
"""

import base64
import json

from tests.integration.rig import job_script

# The desktop's size and root window colour, which the test reads back in the page.
DESKTOP = (1024, 768)
ROOT_COLOUR = (0x33, 0x66, 0x99)
NOVNC_DIR = "/usr/share/novnc"

# What a notebook cell computes on the node (the test knows the job id and node name).
CELL = ("import os, socket\n"
        "print(f\"job {os.environ['SLURM_JOB_ID']} on {socket.gethostname()}: \"\n"
        "      f\"{sum(i * i for i in range(1000))}\")")
CELL_VALUE = sum(i * i for i in range(1000))
NOTEBOOK = "check.ipynb"

_REQUIRE = """\
for tool in {tools}; do
    command -v "$tool" >/dev/null || {{ echo "browser app: $tool is not installed"; exit 1; }}
done
[ -n "$DSSR_SERVICE_PATH" ] || {{ echo "browser app: DSSR_SERVICE_PATH is not set"; exit 1; }}
work=$(mktemp -d)
"""

_NOVNC = _REQUIRE + """\
[ -f {novnc}/vnc.html ] || {{ echo "browser app: novnc is not installed"; exit 1; }}
# An X display of its own (Xvfb picks a free number; -noreset: the root's colour stays
# when xsetroot, its first client, leaves), something drawn on it, and a VNC server for
# it on a free loopback port.
Xvfb -displayfd 3 -screen 0 {width}x{height}x24 -nolisten tcp -noreset 3>"$work/display" \\
    2>"$work/xvfb.log" &
for try in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$work/display")"
xsetroot -solid '#{colour}'
xterm -geometry 72x16+48+48 -fa Monospace -fs 13 -T "DSSR job $SLURM_JOB_ID" \\
    -e /bin/sh -c 'echo "Slurm job $SLURM_JOB_ID on $(hostname)"; echo; uname -a; \\
    echo; echo "served under $DSSR_SERVICE_PATH"; exec sleep infinity' &
vnc_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); \\
print(s.getsockname()[1])')
x11vnc -display "$DISPLAY" -localhost -rfbport "$vnc_port" -passwd "$JARVICE_SERVICE_PASSWORD" \\
    -forever -shared -quiet -o "$work/x11vnc.log" &
for try in $(seq 100); do (: <>"/dev/tcp/127.0.0.1/$vnc_port") 2>/dev/null && break; sleep 0.1; done
# noVNC's files under the public root path: websockify serves DIR/<path>.
web={novnc}
if [ "$DSSR_SERVICE_PATH" != / ]; then
    link="$work/web${{DSSR_SERVICE_PATH%/}}"
    mkdir -p "$(dirname "$link")" && ln -s {novnc} "$link" && web="$work/web"
fi
exec websockify --web "$web" "$JARVICE_SERVICE_PORT" "127.0.0.1:$vnc_port"
"""

_JUPYTER = _REQUIRE + """\
export JUPYTER_RUNTIME_DIR="$work/runtime" JUPYTER_DATA_DIR="$work/data" \\
    JUPYTER_CONFIG_DIR="$work/config" IPYTHONDIR="$work/ipython"
echo {notebook_b64} | base64 -d > "$work/{notebook}"
cd "$work" || exit 1
exec jupyter-notebook --no-browser --ip=0.0.0.0 --port="$JARVICE_SERVICE_PORT" \\
    --port-retries=0 --notebook-dir="$work" --NotebookApp.allow_remote_access=True \\
    --NotebookApp.base_url="$DSSR_SERVICE_PATH" --NotebookApp.token="$JARVICE_SERVICE_PASSWORD"
"""


def _notebook() -> str:
    document = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "dssr-check",
                   "metadata": {}, "outputs": [], "source": CELL.splitlines(keepends=True)}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    return base64.b64encode(json.dumps(document).encode()).decode()


def _script(body: str) -> str:
    # Upstream's script is a template: its braces are doubled.
    return job_script(body.replace("{", "{{").replace("}", "}}"), "JOBOBJ_INTERACTIVE=True")


def novnc_script() -> str:
    """The noVNC desktop job (base64, as upstream sends it)."""
    width, height = DESKTOP
    return _script(_NOVNC.format(
        tools="Xvfb xsetroot xterm x11vnc websockify python3", novnc=NOVNC_DIR,
        width=width, height=height, colour=bytes(ROOT_COLOUR).hex()))


def jupyter_script() -> str:
    """The Jupyter notebook job, with ``NOTEBOOK`` holding the one cell ``CELL``."""
    return _script(_JUPYTER.format(tools="jupyter-notebook", notebook=NOTEBOOK,
                                   notebook_b64=_notebook()))
