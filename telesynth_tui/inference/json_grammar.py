"""JSON-schema grammars for llama.cpp that only admit strictly valid JSON.

llama-cpp-python's schema converter lets raw control characters (U+0000-U+001F) into strings,
which `json.loads` rejects; the string character rule is tightened here. Lengths stay bounded by
the schema's maxLength / maxItems.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CHAR_RULE_RE = re.compile(r'^char ::= \[\^"\\\\\]', re.MULTILINE)
_STRICT_CHAR = r'char ::= [^"\\\x00-\x1F\x7F]'
# "(char (char (char)?)?)?": the converter's spelling of char{0,3} (for any rule name, as
# patterns give their own); llama.cpp has {m,n}
_NESTED_OPTIONAL_RE = re.compile(r"\((?:([\w-]+) \()*([\w-]+)(?:\)\?)+")


class SchemaError(ValueError):
    """A JSON schema the grammar converter cannot handle."""


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except (AssertionError, KeyError, ValueError, TypeError) as exc:
        raise SchemaError(f"unsupported JSON schema: {exc}") from None
    if "char ::=" in gbnf:
        gbnf, n = _CHAR_RULE_RE.subn(lambda _: _STRICT_CHAR, gbnf)
        if n != 1:
            raise SchemaError("unexpected grammar from the schema converter (char rule)")
    return _NESTED_OPTIONAL_RE.sub(_repetition, gbnf)


def _repetition(match: re.Match[str]) -> str:
    text = match.group()
    name = match.group(2)
    n = len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text))
    if text.count("(") != n or text.count(")?") != n or text.count(" (") != n - 1:
        return text
    return f"{name}{{0,{n}}}"


def parse_json_output(text: str) -> Any:
    """Parse a constrained generation; raises json.JSONDecodeError for the caller to record."""
    return json.loads(text)
