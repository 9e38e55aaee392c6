"""Access tokens to interactive jobs' apps, made and checked by DSSR alone.

A token is ``<jobid>.<mac>``: the Slurm job id (so the proxy finds the job) and an
HMAC-SHA256 of the job id and the Jarvice job number under a key jobs never see. The
proxy checks it before any cluster work, so a forged token costs one HMAC, and a job
cannot mint one: nothing it writes decides which job a token opens, or which job
number's address serves it.
"""

import base64
import hashlib
import hmac
import os
import re

_TOKEN = re.compile(r"([0-9]{1,18})\.([A-Za-z0-9_-]{43})")
# Without a server key the tokens are this process's: they end with it (see ``derive_key``).
_PROCESS_KEY = os.urandom(32)


def derive_key(server_key: str) -> bytes:
    """The token key: derived from the server key upstream also holds (so every replica
    and a restarted DSSR agree), or, without one, a random key of this process."""
    if not server_key:
        return _PROCESS_KEY
    return hmac.new(server_key.encode(), b"dssr proxy access tokens", hashlib.sha256).digest()


class AccessTokens:
    """Issues and checks the tokens of job ``number``'s app under ``key``."""

    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, jobid: str, number: int) -> str:
        message = f"{jobid}\0{number}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, jobid: str, number: int) -> str:
        """The token for Slurm job ``jobid`` submitted as Jarvice job ``number``."""
        return f"{jobid}.{self._mac(jobid, number)}"

    def verify(self, token: str, number: int) -> str | None:
        """The job id ``token`` opens at job ``number``'s address, or None when DSSR did
        not issue it for that number."""
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        jobid, mac = found.groups()
        return jobid if hmac.compare_digest(mac, self._mac(jobid, number)) else None
