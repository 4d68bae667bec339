"""What the bench measured for a group of requests, in the form every engine's cross-check compares with its own
counters (one copy for vLLM's /metrics and llama-server's)."""

from __future__ import annotations


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def pct(ours, engine):
    """ours − engine in % of the engine's figure (None when either is missing)."""
    return None if ours is None or not engine else 100.0 * (ours - engine) / engine


def ours(results) -> dict:
    """Requests, prompt and output tokens, mean TTFT and mean TPOT of the group's successful requests."""
    ok = [r for r in results if r.ok]
    return {"requests": len(ok), "prompt_tokens": sum(r.input_tokens or 0 for r in ok),
            "output_tokens": sum(r.output_tokens or 0 for r in ok), "ttft_mean_s": mean([r.ttft_s for r in ok]),
            "tpot_mean_s": mean([r.tpot_s for r in ok if r.output_tokens and r.output_tokens > 1])}


async def metrics_text(root: str, headers: dict | None = None) -> str | None:
    """The text of a server's Prometheus ``/metrics`` page, or None when it has none (the engines parse their own)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=10.0) as c:
            r = await c.get(f"{root}/metrics", headers=headers or {})
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None
