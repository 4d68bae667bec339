"""How the time and token cost of `assay doc summarize` grow with document size.

Builds a register of fictional company profiles (assay.evals.longdocs; one Markdown section per company) at each
size, summarises it with map-reduce on the given model, and prints a table plus one JSON line.

Example:
    python benchmarks/doc_scaling.py --sizes 64K,256K,1M            # embedded SmolLM2-135M on llama.cpp
    python benchmarks/doc_scaling.py --endpoint http://127.0.0.1:8000 --sizes 1M --budget 4000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

from assay.bench.resources import MemorySampler
from assay.client import Client
from assay.doc.core import summarize
from assay.engines import provide
from assay.evals.longdocs import company_document, make_company


def register(n_bytes: int, section_chars: int = 4000) -> str:
    parts, size, i = ["# Regional company register"], 0, 0
    while size < n_bytes:
        c = make_company(i)
        body = company_document(c, section_chars, seed=i).split("\n\n", 1)[1]
        section = f"## {c.name}\n\n{body}"
        parts.append(section)
        size += len(section) + 2
        i += 1
    return "\n\n".join(parts)[:n_bytes]


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(s[-1], 1)
    return int(float(s.rstrip("KM")) * mult)


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # unwind: stop the engine
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64K,256K")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--model", default=None)
    ap.add_argument("--endpoint", default=None)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with provide(model=args.model, endpoints=args.endpoint) as eps:
        for size in [parse_size(s) for s in args.sizes.split(",")]:
            text = register(size)
            with tempfile.TemporaryDirectory() as cache:  # cold cache: measure the full cost
                async def go():
                    async with Client(eps) as c:
                        return await summarize(c, text, budget=args.budget, concurrency=args.concurrency,
                                               cache_dir=Path(cache))

                with MemorySampler(pid=eps[0].pid, interval_s=0.5) as mem:
                    t0 = time.perf_counter()
                    res = asyncio.run(go())
                    wall = time.perf_counter() - t0
            rows.append({"bytes": len(text.encode()), "doc_tokens": res.doc_tokens, "chunks": len(res.chunks),
                         "levels": res.levels, "requests": res.requests, "prompt_tokens": res.prompt_tokens,
                         "completion_tokens": res.completion_tokens, "wall_s": round(wall, 1),
                         "exact_tokens": res.token_count_exact,
                         "engine_peak_rss_mib": round(mem.peak_rss / 2**20) if mem.peak_rss else None,
                         "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
            r = rows[-1]
            print(f"{r['bytes']:>9,} B  {r['doc_tokens']:>8,} tok  {r['chunks']:>4} chunks  {r['levels']} levels  "
                  f"{r['requests']:>4} req  {r['completion_tokens']:>7,} out tok  {r['wall_s']:>8.1f} s  "
                  f"engine {r['engine_peak_rss_mib']} MiB  client {r['client_peak_rss_mib']} MiB", flush=True)
    print(json.dumps({"model": eps[0].model, "budget": args.budget, "runs": rows}))


if __name__ == "__main__":
    main()
