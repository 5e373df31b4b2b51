#!/usr/bin/python3
"""noop_milter.py - the filter of bench/run.sh's hatod-milter target: a
milter written with Debian's python3-milter (libmilter) that declines every
step it may decline in the option negotiation and says continue at the end
of each message, so what is measured is the protocol's cost to hatod (a
connection, the negotiation and the end of message per session), not a
filter's work.

    /usr/bin/python3 bench/noop_milter.py PORT
"""
import sys

import Milter


class NoOp(Milter.Base):
    """Every optional callback is Milter.Base's own, marked @nocallback:
    libmilter negotiates them all away."""

    def eom(self):
        return Milter.CONTINUE


def main():
    Milter.factory = NoOp
    Milter.runmilter("hato-bench", "inet:%s@127.0.0.1" % sys.argv[1], timeout=60)


if __name__ == "__main__":
    main()
