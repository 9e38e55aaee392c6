"""Fake SSH connections for driving ``Link`` and ``SSHRemote`` by hand."""

from twisted.internet.defer import Deferred

from dssr.remote.interfaces import ChannelRefused, ConnectionLost, RemoteResult


class FakeChannel:
    """A command on a ``FakeConnection``; the test decides how it ends."""

    def __init__(self, command: bytes, stdin: bytes | None, max_output: int):
        self.command = command
        self.stdin = stdin
        self.max_output = max_output
        self.result = Deferred()
        self.done = Deferred()
        self.stopped_with = None

    def finish(self, status: int = 0, stdout: bytes = b"", stderr: bytes = b"") -> None:
        """The command exits and its channel closes."""
        self.result.callback(RemoteResult(status, None, stdout, stderr))
        self.done.callback(None)

    def refuse(self) -> None:
        """The server refuses to open this channel."""
        self.result.errback(ChannelRefused("open failed"))
        self.done.callback(None)

    def stop(self, error) -> None:
        self.stopped_with = error
        if not self.result.called:
            self.result.errback(error)
        if not self.done.called:
            self.done.callback(None)


class FakeStream:
    """A stream on a ``FakeConnection``; the test opens, refuses or closes it."""

    def __init__(self, destination):
        self.destination = destination
        self.opened = Deferred(lambda _: setattr(self, "abandoned", True))
        self.done = Deferred()
        self.abandoned = False
        self.protocol = None

    def getPeer(self):
        return self.destination

    def attach(self, protocol) -> None:
        self.protocol = protocol

    def close(self) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionLost("gone"))
        if not self.done.called:
            self.done.callback(None)


class FakeConnection:
    """Records channels and pings; ``drop`` simulates the network going away."""

    def __init__(self):
        self.alive = True
        self.lost = Deferred()
        self.channels: list[FakeChannel] = []
        self.streams: list[FakeStream] = []
        self.pings: list[Deferred] = []
        self.closed_why = None
        self.aborted_why = None

    def execute(self, command: bytes, stdin: bytes | None, max_output: int) -> FakeChannel:
        channel = FakeChannel(command, stdin, max_output)
        self.channels.append(channel)
        return channel

    def forward(self, destination) -> FakeStream:
        stream = FakeStream(destination)
        self.streams.append(stream)
        return stream

    def open_channels(self) -> list[FakeChannel]:
        return [channel for channel in self.channels if not channel.done.called]

    def ping(self) -> Deferred:
        answer = Deferred()
        self.pings.append(answer)
        return answer

    def answer_pings(self) -> None:
        """The server answers every ping, including those sent in reaction to answers."""
        while self.pings:
            self.pings.pop(0).callback(None)

    def close(self, why: str) -> Deferred:
        self.closed_why = why
        return self.drop(why)

    def abort(self, why: str) -> None:
        self.aborted_why = why
        self.drop(why)

    def drop(self, why: str = "network down") -> Deferred:
        error = ConnectionLost(f"connection lost: {why}")
        self.alive = False
        for channel in self.open_channels():
            if not channel.result.called:
                channel.result.errback(error)
            channel.done.callback(None)
        for stream in self.streams:
            stream.close()
        pings, self.pings = self.pings, []
        for answer in pings:
            answer.callback(None)
        self.lost.callback(error)
        return self.lost


class FakeDialer:
    """``dial()`` for a ``Link``: each call waits until the test connects or fails it."""

    def __init__(self):
        self.attempts: list[Deferred] = []
        self.connections: list[FakeConnection] = []

    def __call__(self) -> Deferred:
        attempt = Deferred()
        self.attempts.append(attempt)
        return attempt

    def connect(self) -> FakeConnection:
        """The latest attempt succeeds."""
        conn = FakeConnection()
        self.connections.append(conn)
        self.attempts[-1].callback(conn)
        return conn

    def refuse(self, error: Exception) -> None:
        """The latest attempt fails with ``error``."""
        self.attempts[-1].errback(error)
