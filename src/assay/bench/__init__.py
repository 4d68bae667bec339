"""Performance: ``assay bench`` (latency, throughput, memory, roofline) and ``assay plan`` (what fits where).

Modules: ``sse`` (lean streaming client — bench never goes through the openai SDK), ``loadgen`` (closed loop,
open-loop Poisson from intended send times), ``metrics`` (vLLM bench serve definitions), ``workloads``, ``resources``
(psutil / NVML sampling), ``roofline`` (measured bandwidth ÷ bytes per token), ``run`` (orchestration, the run
folder, and the cross-check against the engine's own figures, which the engine supplies: ``engines.group_probe`` /
``request_probe``), ``selftest`` (the generator's own ceiling), ``plan`` + ``gpus`` (memory planner; GGUF facts from ``assay.gguf_meta``).

Example:
    assay bench --workload seed
    assay plan --model qwen3-4b-instruct-2507 --gpu h100
"""
