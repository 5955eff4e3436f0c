"""JSON-schema constraints that only admit strictly valid JSON: token masks from llguidance (what
the generator uses) and llama.cpp grammars (the measured reference).

llama-cpp-python's schema converter lets raw control characters (U+0000-U+001F) into strings,
which `json.loads` rejects; the string character rule is tightened here. Lengths stay bounded by
the schema's maxLength / maxItems.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # llguidance is imported when a grammar is built
    from llguidance._lib import JsonCompileOptions

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


# --- token masks (llguidance) --------------------------------------------------------------------
# Measured per token on SmolLM2's 49k vocabulary (bench/constrained.py): llguidance checks a
# sampled token in ~4 µs and masks the whole vocabulary in ~40 µs, where llama.cpp's grammar
# takes ~110 µs and ~67 ms. Strings never hold raw control characters (JSON forbids them).

JSON_OPTIONS: JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


def schema_to_llguidance(schema: dict[str, Any]) -> str:
    """The llguidance grammar of a JSON schema: compact JSON with json.dumps's separators."""
    import llguidance

    try:
        return str(
            llguidance.LLMatcher.grammar_from_json_schema(_bounded(schema), defaults=JSON_OPTIONS)
        )
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"unsupported JSON schema: {exc}") from None


_LIMIT = 10**15 - 1  # at most 15 digits, as llama.cpp's schema grammars allow


def _bounded(schema: Any) -> Any:
    """The schema as llama.cpp's converter reads it: numbers of at most 15 integer digits (a
    model cannot write digits until its token limit) and no properties beyond those listed
    unless `additionalProperties` says otherwise."""
    if isinstance(schema, list):
        return [_bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v) for k, v in schema.items()}
    if schema.get("type") in ("integer", "number"):
        out.setdefault("minimum", -_LIMIT)
        out.setdefault("maximum", _LIMIT)
    if schema.get("type") == "object":
        out.setdefault("additionalProperties", False)
    return out


class TokenMask:
    """One JSON-schema constraint over a llama.cpp vocabulary, used grammar last: `allows`
    checks and accepts the token the sampler chose; only when it is refused does `restrict`
    mask the logits of the whole vocabulary so the sampler chooses again among allowed tokens."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any], n_vocab: int) -> None:
        import llguidance

        self.matcher = llguidance.LLMatcher(tokenizer, schema_to_llguidance(schema))
        if self.matcher.is_error():
            raise SchemaError(f"unsupported JSON schema: {self.matcher.get_error()}")
        self.n_vocab = n_vocab
        self._bits = np.zeros((n_vocab + 31) // 32, dtype=np.int32)

    def allows(self, token: int) -> bool:
        """Accept `token` if the schema allows it here."""
        return bool(self.matcher.try_consume_tokens([token]) == 1)

    def restrict(self, logits: np.ndarray) -> None:
        """Set the logits of every token the schema refuses here to -inf, in place."""
        self.matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        allowed = np.unpackbits(self._bits.view(np.uint8), bitorder="little")[: self.n_vocab]
        logits[allowed == 0] = -np.inf

    @property
    def done(self) -> bool:
        """The JSON value is complete: only the end of the output may follow."""
        return bool(self.matcher.is_stopped())

    @property
    def error(self) -> str:
        return str(self.matcher.get_error()) if self.matcher.is_error() else ""


def llama_tokenizer(vocab: Any) -> Any:
    """llguidance's view of a llama.cpp vocabulary (about a second for 50k tokens: cache it)."""
    import warnings

    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():  # it reads token attributes through a deprecated name
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(vocab)
