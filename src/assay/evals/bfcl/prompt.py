"""What BFCL sends a model (written for assay after ``bfcl-eval==2026.3.23``): the Python hint added to every function
description, BFCL's default system prompt for prompted models, and the OpenAI ``tools`` for function-calling models.
"""

from __future__ import annotations

import copy
import json
import re

PYTHON_HINT = " Note that the provided function is in Python 3 syntax."

# BFCL's default prompt format: ret_fmt=python, tool_call_tag=False, func_doc_fmt=json, prompt_fmt=plaintext,
# style=classic. Persona and task are joined with no space, as BFCL's template does.
SYSTEM_PROMPT = (
    "You are an expert in composing functions."
    "You are given a question and a set of possible functions. Based on the question, you will need to make one or "
    "more function/tool calls to achieve the purpose. If none of the functions can be used, point it out. If the "
    "given question lacks the parameters required by the function, also point it out.\n\n"
    "You should only return the function calls in your response.\n\n"
    "If you decide to invoke any of the function(s), you MUST put it in the format of "
    "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)].  You SHOULD NOT "
    "include any other text in the response.\n\n"
    "At each turn, you should try your best to complete the tasks requested by the user within the current turn. "
    "Continue to output functions to call until you have fulfilled the user's request to the best of your ability. "
    "Once you have no more functions to call, the system will consider the current turn complete and proceed to the "
    "next turn or task.\n\n"
    "Here is a list of functions in json format that you can invoke.\n{functions}\n"
)

GORILLA_TO_OPENAPI = {
    "integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
    "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object", "tuple": "array",
    "any": "string", "byte": "integer", "short": "integer", "long": "integer", "double": "number", "char": "string",
    "ArrayList": "array", "Array": "array", "HashMap": "object",
}


def with_hint(functions: list[dict]) -> list[dict]:
    """The function docs as BFCL sends them for a Python category (a copy)."""
    out = copy.deepcopy(functions)
    for f in out:
        f["description"] = f.get("description", "") + PYTHON_HINT
    return out


def system_prompt(functions: list[dict]) -> str:
    return SYSTEM_PROMPT.replace("{functions}", json.dumps(with_hint(functions), indent=4))


def prompted_messages(question: list[dict], functions: list[dict]) -> list[dict]:
    """The first turn's messages with BFCL's system prompt first (joined to a system message the item has)."""
    msgs = [dict(m) for m in question]
    sp = system_prompt(functions)
    if msgs and msgs[0].get("role") == "system":
        msgs[0]["content"] = sp + "\n\n" + msgs[0]["content"]
    else:
        msgs.insert(0, {"role": "system", "content": sp})
    return msgs


def _cast(props: dict) -> dict:
    for key, value in props.items():
        if "type" not in value:
            value["type"] = "string"
        else:
            t = value["type"]
            if t == "float":
                value["format"] = "float"
                value["description"] = value.get("description", "") + " This is a float type value."
            value["type"] = GORILLA_TO_OPENAPI.get(t, "string")
        if value["type"] in ("array", "object"):
            if "properties" in value:
                value["properties"] = _cast(value["properties"])
            elif "items" in value and isinstance(value["items"], dict) and "type" in value["items"]:
                items = value["items"]
                items["type"] = GORILLA_TO_OPENAPI.get(items["type"], "string")
                if items["type"] == "array" and isinstance(items.get("items"), dict) and "type" in items["items"]:
                    items["items"]["type"] = GORILLA_TO_OPENAPI.get(items["items"]["type"], "string")
                elif items["type"] == "object" and "properties" in items:
                    items["properties"] = _cast(items["properties"])
    return props


def openai_tools(functions: list[dict]) -> list[dict]:
    """BFCL's ``convert_to_tool`` for an OpenAI chat-completions model: ``.`` in names becomes ``_``, Python type names
    become JSON Schema's (``float`` also says so in the description), the Python hint in each description."""
    out = []
    for f in with_hint(functions):
        f["name"] = re.sub(r"\.", "_", f["name"])
        params = f.setdefault("parameters", {})
        params["type"] = "object"
        params["properties"] = _cast(params.get("properties") or {})
        out.append({"type": "function", "function": f})
    return out
