"""Numbers with units in free text: parsing and unit-aware comparison (dB vs linear, Hz vs kHz/MHz,
dBm vs W). Never `eval`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# unit -> (dimension, factor to the dimension's base unit)
_LINEAR: dict[str, tuple[str, float]] = {
    "hz": ("frequency", 1.0),
    "khz": ("frequency", 1e3),
    "mhz": ("frequency", 1e6),
    "ghz": ("frequency", 1e9),
    "w": ("power", 1.0),
    "mw": ("power", 1e-3),
    "uw": ("power", 1e-6),
    "kw": ("power", 1e3),
    "m": ("length", 1.0),
    "km": ("length", 1e3),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "µs": ("time", 1e-6),
    "ns": ("time", 1e-9),
    "bit/s": ("rate", 1.0),
    "bps": ("rate", 1.0),
    "kbit/s": ("rate", 1e3),
    "kbps": ("rate", 1e3),
    "mbit/s": ("rate", 1e6),
    "mbps": ("rate", 1e6),
    "gbit/s": ("rate", 1e9),
    "gbps": ("rate", 1e9),
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1 / 3.6),
    "%": ("ratio", 0.01),
}
_LOG = {"db": "db", "dbm": "dbm", "dbw": "dbw", "dbi": "db", "dbd": "db", "dbc": "db"}
_UNIT_ALIASES = {
    "μs": "us",
    "bits/s": "bit/s",
    "b/s": "bit/s",
    "mb/s": "mbit/s",
    "gb/s": "gbit/s",
    "kb/s": "kbit/s",
    "hertz": "hz",
    "watts": "w",
    "watt": "w",
    "meters": "m",
    "metres": "m",
    "percent": "%",
}

_NUMBER = r"[-+−]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_UNIT = (
    r"(?:dBm|dBW|dBi|dBd|dBc|dB|[kMG]?Hz|[kmuµμ]?W|[kc]?m(?:/s)?|km/h|[mnuµμ]?s|[kMG]?bit/s"
    r"|[kMG]?bps|[kMG]?b/s|%)"
)
_QUANTITY_RE = re.compile(rf"({_NUMBER})\s*({_UNIT})?(?![\w/])")


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # as written ("" when none)
    position: int


def normalize_unit(unit: str) -> str:
    u = unit.strip()
    key = u.lower() if u not in ("mW", "MW") else ("mw" if u == "mW" else "megaw")
    return _UNIT_ALIASES.get(key, key)


def quantities(text: str) -> list[Quantity]:
    """Every number in the text with the unit written after it."""
    found = []
    for m in _QUANTITY_RE.finditer(text):
        raw = m.group(1).replace(",", "").replace("−", "-")
        try:
            value = float(raw)
        except ValueError:
            continue
        found.append(Quantity(value, m.group(2) or "", m.start()))
    return found


def final_quantity(text: str) -> Quantity | None:
    """The number an answer states as its result: after the last '=' if any, else the last
    number with a unit, else the last number."""
    found = quantities(text)
    if not found:
        return None
    eq = text.rfind("=")
    after = [q for q in found if q.position > eq] if eq >= 0 else []
    if after:
        return after[0]
    with_unit = [q for q in found if q.unit]
    return (with_unit or found)[-1]


def convert(value: float, unit: str, target: str) -> float | None:
    """`value` in `unit` expressed in `target`, or None when they do not convert."""
    a, b = normalize_unit(unit), normalize_unit(target)
    if a == b:
        return value
    if a in _LOG or b in _LOG:
        la, lb = _LOG.get(a), _LOG.get(b)
        if la and lb:
            if la == lb:
                return value
            offsets = {"dbm": 0.0, "dbw": 30.0}
            if la in offsets and lb in offsets:
                return value + offsets[la] - offsets[lb]
            return None
        # dBm/dBW <-> linear power
        if la in ("dbm", "dbw") and _LINEAR.get(b, ("",))[0] == "power":
            watts = 10 ** ((value + (30 if la == "dbw" else 0) - 30) / 10)
            return watts / _LINEAR[b][1]
        if lb in ("dbm", "dbw") and _LINEAR.get(a, ("",))[0] == "power":
            watts = value * _LINEAR[a][1]
            if watts <= 0:
                return None
            dbm = 10 * math.log10(watts) + 30
            return dbm - (30 if lb == "dbw" else 0)
        return None
    da, db = _LINEAR.get(a), _LINEAR.get(b)
    if da and db and da[0] == db[0]:
        return value * da[1] / db[1]
    return None


@dataclass(frozen=True)
class NumericCheck:
    ok: bool
    detail: str
    value: float | None = None


def check_numeric(
    text: str, truth: float, unit: str, rel_tol: float = 0.01, abs_tol: float = 1e-6
) -> NumericCheck:
    """Does the answer state `truth` (in `unit`, or a convertible unit) within tolerance?"""
    known = normalize_unit(unit) in _LINEAR or normalize_unit(unit) in _LOG
    q = final_quantity(text)
    if unit and not known:  # a unit we cannot convert (PRB, Erlang, ...): find it as written
        m = re.search(rf"({_NUMBER})\s*{re.escape(unit)}", text, re.IGNORECASE)
        if m:
            q = Quantity(float(m.group(1).replace(",", "").replace("−", "-")), "", m.start())
        elif q is not None:
            q = Quantity(quantities(text)[-1].value, "", 0)
    if q is None:
        return NumericCheck(False, "no number in the answer")
    value = q.value
    expected_unit = unit if known else ""
    if q.unit and expected_unit:
        converted = convert(q.value, q.unit, expected_unit)
        if converted is None:
            return NumericCheck(False, f"unit {q.unit} does not convert to {unit}", q.value)
        value = converted
    tolerance = max(abs(truth) * rel_tol, abs_tol)
    if abs(value - truth) <= tolerance:
        note = "" if q.unit or not expected_unit else " (unit not stated)"
        return NumericCheck(True, f"{value:.6g} matches {truth:.6g} {unit}{note}".strip(), value)
    return NumericCheck(
        False, f"{value:.6g} {expected_unit} is not {truth:.6g} {unit}".strip(), value
    )


def stated_values(text: str, symbols: set[str]) -> list[tuple[str, Quantity]]:
    """Assertions "symbol = number [unit]" in the text for the given symbols; a number that is
    followed by an operator ("P = 10*log10(...)") is an expression, not a stated value."""
    if not symbols:
        return []
    names = "|".join(re.escape(s) for s in sorted(symbols, key=len, reverse=True))
    pattern = re.compile(
        rf"(?<![\w.])({names})\s*=\s*({_NUMBER})(?!\d|[.,]\d)\s*({_UNIT})?(?!\s*[-+*/^(\w×·])"
    )
    found = []
    for m in pattern.finditer(text):
        try:
            value = float(m.group(2).replace(",", "").replace("−", "-"))
        except ValueError:
            continue
        found.append((m.group(1), Quantity(value, m.group(3) or "", m.start(2))))
    return found
