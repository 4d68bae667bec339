"""Already-running OpenAI-compatible servers (vLLM, llama.cpp, Ollama, SGLang, a hosted API)."""

from __future__ import annotations

import httpx

from assay.engines import Endpoint, Engine, capabilities, register, sniff
from assay.errors import EndpointUnreachable, RequestError


def normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    if not url.endswith("/v1"):
        url += "/v1"
    return url


class RemoteEngine(Engine):
    """A server of unknown kind behind a URL: assay cannot start it and assumes only what OpenAI's API promises."""

    name, startable = "remote", False


ENGINE = register(RemoteEngine())


def _sniff_engine(root: str, headers: dict) -> tuple[str, str | None]:
    """Best effort: the first registered engine that recognises the server (``Engine.sniff``), else "remote"."""
    return sniff(root, headers) or (ENGINE.name, None)


def connect(urls: list[str], api_key: str | None = None, model: str | None = None,
            probe: bool = False) -> list[Endpoint]:
    """Endpoints for running servers, each with what it says about its model (``extra["identity"]``; ``probe``: also
    the digest of its greedy answer to a fixed prompt, see ``engines.identity``)."""
    from assay.engines.identity import remote_identity

    out = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    for raw in urls:
        base = normalise(raw)
        try:
            r = httpx.get(f"{base}/models", timeout=10.0, headers=headers)
        except httpx.HTTPError as e:
            raise EndpointUnreachable(
                f"endpoint {base} unreachable ({type(e).__name__}): start a server there or fix --endpoint"
            ) from None
        if r.status_code in (401, 403):
            raise RequestError(f"endpoint {base} refused the API key (HTTP {r.status_code}): set --api-key or ASSAY_API_KEY",
                               status=r.status_code)
        if r.status_code != 200:
            raise EndpointUnreachable(f"endpoint {base}/models answered HTTP {r.status_code}: is it OpenAI-compatible?")
        models = [m.get("id") for m in (r.json().get("data") or []) if m.get("id")]
        chosen = model if model in models else (models[0] if models and not model else model)
        if chosen is None:
            raise EndpointUnreachable(f"endpoint {base} lists no models: pass --model NAME")
        entry = next((m for m in r.json().get("data") or [] if m.get("id") == chosen), {})
        engine, version = _sniff_engine(base.removesuffix("/v1"), headers)
        out.append(Endpoint(base_url=base, model=chosen, api_key=api_key, engine=engine, engine_version=version,
                            context=entry.get("max_model_len"), caps=capabilities(engine),
                            extra={"identity": remote_identity(base, chosen, headers=headers, probe=probe)}))
    return out
