"""Run a native engine binary under assay's guard: ``python -m assay.engines.llamaserver_exec BINARY ARGS...``.

``engines._process`` can tie only ``python -m MODULE`` commands to assay's life (``engines._guard``: the engine's
process group is killed when assay dies, ``kill -9`` included). This module is that MODULE for a binary: it runs
the binary as a child in the same process group (same log, same stdin), passes SIGTERM / SIGINT on, and exits the
way the child did — by the same signal when the child was killed — so a crash reads as the binary's own (``killed
by SIGSEGV``). Standard library only; ~10 MB of RSS beside the engine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit("usage: python -m assay.engines.llamaserver_exec BINARY [ARGS...]")
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    rc = child.wait()
    if rc < 0:  # die of the same signal, so whoever waits on us sees the child's fate
        signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
