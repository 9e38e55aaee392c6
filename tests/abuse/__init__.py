"""Attacks on a real ``twistd dssr`` process over real sockets, each shown
to cost it less than 150 MB of peak RSS and ``/live`` less than 50 ms."""
