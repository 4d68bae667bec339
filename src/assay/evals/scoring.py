"""The scoring pool: ``suite.score`` inline for fast scorers, in a killable process pool for ``slow_scoring`` ones.

Math-Verify's SIGALRM timeout and the code sandbox need a process of their own: each worker runs the scorer in its
main thread, and a scorer that overruns ``scoring_timeout_s`` is killed with its pool (the sample gets
``Score(parsed=False, reason="scoring timeout")``); the next call starts a fresh pool.

Example:
    scorer = Scorer({"math": suite})
    await scorer.start()
    score = await scorer.score("math", "\\boxed{4}", sample)
    scorer.close()
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from assay.evals.base import Sample, Score

_WORKER_SUITES: dict[str, Any] = {}


def _worker_init(blob: bytes) -> None:
    global _WORKER_SUITES
    _WORKER_SUITES = pickle.loads(blob)


def _worker_score(suite_name: str, completion: str, sample: Sample) -> Score:
    return _WORKER_SUITES[suite_name].score(completion, sample)


def _worker_score_turns(suite_name: str, turns: list, sample: Sample) -> Score:
    return _WORKER_SUITES[suite_name].score_turns(turns, sample)


def _worker_ping() -> int:
    return os.getpid()


class Scorer:
    """Calls ``suite.score`` inline for fast scorers and in a killable process pool for ``slow_scoring`` ones."""

    def __init__(self, suites: dict[str, Any], workers: int | None = None):
        self.suites = suites
        self.slow = {n for n, s in suites.items() if s.slow_scoring}
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._sem: asyncio.Semaphore | None = None
        self._blob: bytes | None = None
        self._threaded = False
        self._warm: asyncio.Future | None = None

    async def start(self) -> None:
        """Start and warm the pool (spawned workers import the suites once) so start-up is not billed to the first
        samples' scoring timeouts."""
        if not self.slow:
            return
        self._sem = asyncio.Semaphore(self.workers)
        try:
            self._blob = pickle.dumps({n: self.suites[n] for n in self.slow})
        except Exception as e:  # noqa: BLE001 - any pickling failure means: no process pool for this suite
            print(f"warning: slow suites cannot be sent to a worker process ({type(e).__name__}: {e}); scoring in "
                  "threads, where a runaway scorer cannot be killed", file=sys.stderr)
            self._threaded = True
            return
        pool = self._get_pool()
        # Warm up in the background while the first requests are out; score() waits for it before its timeout runs.
        self._warm = asyncio.gather(*(asyncio.wrap_future(pool.submit(_worker_ping)) for _ in range(self.workers)),
                                    return_exceptions=True)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            # spawn, not fork: the parent has threads (event loop executors, HTTP pools) that fork would copy mid-air.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_worker_init, initargs=(self._blob,))
        return self._pool

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        """A scorer that overran cannot be cancelled inside a ProcessPoolExecutor: kill its processes (private
        ``_processes``; there is no public way) and let the next call start a fresh pool."""
        if self._pool is pool:
            self._pool = None
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
        pool.shutdown(wait=False, cancel_futures=True)

    async def score_turns(self, suite_name: str, turns: list, sample: Sample) -> Score:
        """A conversation's Score from its turns (``suite.score_turns``), in the pool for ``slow_scoring`` suites."""
        suite = self.suites[suite_name]
        if suite_name not in self.slow:
            return suite.score_turns(turns, sample)
        return await self._pooled(suite, (_worker_score_turns, suite_name, turns, sample),
                                  lambda: suite.score_turns(turns, sample))

    async def score(self, suite_name: str, completion: str, sample: Sample) -> Score:
        suite = self.suites[suite_name]
        if suite_name not in self.slow:
            return suite.score(completion, sample)
        return await self._pooled(suite, (_worker_score, suite_name, completion, sample),
                                  lambda: suite.score(completion, sample))

    async def _pooled(self, suite, job: tuple, inline) -> Score:
        timeout = float(suite.scoring_timeout_s)
        timed_out = Score(0.0, reason=f"scoring timeout ({timeout:g} s)", parsed=False)
        assert self._sem is not None, "Scorer.start() not awaited"
        if self._warm is not None:
            await self._warm
        async with self._sem:  # at most `workers` submitted: a queued task must not burn its timeout waiting
            if self._threaded:
                try:
                    return await asyncio.wait_for(asyncio.to_thread(inline), timeout)
                except asyncio.TimeoutError:
                    return timed_out
            for _ in range(3):
                pool = self._get_pool()
                fut = asyncio.wrap_future(pool.submit(*job))
                try:
                    return await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    self._kill(pool)
                    return timed_out
                except BrokenProcessPool:  # another sample's timeout killed the pool under us: try again
                    self._kill(pool)
            return Score(0.0, reason="scoring worker crashed", parsed=False)

    def close(self) -> None:
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


async def score_completion(scorer: Scorer, suite_name: str, completion: str, sample: Sample, *,
                           think_unclosed: bool = False) -> Score:
    """The Score for one answer; a thinking model that never closed <think> has no answer to score."""
    if think_unclosed:
        return Score(0.0, reason="unclosed <think>: no answer", parsed=False, extra={"think_unclosed": True})
    return await scorer.score(suite_name, completion, sample)
