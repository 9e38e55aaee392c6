"""QuietLogger: Conch's chatter dropped, its warnings kept."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.conch import ExecChannel
from dssr.remote.quiet import QuietLogger


class QuietLoggerTests(SynchronousTestCase):
    def test_only_warnings_and_worse_pass(self):
        events = []
        logger = QuietLogger(observer=events.append)
        logger.debug("channel open")
        logger.info("sending close {id}", id=3)
        logger.warn("too much data")
        logger.error("other side refused open")
        self.assertEqual([event["log_format"] for event in events],
                         ["too much data", "other side refused open"])

    def test_one_logger_whoever_reads_it(self):
        self.assertIs(ExecChannel._log, ExecChannel(b"true", None, 10)._log)
