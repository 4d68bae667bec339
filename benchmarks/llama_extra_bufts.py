"""Prefill and decode speed of the embedded model with llama.cpp's extra buffer types on vs off.

Extra buffer types hold both ggml's AMX path and its weight repacking, so turning them off (assay's fallback on AMX
CPUs whose probe crashed) can cost speed. Each setting runs in its own subprocess (a fresh model load), alternating
on/off, several rounds; the best round per setting is reported.

    python benchmarks/llama_extra_bufts.py [--rounds 3] [--prompt-tokens 512] [--gen-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import llama_cpp
import llama_cpp.llama_cpp as lib
extra, gguf, n_prompt, n_gen, threads = sys.argv[1] == "on", sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if not extra:
    orig = lib.llama_model_default_params
    def p():
        x = orig(); x.use_extra_bufts = False; return x
    lib.llama_model_default_params = p
llm = llama_cpp.Llama(model_path=gguf, n_ctx=n_prompt + n_gen + 16, n_threads=threads, n_threads_batch=threads,
                      n_batch=512, verbose=False)
toks = llm.tokenize(("The history of the printing press begins in the fifteenth century. " * 200).encode())[:n_prompt]
llm.eval(toks[:8]); llm.reset()  # warm-up
t0 = time.perf_counter(); llm.eval(toks); t1 = time.perf_counter()
out = []
for _ in range(n_gen):
    tok = llm.sample(temp=0.0)
    llm.eval([tok]); out.append(tok)
t2 = time.perf_counter()
print(json.dumps({"prefill_tok_s": len(toks) / (t1 - t0), "decode_tok_s": n_gen / (t2 - t1)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    from assay.engines import amx
    from assay.models import resolve

    gguf = str(resolve("smollm2-135m").gguf_path())
    best: dict[str, dict] = {}
    for _ in range(a.rounds):
        for setting in ("on", "off"):
            r = subprocess.run([sys.executable, "-c", CHILD, setting, gguf, str(a.prompt_tokens), str(a.gen_tokens),
                                str(a.threads)], capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                print(f"{setting}: failed ({r.returncode}): {r.stderr.strip()[-300:]}")
                continue
            got = json.loads(r.stdout.strip().splitlines()[-1])
            b = best.setdefault(setting, {"prefill_tok_s": 0.0, "decode_tok_s": 0.0})
            for k in b:
                b[k] = max(b[k], got[k])
    flags = amx.cpu_flags()
    print(f"CPU: {amx.cpu_model()}  AMX: {'yes' if amx.has_amx(flags) else 'no'}  threads: {a.threads}  "
          f"prompt {a.prompt_tokens} / generate {a.gen_tokens} tokens, best of {a.rounds}")
    print(f"{'extra buffer types':<20}{'prefill tok/s':>15}{'decode tok/s':>15}")
    for setting in ("on", "off"):
        if setting in best:
            print(f"{setting:<20}{best[setting]['prefill_tok_s']:>15.1f}{best[setting]['decode_tok_s']:>15.1f}")
    if len(best) == 2:
        print(f"off / on: prefill x{best['off']['prefill_tok_s'] / best['on']['prefill_tok_s']:.2f}, "
              f"decode x{best['off']['decode_tok_s'] / best['on']['decode_tok_s']:.2f}")


if __name__ == "__main__":
    main()
