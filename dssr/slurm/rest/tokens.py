"""Slurm JWTs for slurmrestd, per cluster user, renewed before they expire.

Three sources, one for each way a site may hand DSSR its authority:

- ``MintedTokens``: DSSR signs HS256 tokens itself with the cluster's
  ``jwt_hs256.key`` (claims ``sun``, ``iat``, ``exp``), one per user;
- ``StaticToken``: one long-lived token of SlurmUser (or root), acting for each user
  through ``X-SLURM-USER-NAME``;
- ``ScontrolTokens``: ``scontrol token`` run as each user over the SSH connection, for
  sites that will not share the key.

Tokens are secrets: they go into request headers and nowhere else (never a log line,
an error message or a metric).
"""

import jwt
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dssr.errors import Unavailable
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line

_log = Logger(namespace="dssr.slurm")
# A token is renewed once less than this share of its lifespan is left.
RENEW_SHARE = 1 / 3


class _Cached:
    """Tokens per user from ``_issue(user) -> (token, lifespan)``, reused until
    ``RENEW_SHARE`` of their lifespan is left; ``forget`` drops a refused one."""

    def __init__(self, clock: IReactorTime):
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    async def token(self, user: str) -> str:
        """A token for ``user`` with a good part of its lifespan left."""
        cached = self._tokens.get(user)
        if cached is not None and self._clock.seconds() < cached[1]:
            return cached[0]
        issued = self._clock.seconds()
        token, lifespan = await self._issue(user)
        self._tokens[user] = (token, issued + lifespan * (1 - RENEW_SHARE))
        return token

    def forget(self, user: str) -> None:
        """Drop ``user``'s token (slurmrestd refused it): the next call gets a new one."""
        self._tokens.pop(user, None)

    async def _issue(self, user: str) -> tuple[str, float]:
        raise NotImplementedError


class MintedTokens(_Cached):
    """HS256 tokens signed with the cluster's JWT key, ``lifespan`` seconds each."""

    name = "minted"

    def __init__(self, key: bytes, clock: IReactorTime, lifespan: float):
        super().__init__(clock)
        self._key = key
        self._lifespan = lifespan

    async def _issue(self, user: str) -> tuple[str, float]:
        now = int(self._clock.seconds())
        claims = {"sun": user, "iat": now, "exp": now + int(self._lifespan)}
        return jwt.encode(claims, self._key, algorithm="HS256"), self._lifespan


class StaticToken:
    """One token for every user (SlurmUser's: slurmrestd acts as X-SLURM-USER-NAME)."""

    name = "static"

    def __init__(self, token: str):
        self._token = token

    async def token(self, user: str) -> str:
        return self._token

    def forget(self, user: str) -> None:
        """Nothing to renew: a refused static token stays refused (and says so)."""


def parse_scontrol_token(text: str) -> str:
    """The token in ``scontrol token``'s output (``SLURM_JWT=<token>``); ValueError if none."""
    for line in text.splitlines():
        name, equals, value = line.strip().partition("=")
        if name == "SLURM_JWT" and equals and value:
            return value
    raise ValueError("scontrol token printed no SLURM_JWT=")


class ScontrolTokens(_Cached):
    """Tokens from ``scontrol token lifespan=S`` run as each user through ``commands``
    (a ``LoggedRemote``: argv is logged, never the token it prints)."""

    name = "scontrol"

    def __init__(self, commands: LoggedRemote, clock: IReactorTime, lifespan: float,
                 service_user: str):
        super().__init__(clock)
        self._commands = commands
        self._lifespan = lifespan
        self._service_user = service_user

    async def _issue(self, user: str) -> tuple[str, float]:
        as_user = None if user == self._service_user else user
        result = await self._commands.run(
            ["scontrol", "token", f"lifespan={int(self._lifespan)}"], user=as_user)
        if not result.ok:
            raise Unavailable(f"scontrol token as {user} failed (is AuthAltTypes=auth/jwt "
                              f"set in slurm.conf?): {first_line(result.stderr)}")
        try:
            token = parse_scontrol_token(result.stdout.decode("utf-8", "replace"))
        except ValueError as error:
            raise Unavailable(f"scontrol token as {user}: {error}") from None
        return token, self._lifespan


# What ``RestSlurm`` takes its tokens from.
Tokens = MintedTokens | StaticToken | ScontrolTokens
