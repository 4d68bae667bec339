"""``assay doc``: long documents by chunk -> summarise -> aggregate; grounded questions; schema extraction."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import ENGINE_ARGS, engine_options, one_line_errors

doc_app = typer.Typer(help="Long documents: summarize (map-reduce), ask (BM25-grounded), extract (JSON Schema).",
                      no_args_is_help=True)

BudgetOpt = Annotated[int, typer.Option("--budget", help="Token budget per model request (prompt + answer).")]


def _run(coro_factory, eng):
    import asyncio

    from assay.client import Client

    with eng.provide() as eps:
        async def go():
            async with Client(eps) as client:
                return await coro_factory(client)

        return asyncio.run(go())


@doc_app.command("summarize", context_settings=ENGINE_ARGS)
@one_line_errors
@engine_options
def summarize_cmd(
    eng,
    file: Annotated[Path, typer.Argument(help=".txt, .md or .pdf file")],
    budget: BudgetOpt = 2000,
    style: Annotated[str, typer.Option(help="brief or detailed")] = "brief",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the Markdown summary here.")] = None,
    concurrency: Annotated[int, typer.Option(help="Chunk summaries in flight.")] = 4,
):
    """Summarise a document: whole if it fits the budget, else map-reduce over structure-aware chunks (cached, resumable)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from assay.doc.core import read_document, summarize

    text = read_document(file)
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        res = _run(lambda c: summarize(c, text, budget=budget, style=style, concurrency=concurrency,
                                       progress=progress), eng)
    md = res.markdown(file.name)
    if out:
        out.write_text(md)
    print(md)
    err.print(f"{len(res.chunks)} chunks, {res.levels} reduce level(s), {res.requests} requests "
              f"({res.cached} cached), {res.prompt_tokens} prompt + {res.completion_tokens} completion tokens, "
              f"{res.wall_s:.1f}s" + ("" if res.token_count_exact else "; token counts ESTIMATED at 4 chars/token")
              + (f"; written to {out}" if out else ""))
    print(json.dumps({"file": str(file), "chars": len(text), "doc_tokens": res.doc_tokens, "chunks": len(res.chunks),
                      "levels": res.levels, "requests": res.requests, "cached": res.cached,
                      "prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
                      "wall_s": round(res.wall_s, 2), "out": str(out) if out else None}))


@doc_app.command("ask", context_settings=ENGINE_ARGS)
@one_line_errors
@engine_options
def ask_cmd(
    eng,
    file: Annotated[Path, typer.Argument(help=".txt, .md or .pdf file")],
    question: Annotated[str, typer.Argument(help="The question.")],
    budget: BudgetOpt = 2000,
):
    """Answer a question from the most relevant chunks (BM25), citing sections; says so when the document lacks it."""
    from assay.doc.core import ask, read_document

    text = read_document(file)
    ans = _run(lambda c: ask(c, text, question, budget=budget), eng)
    print(ans.text)
    if ans.found:
        labels = {c.id: c.label for c in ans.chunks}
        print("\nSources: " + "; ".join(labels[c] for c in ans.citations if c in labels))
    print(json.dumps({"found": ans.found, "citations": ans.citations, "excerpts": [c.id for c in ans.chunks]}))


@doc_app.command("extract", context_settings=ENGINE_ARGS)
@one_line_errors
@engine_options
def extract_cmd(
    eng,
    file: Annotated[Path, typer.Argument(help=".txt, .md or .pdf file")],
    schema: Annotated[Path, typer.Option("--schema", help="JSON Schema file the answer must satisfy.")],
    budget: BudgetOpt = 3000,
    constrained: Annotated[bool, typer.Option("--constrained/--free", help="Use the engine's JSON-schema decoding.")] = True,
):
    """Extract structured data: constrained decoding when available, validated with jsonschema, one retry."""
    from assay.doc.core import extract, read_document
    from assay.errors import DataError

    text = read_document(file)
    try:
        schema_obj = json.loads(schema.read_text())
    except OSError:
        raise DataError(f"schema file not found: {schema}") from None
    except ValueError as e:
        raise DataError(f"schema file {schema} is not valid JSON: {e}") from None
    res = _run(lambda c: extract(c, text, schema_obj, budget=budget, constrained=constrained), eng)
    if res.errors:
        print(f"first attempt invalid ({res.errors[0]}); the retry succeeded", file=sys.stderr)
    print(json.dumps(res.data, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(doc_app, name="doc")
