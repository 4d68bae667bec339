"""Judge prompt templates: versioned text files in ``assay/judge/templates/`` (``<name>.v<N>.txt``).

A template file is a few ``# key: value`` header lines (name, kind = rubric | pairwise, version, scale), then a
``[system]`` and a ``[user]`` section. Placeholders are ``{question}``, ``{answer}``, ``{reference}`` (rubric) and
``{question}``, ``{answer_a}``, ``{answer_b}`` (pairwise). The version *and* a digest of the file's text are part of
what identifies a judge pass, so editing a template without bumping its version still never mixes verdicts.

Example:
    from assay.judge.templates import load_template
    t = load_template("naturalness")
    msgs = t.render(question="Hi!", answer="Hello, how can I help?")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from assay.common import text_digest
from assay.errors import AssayError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.txt$")


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "rubric" | "pairwise"
    version: str
    system: str
    user: str
    digest: str  # of the whole file's text
    scale: tuple[int, int] | None = None  # rubric: (low, high)
    meta: dict = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """name.vN@digest: what a report prints and a judge record stores."""
        return f"{self.name}.v{self.version}@{self.digest}"

    def render(self, **values: str) -> list[dict]:
        """The chat messages for one judge call. A missing value is an error (a silent blank would skew verdicts)."""
        need = set(re.findall(r"\{(\w+)\}", self.user))
        missing = need - set(values)
        if missing:
            raise AssayError(f"judge template {self.name}: no value for {', '.join(sorted(missing))}")
        user = self.user
        for k in need:  # not str.format: the answers may hold braces (code, JSON)
            user = user.replace("{" + k + "}", values[k] if values[k] is not None else "")
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user}]


def parse_template(text: str, where: str = "template") -> Template:
    meta: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^#\s*(\w+):\s*(.*)$", line)
        if current is None and m:
            meta[m.group(1)] = m.group(2).strip()
            continue
        s = re.match(r"^\[(system|user)\]\s*$", line)
        if s:
            current = s.group(1)
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    for key in ("name", "kind", "version"):
        if key not in meta:
            raise AssayError(f"{where}: header '# {key}: ...' is missing")
    if meta["kind"] not in ("rubric", "pairwise"):
        raise AssayError(f"{where}: kind must be rubric or pairwise, not {meta['kind']!r}")
    if "user" not in sections:
        raise AssayError(f"{where}: no [user] section")
    scale = None
    if meta["kind"] == "rubric":
        lo, _, hi = meta.get("scale", "1-5").partition("-")
        scale = (int(lo), int(hi))
    return Template(name=meta["name"], kind=meta["kind"], version=meta["version"],
                    system="\n".join(sections.get("system", [])).strip(),
                    user="\n".join(sections["user"]).strip(), digest=text_digest(text, 12), scale=scale, meta=meta)


def available() -> dict[str, list[str]]:
    """name -> versions shipped, oldest first."""
    out: dict[str, list[str]] = {}
    for f in sorted(TEMPLATE_DIR.glob("*.txt")):
        m = _FILE.match(f.name)
        if m:
            out.setdefault(m.group("name"), []).append(m.group("version"))
    return {k: sorted(v, key=int) for k, v in out.items()}


def load_template(spec: str) -> Template:
    """``name`` (newest version), ``name.vN``, or a path to a template file of your own."""
    p = Path(spec)
    if p.suffix == ".txt" and p.is_file():
        return parse_template(p.read_text(encoding="utf-8"), str(p))
    name, _, version = spec.partition(".v")
    have = available()
    if name not in have:
        raise AssayError(f"no judge template {spec!r}: shipped ones are {', '.join(sorted(have))} "
                         "(or pass a path to a .txt template)")
    version = version or have[name][-1]
    f = TEMPLATE_DIR / f"{name}.v{version}.txt"
    if not f.is_file():
        raise AssayError(f"judge template {name!r} has no version {version} (versions: {', '.join(have[name])})")
    return parse_template(f.read_text(encoding="utf-8"), str(f))
