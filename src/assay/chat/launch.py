"""Start the Chainlit app (``chainlit run``, headless, in its own process group) against given endpoints.

Chainlit reads ``.chainlit/config.toml``, ``chainlit.md`` and ``public/`` from its app root and writes uploads to
``.files/`` there, so the app runs from a per-user folder (``<ASSAY_HOME>/chat/app``) that this module fills from the
templates shipped in the package on every start (edits to the shipped config are overwritten: settings belong in
``assay chat`` options). The endpoints, the history path and the auth mode reach the app through environment
variables (``ASSAY_CHAT_*``); ``chainlit run`` reads ``CI``/``DEBUG``/``WATCH``/... as its own flags (``CI`` even
replaces ``OPENAI_API_KEY``), so those are removed from the child's environment.

Example:
    from assay.chat.launch import ChatApp
    from assay.engines import Endpoint
    with ChatApp([Endpoint("http://127.0.0.1:8000/v1", "smollm2-135m")], port=8501) as app:
        print(app.url)      # open it in a browser
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assay.chat.history import create_schema, default_db_path

if TYPE_CHECKING:
    from assay.engines import Endpoint

PACKAGE_DIR = Path(__file__).resolve().parent
APP_PY = PACKAGE_DIR / "app.py"
# Environment variables chainlit's click CLI maps onto its own flags (auto_envvar_prefix="CHAINLIT" plus these).
_CHAINLIT_FLAG_ENV = ("CI", "DEBUG", "WATCH", "HEADLESS", "NO_CACHE", "RUN_TARGET")


def home() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("ASSAY_HOME") or user_data_dir("assay"))


def prepare_app_dir(root: Path | None = None) -> Path:
    """Fill the app root with the shipped config, welcome page and CSS. Returns it."""
    root = Path(root) if root else home() / "chat" / "app"
    (root / ".chainlit").mkdir(parents=True, exist_ok=True)
    (root / "public").mkdir(exist_ok=True)
    shutil.copyfile(PACKAGE_DIR / ".chainlit" / "config.toml", root / ".chainlit" / "config.toml")
    shutil.copyfile(PACKAGE_DIR / "chainlit.md", root / "chainlit.md")
    # public/ with its subfolders: elements/ holds the arena's custom element (ArenaPair.jsx)
    shutil.copytree(PACKAGE_DIR / "public", root / "public", dirs_exist_ok=True)
    return root


def auth_secret(root: Path) -> str:
    """CHAINLIT_AUTH_SECRET signs the login cookie; kept in the app dir so a restart does not log the user out."""
    if os.environ.get("CHAINLIT_AUTH_SECRET"):
        return os.environ["CHAINLIT_AUTH_SECRET"]
    f = root / ".auth_secret"
    if not f.exists():
        f.write_text(secrets.token_urlsafe(48))
        f.chmod(0o600)
    return f.read_text().strip()


def endpoints_env(endpoints: "list[Endpoint]") -> str:
    return json.dumps([{"base_url": e.base_url, "model": e.model, "api_key": e.api_key} for e in endpoints])


def child_env(endpoints: "list[Endpoint]", db: Path, root: Path, *, password: str | None = None,
              user: str | None = None, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CHAINLIT_FLAG_ENV}
    env.update({
        "CHAINLIT_APP_ROOT": str(root),
        "CHAINLIT_AUTH_SECRET": auth_secret(root),
        "ASSAY_CHAT_ENDPOINTS": endpoints_env(endpoints),
        "ASSAY_CHAT_DB": str(db),
        "PYTHONUNBUFFERED": "1",
    })
    if password is not None:
        env["ASSAY_CHAT_PASSWORD"] = password
    if user is not None:
        env["ASSAY_CHAT_USER"] = user
    env.update(extra or {})
    return env


def _check_port(host: str, port: int) -> None:
    from assay.common import check_port_free

    check_port_free(host, port, reuse_addr=True)  # a port a previous run of the app left in TIME_WAIT is free


class ChatApp:
    """The Chainlit app as a managed child process. ``start()`` returns once ``/health`` answers."""

    def __init__(self, endpoints: "list[Endpoint]", *, host: str = "127.0.0.1", port: int = 8501,
                 db: str | Path | None = None, app_dir: str | Path | None = None, password: str | None = None,
                 user: str | None = None, log_path: str | Path | None = None, extra_env: dict | None = None):
        from assay.engines import log_dir

        if not endpoints:
            raise ValueError("ChatApp needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.host, self.port = host, port
        self.db = Path(db).expanduser() if db else default_db_path()
        self.app_dir = Path(app_dir) if app_dir else None
        self.password, self.user = password, user
        self.log_path = Path(log_path) if log_path else log_dir() / f"chat-{port}.log"
        self.extra_env = extra_env
        self.process = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 90.0) -> "ChatApp":
        from assay.engines._process import ManagedProcess

        _check_port(self.host, self.port)
        root = prepare_app_dir(self.app_dir)
        create_schema(self.db)
        env = child_env(self.endpoints, self.db, root, password=self.password, user=self.user, extra=self.extra_env)
        cmd = [sys.executable, "-m", "chainlit", "run", str(APP_PY), "--headless",
               "--host", self.host, "--port", str(self.port)]
        self.process = ManagedProcess(cmd, self.log_path, env=env)
        self.process.spawn()
        self.process.wait_ready(f"{self.url}/auth/config", timeout_s, name="chainlit")
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace_s=5.0)
            self.process = None

    def __enter__(self) -> "ChatApp":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

