"""Entry point every engine we start runs under: ``python -m assay.engines._guard [guard flags] -m MODULE ARGS...``.

It does two things before handing the process to the engine's own ``__main__`` (``runpy``, same process, same argv
the engine would have seen):

- **Ties the engine's life to assay's.** A daemon thread waits on a lifeline pipe whose write end only the parent
  holds (``--lifeline FD``) and watches the parent pid (``--parent PID``). When the parent is gone — ``kill -9`` of
  ``assay eval`` included, where no ``finally`` runs — the pipe reads EOF or the process is re-parented, and the
  guard SIGKILLs the engine's whole process group (nobody is left to wait for a graceful shutdown). The engine was started
  in its own session, so the group is the engine and every process it forked or spawned (vLLM's EngineCore and
  workers). ``PR_SET_PDEATHSIG`` alone is not enough: it fires when the parent *thread* ends, and only for the
  direct child.
- **Applies llama.cpp model-parameter choices the server has no flag for** (``--llama-extra-bufts off``): it wraps
  ``llama_model_default_params`` so every model the server loads has ``use_extra_bufts = False`` (no AMX / repack
  buffer types; see ``assay.engines.amx``), and says so in the engine log.

Kept free of assay imports beyond the standard library: it must start fast and never pull in the CLI.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

def _end_group(reason: str) -> None:
    print(f"[assay guard] {reason}: killing the engine's process group", file=sys.stderr, flush=True)
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)


def watch_parent(parent: int, lifeline_fd: int | None, poll_s: float = 0.5) -> threading.Thread:
    """Start the daemon thread that ends this process group once ``parent`` is gone."""

    def lifeline() -> None:
        try:
            while os.read(lifeline_fd, 1):  # the parent never writes: any return means EOF, i.e. it is gone
                pass
        except OSError:
            pass
        _end_group(f"parent {parent} is gone (lifeline closed)")

    def poll() -> None:
        while True:
            if os.getppid() != parent:
                _end_group(f"parent {parent} is gone (re-parented to {os.getppid()})")
            time.sleep(poll_s)

    if lifeline_fd is not None:
        threading.Thread(target=lifeline, name="assay-lifeline", daemon=True).start()
    t = threading.Thread(target=poll, name="assay-parent-watch", daemon=True)
    t.start()
    return t


def disable_extra_bufts() -> None:
    """Every llama.cpp model loaded in this process gets ``use_extra_bufts = False``."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params_without_extra_bufts():
        p = original()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params_without_extra_bufts
    import llama_cpp

    llama_cpp.llama_model_default_params = params_without_extra_bufts
    print("[assay guard] llama.cpp extra buffer types off (use_extra_bufts = False: no AMX / repacked weights)",
          file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    parent = lifeline = None
    extra_bufts = "on"
    i = 0
    while i < len(argv) and argv[i] != "-m":
        flag = argv[i]
        if flag == "--parent":
            parent = int(argv[i + 1])
        elif flag == "--lifeline":
            lifeline = int(argv[i + 1])
        elif flag == "--llama-extra-bufts":
            extra_bufts = argv[i + 1]
        else:
            raise SystemExit(f"assay guard: unknown flag {flag!r}")
        i += 2
    if i >= len(argv) - 1:
        raise SystemExit("assay guard: expected -m MODULE [ARGS...]")
    module, rest = argv[i + 1], argv[i + 2:]
    if parent is not None:
        watch_parent(parent, lifeline)
    if extra_bufts == "off":
        disable_extra_bufts()
    sys.argv = [module] + rest
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
