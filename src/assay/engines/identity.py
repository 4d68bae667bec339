"""The exact model behind an endpoint: a content digest of the weights, the quantisation, the chat template's and the
tokenizer's digests — so two different files served under one name never share a run, and a model swapped behind a
URL is caught.

- A GGUF we serve (llama.cpp, or vLLM from its converted copy): ``gguf_identity(path)``. The weights' sha256 is
  computed once per file and cached by (path, size, mtime) in ``$ASSAY_HOME/digests.json`` (98 MB: ~0.3 s once).
  The quantisation is ggml's file type (``gguf.LlamaFileType``); the chat template digest is of
  ``tokenizer.chat_template``; the tokenizer digest covers every ``tokenizer.*`` entry, the 49k-entry vocabulary and
  merges included (hashed from the header's raw bytes, no decoding).
- A remote URL: ``remote_identity(base_url)`` — what it exposes: its ``/v1/models`` entry, llama.cpp servers'
  ``/props`` (model path, chat template, build), vLLM's ``/version``; and, with ``probe=True``, the greedy token ids
  and top-5 alternatives of a fixed prompt (``probe_digest``), which change when the weights do even if every name
  stays the same.

``fingerprint_part(identity)`` is the part that enters a run's fingerprint: digests, not paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from assay.common import file_digest, stable_hash, text_digest, write_json_atomic

DIGESTS = "digests.json"
PROBE_PROMPT = "Continue the sequence: 2, 3, 5, 7, 11,"
# what enters the fingerprint (a path, a build or a served name does not make another model)
FINGERPRINT_KEYS = ("format", "weights_sha256", "quantisation", "chat_template_sha256", "tokenizer_sha256",
                    "source_weights_sha256", "served_dtype", "remote_sha256", "probe_sha256")


def _home() -> Path:
    from assay.engines import assay_home

    return assay_home()


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file (or of a folder's ``*.safetensors`` / ``*.gguf`` / ``*.bin`` files, name by name),
    cached by path, size and modification time."""
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".safetensors", ".gguf", ".bin") and f.is_file())
        return text_digest("\n".join(f"{f.name} {weights_sha256(f)}" for f in files))
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    cache_path = _home() / DIGESTS
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    digest = file_digest(p, None)
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{p}|")}  # an older version of the same path
    cache[key] = digest
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_path, cache)
    except OSError:
        pass  # an unwritable cache only costs the hash again next time
    return digest


def quantisation_name(file_type: int | None) -> str | None:
    """ggml's file type as a short name: 3 -> "q4_1", 1 -> "f16" (``gguf.LlamaFileType``)."""
    if file_type is None:
        return None
    try:
        import gguf

        name = gguf.LlamaFileType(int(file_type)).name
    except (ImportError, ValueError):
        return f"file_type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_").lower()


def gguf_identity(path: str | Path) -> dict[str, Any]:
    from assay.gguf_meta import read_metadata

    meta = read_metadata(path, digest_arrays=True)
    tok = {k: v for k, v in sorted(meta.items()) if k.startswith("tokenizer.") and k != "tokenizer.chat_template"}
    template = meta.get("tokenizer.chat_template")
    return {"format": "gguf", "path": str(Path(path).expanduser().resolve()), "weights_sha256": weights_sha256(path),
            "quantisation": quantisation_name(meta.get("general.file_type")),
            "chat_template_sha256": text_digest(template) if isinstance(template, str) else None,
            "tokenizer_sha256": stable_hash(tok), "name": meta.get("general.name")}


def converted_identity(gguf: str | Path, checkpoint: str | Path, dtype: str = "bf16") -> dict[str, Any]:
    """vLLM serving the bf16 copy converted from a GGUF: the copy's own digest, the source's, and its template and
    tokenizer (carried over from the GGUF)."""
    src = gguf_identity(gguf)
    return {**src, "format": "hf-from-gguf", "path": str(checkpoint), "weights_sha256": weights_sha256(checkpoint),
            "source_weights_sha256": src["weights_sha256"], "served_dtype": dtype,
            "quantisation": f"{dtype} (dequantised from {src['quantisation']})"}


def hf_identity(model_dir: str | Path) -> dict[str, Any]:
    """A local Hugging Face folder: weights digest, the dtype its config names, template and tokenizer files."""
    d = Path(model_dir)
    cfg: dict = {}
    try:
        cfg = json.loads((d / "config.json").read_text())
    except (OSError, ValueError):
        pass
    tok_files = [d / n for n in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt") if (d / n).is_file()]
    template = None
    try:
        template = json.loads((d / "tokenizer_config.json").read_text()).get("chat_template")
    except (OSError, ValueError):
        pass
    if template is None and (d / "chat_template.jinja").is_file():
        template = (d / "chat_template.jinja").read_text()
    return {"format": "hf", "path": str(d.resolve()), "weights_sha256": weights_sha256(d),
            "quantisation": (cfg.get("quantization_config") or {}).get("quant_method") or cfg.get("torch_dtype"),
            "chat_template_sha256": text_digest(json.dumps(template)) if template else None,
            "tokenizer_sha256": text_digest(" ".join(file_digest(f, None) for f in tok_files)) if tok_files else None}


def probe_digest(base_url: str, model: str, headers: dict | None = None, timeout_s: float = 60.0,
                 greedy_only: bool = False) -> str | None:
    """Greedy token ids and the top-5 alternatives' ids for a fixed prompt (4 tokens): a digest that moves when the
    weights do. Ids, not logprob values, so it is stable on the same server; ``greedy_only`` (the check during a run,
    when other requests share the batch) keeps only the chosen tokens. None where the server gives no logprobs."""
    try:
        r = httpx.post(f"{base_url}/chat/completions", timeout=timeout_s, headers=headers or {}, json={
            "model": model, "messages": [{"role": "user", "content": PROBE_PROMPT}], "max_tokens": 4,
            "temperature": 0.0, "top_p": 1.0, "logprobs": True, "top_logprobs": 5})
        content = ((r.json().get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
    except (httpx.HTTPError, ValueError, AttributeError, IndexError):
        return None
    if r.status_code != 200 or not content:
        return None
    steps = [[c.get("token"), sorted(t.get("token") for t in c.get("top_logprobs") or [])] for c in content]
    return stable_hash(steps) if not greedy_only else stable_hash([s[0] for s in steps])


def remote_identity(base_url: str, model: str, *, headers: dict | None = None, probe: bool = False,
                    timeout_s: float = 10.0) -> dict[str, Any]:
    """What a running server says about the model it serves (and, with ``probe``, how it answers a fixed prompt)."""
    root = base_url.removesuffix("/v1")
    seen: dict[str, Any] = {}
    try:
        r = httpx.get(f"{base_url}/models", timeout=timeout_s, headers=headers or {})
        entry = next((m for m in (r.json().get("data") or []) if m.get("id") == model), None)
        if entry is not None:  # "created" is the time of the answer on some servers (llama-server, vLLM)
            seen["models_entry"] = {k: v for k, v in entry.items() if k != "created"}
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    for route in ("/props", "/version"):
        try:
            r = httpx.get(f"{root}{route}", timeout=timeout_s, headers=headers or {})
            if r.status_code == 200:
                body = r.json()
                if isinstance(body, dict):
                    # volatile fields (slots in use, timings) would make every look a new model; llama-server's
                    # media_marker is random per start, so two replicas of one model would look like two models
                    seen[route] = {k: v for k, v in body.items() if k not in ("total_slots", "is_sleeping",
                                                                               "media_marker")}
        except (httpx.HTTPError, ValueError):
            pass
    # which routes answered this look: a look that could not reach one of them (a busy server past the timeout) says
    # nothing about the model, so ``changed`` compares only looks that saw the same routes
    out: dict[str, Any] = {"format": "remote", "remote_sha256": stable_hash(seen), "remote_routes": sorted(seen)}
    props = seen.get("/props") or {}
    if isinstance(props.get("chat_template"), str):
        out["chat_template_sha256"] = text_digest(props["chat_template"])
    if props.get("model_path"):
        out["path"] = props["model_path"]
    if probe:
        out["probe_sha256"] = probe_digest(base_url, model, headers)
        out["probe_greedy_sha256"] = probe_digest(base_url, model, headers, greedy_only=True)
    return out


def changed(before: dict | None, base_url: str, model: str, headers: dict | None = None) -> str | None:
    """Look again at a remote endpoint (its server facts; the greedy probe if ``before`` had one): None when it is
    the same model, else what moved, in a few words."""
    if not before or before.get("format") != "remote":
        return None
    now = remote_identity(base_url, model, headers=headers, probe=False)
    if set(before.get("remote_routes") or ()) - set(now.get("remote_routes") or ()):
        return None  # this look did not reach every route the first one did: no evidence either way
    if now.get("remote_sha256") != before.get("remote_sha256"):
        return f"server facts {before.get('remote_sha256')} -> {now.get('remote_sha256')}"
    if before.get("probe_greedy_sha256"):
        greedy = probe_digest(base_url, model, headers, greedy_only=True)
        if greedy is not None and greedy != before["probe_greedy_sha256"]:
            return f"probe answer {before['probe_greedy_sha256']} -> {greedy}"
    return None


def fingerprint_part(identity: dict | None) -> dict[str, Any] | None:
    """The digests that decide whether two runs used the same model (paths and names left out)."""
    if not identity:
        return None
    return {k: identity[k] for k in FINGERPRINT_KEYS if identity.get(k) is not None}


def same_model(a: dict | None, b: dict | None) -> bool:
    return fingerprint_part(a) == fingerprint_part(b)


def describe(identity: dict | None) -> str:
    """One line for people."""
    if not identity:
        return "model identity: unknown"
    parts = [identity.get("format", "?")]
    if identity.get("quantisation"):
        parts.append(str(identity["quantisation"]))
    if identity.get("weights_sha256"):
        parts.append(f"weights sha256 {identity['weights_sha256'][:12]}")
    if identity.get("remote_sha256"):
        parts.append(f"server facts {identity['remote_sha256'][:12]}")
    if identity.get("probe_sha256"):
        parts.append(f"probe {identity['probe_sha256'][:12]}")
    return "model identity: " + ", ".join(parts)
