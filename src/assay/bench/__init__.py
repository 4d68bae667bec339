"""Performance: ``assay bench`` (latency, throughput, memory, roofline) and ``assay plan`` (what fits where).

Modules: ``sse`` (lean streaming client — bench never goes through the openai SDK), ``loadgen`` (closed loop,
open-loop Poisson from intended send times), ``metrics`` (vLLM bench serve definitions), ``workloads``, ``resources``
(psutil / NVML sampling), ``roofline`` (measured bandwidth ÷ bytes per token), ``crosscheck`` (llama.cpp's own
timings), ``run`` (orchestration and the run folder), ``selftest`` (the generator's own ceiling), ``plan`` + ``gpus``
+ ``gguf_meta`` (memory planner).

Example:
    assay bench --workload seed
    assay plan --model qwen3-4b-instruct-2507 --gpu h100
"""
