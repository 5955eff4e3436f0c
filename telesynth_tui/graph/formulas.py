"""Formulas: TOML loading and a safe expression evaluator (syntax tree walk, never `eval`)."""

from __future__ import annotations

import ast
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from telesynth_tui.graph.issues import ImportIssue

# --- table-driven telecom functions -------------------------------------------------------

# TS 38.214 Table 5.2.2.1-2 (CQI table 1, up to 64QAM) and 5.2.2.1-3 (table 2, up to 256QAM):
# spectral efficiency in bit/s/Hz for CQI 1..15 (CQI 0 = out of range).
CQI_EFFICIENCY: dict[int, tuple[float, ...]] = {
    1: (0.1523, 0.2344, 0.3770, 0.6016, 0.8770, 1.1758, 1.4766, 1.9141, 2.4063, 2.7305, 3.3223,
        3.9023, 4.5234, 5.1152, 5.5547),
    2: (0.1523, 0.3770, 0.8770, 1.4766, 1.9141, 2.4063, 2.7305, 3.3223, 3.9023, 4.5234, 5.1152,
        5.5547, 6.2266, 6.9141, 7.4063),
}  # fmt: skip

# TS 38.101-1 Table 5.3.2-1, FR1 maximum transmission bandwidth configuration N_RB.
NR_MAX_PRB: dict[int, dict[float, int]] = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133,
         60: 162, 70: 189, 80: 217, 90: 245, 100: 273},
    60: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 35: 44, 40: 51, 45: 58, 50: 65, 60: 79, 70: 93,
         80: 107, 90: 121, 100: 135},
}  # fmt: skip

# TS 36.101 Table 5.6-1: channel bandwidth (MHz) -> transmission bandwidth configuration N_RB.
LTE_PRB: dict[float, int] = {1.4: 6, 3: 15, 5: 25, 10: 50, 15: 75, 20: 100}


class FormulaError(ValueError):
    """An expression that cannot be parsed or evaluated."""


def cqi_efficiency(cqi: float, table: float = 1) -> float:
    index, tbl = int(cqi), int(table)
    if index != cqi or tbl not in CQI_EFFICIENCY or not 0 <= index <= 15:
        raise FormulaError(f"cqi_efficiency: no CQI {cqi:g} in table {table:g}")
    return 0.0 if index == 0 else CQI_EFFICIENCY[tbl][index - 1]


def nr_max_prb(bandwidth_mhz: float, scs_khz: float) -> float:
    prbs = NR_MAX_PRB.get(int(scs_khz), {}).get(bandwidth_mhz)
    if prbs is None:
        raise FormulaError(f"nr_max_prb: no FR1 entry for {bandwidth_mhz:g} MHz at {scs_khz:g} kHz")
    return float(prbs)


def lte_prb(bandwidth_mhz: float) -> float:
    prbs = LTE_PRB.get(bandwidth_mhz)
    if prbs is None:
        raise FormulaError(f"lte_prb: no LTE channel bandwidth of {bandwidth_mhz:g} MHz")
    return float(prbs)


def erlang_b(traffic_erl: float, channels: float) -> float:
    """Blocking probability by the stable recursion B(m) = A·B(m-1) / (m + A·B(m-1))."""
    if channels != int(channels) or channels < 0 or traffic_erl < 0:
        raise FormulaError("erlang_b: needs traffic >= 0 and a whole number of channels >= 0")
    blocking = 1.0
    for m in range(1, int(channels) + 1):
        blocking = traffic_erl * blocking / (m + traffic_erl * blocking)
    return blocking


def _checked_log(fn: Callable[[float], float]) -> Callable[[float], float]:
    def wrapped(x: float) -> float:
        if x <= 0:
            raise FormulaError(f"logarithm of a non-positive value ({x:g})")
        return fn(x)

    return wrapped


FUNCTIONS: dict[str, Callable[..., float]] = {
    "log10": _checked_log(math.log10),
    "log2": _checked_log(math.log2),
    "ln": _checked_log(math.log),
    "exp": math.exp,
    "sqrt": math.sqrt,
    "abs": abs,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "atan": math.atan,
    "radians": math.radians,
    "degrees": math.degrees,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
    "db_to_linear": lambda x: 10 ** (x / 10),
    "linear_to_db": lambda x: 10 * _checked_log(math.log10)(x),
    "dbm_to_mw": lambda x: 10 ** (x / 10),
    "mw_to_dbm": lambda x: 10 * _checked_log(math.log10)(x),
    "dbm_to_w": lambda x: 10 ** ((x - 30) / 10),
    "w_to_dbm": lambda x: 10 * _checked_log(math.log10)(x) + 30,
    "erlang_b": erlang_b,
    "cqi_efficiency": cqi_efficiency,
    "nr_max_prb": nr_max_prb,
    "lte_prb": lte_prb,
}

CONSTANTS: dict[str, float] = {
    "pi": math.pi,
    "e": math.e,
    "c": 299_792_458.0,
    "k_B": 1.380649e-23,
}

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


@dataclass(frozen=True)
class Expression:
    """A parsed, validated formula expression."""

    text: str
    tree: ast.expr
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Expression:
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise FormulaError(f"cannot parse expression {text!r}: {exc.msg}") from None
        names: set[str] = set()
        for node in ast.walk(tree):
            _check_node(node)
            if isinstance(node, ast.Name) and node.id not in CONSTANTS:
                names.add(node.id)
        return cls(text=text, tree=tree, names=frozenset(names - FUNCTIONS.keys()))

    def evaluate(self, values: Mapping[str, float]) -> float:
        missing = self.names - values.keys()
        if missing:
            raise FormulaError(f"no value for {', '.join(sorted(missing))}")
        try:
            result = _eval(self.tree, values)
        except FormulaError:
            raise
        except (ArithmeticError, LookupError, ValueError, TypeError) as exc:
            raise FormulaError(f"cannot evaluate {self.text!r}: {exc}") from None
        if isinstance(result, complex) or not math.isfinite(result):
            raise FormulaError(f"{self.text!r} gives no finite real value")
        return float(result)


_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call,
    ast.Compare, ast.IfExp, ast.USub, ast.UAdd, *_BINARY, *_COMPARE,
)  # fmt: skip


def _check_node(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED):
        raise FormulaError(f"'{type(node).__name__}' is not allowed in a formula")
    if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
        raise FormulaError(f"only numbers are allowed, not {node.value!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise FormulaError(f"unknown function in {ast.unparse(node)!r}")
        if node.keywords:
            raise FormulaError("keyword arguments are not allowed in a formula")


def _eval(node: ast.expr, values: Mapping[str, float]) -> float:
    match node:
        case ast.Constant(value=value):
            return float(value)
        case ast.Name(id=name):
            return CONSTANTS[name] if name in CONSTANTS else float(values[name])
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, values)
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _eval(operand, values)
        case ast.BinOp(left=left, op=op, right=right):
            return _BINARY[type(op)](_eval(left, values), _eval(right, values))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _eval(left, values)
            for op, comp in zip(ops, comparators, strict=True):
                nxt = _eval(comp, values)
                if not _COMPARE[type(op)](current, nxt):
                    return 0.0
                current = nxt
            return 1.0
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body if _eval(test, values) else orelse, values)
        case ast.Call(func=ast.Name(id=name), args=args):
            return float(FUNCTIONS[name](*(_eval(arg, values) for arg in args)))
    raise FormulaError(f"cannot evaluate {ast.unparse(node)!r}")


# --- formula specs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    symbol: str
    unit: str
    min: float
    max: float
    description: str = ""
    integer: bool = False

    def check(self, value: float) -> None:
        if not self.min <= value <= self.max:
            raise FormulaError(
                f"{self.symbol}={value:g} {self.unit} is outside [{self.min:g}, {self.max:g}]"
            )
        if self.integer and value != int(value):
            raise FormulaError(f"{self.symbol} must be a whole number, got {value:g}")


@dataclass(frozen=True)
class Example:
    inputs: dict[str, float]
    output: float
    tolerance: float


@dataclass(frozen=True)
class FormulaSpec:
    id: str
    name: str
    expression: str
    output_unit: str
    variables: list[Variable]
    output_symbol: str = ""
    description: str = ""
    reference: str = ""
    entity: str = ""
    example: Example | None = None
    parsed: Expression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = Expression.parse(self.expression)
        declared = {v.symbol for v in self.variables}
        undefined = parsed.names - declared
        if undefined:
            raise FormulaError(f"undefined variable(s) {', '.join(sorted(undefined))}")
        unused = declared - parsed.names
        if unused:
            raise FormulaError(f"declared but unused variable(s) {', '.join(sorted(unused))}")
        object.__setattr__(self, "parsed", parsed)

    def evaluate(self, inputs: Mapping[str, float], *, check_ranges: bool = True) -> float:
        if check_ranges:
            for var in self.variables:
                if var.symbol in inputs:
                    var.check(float(inputs[var.symbol]))
        return self.parsed.evaluate(inputs)

    def to_record(self) -> dict[str, object]:
        return {
            "slug": self.id,
            "name": self.name,
            "description": self.description,
            "expression": self.expression,
            "output_symbol": self.output_symbol,
            "output_unit": self.output_unit,
            "variables": [vars(v) for v in self.variables],
            "example": vars(self.example) if self.example else None,
            "reference": self.reference,
        }


def formula_from_mapping(raw: Mapping[str, object]) -> FormulaSpec:
    """Build a FormulaSpec from a TOML table; raises FormulaError naming what is wrong."""
    try:
        variables = [
            Variable(
                symbol=str(v["symbol"]),
                unit=str(v.get("unit", "")),
                min=float(v["min"]),
                max=float(v["max"]),
                description=str(v.get("description", "")),
                integer=bool(v.get("integer", False)),
            )
            for v in raw.get("variables", [])  # type: ignore[union-attr]
        ]
        ex = raw.get("example")
        example = None
        if isinstance(ex, Mapping):
            example = Example(
                inputs={str(k): float(x) for k, x in ex["inputs"].items()},
                output=float(ex["output"]),
                tolerance=float(ex.get("tolerance", 1e-6)),
            )
        spec = FormulaSpec(
            id=str(raw["id"]),
            name=str(raw["name"]),
            expression=str(raw["expression"]),
            output_unit=str(raw.get("output_unit", "")),
            output_symbol=str(raw.get("output_symbol", "")),
            variables=variables,
            description=str(raw.get("description", "")),
            reference=str(raw.get("reference", "")),
            entity=str(raw.get("entity", "")),
            example=example,
        )
    except KeyError as exc:
        raise FormulaError(f"missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FormulaError):
            raise
        raise FormulaError(f"malformed field: {exc}") from None
    if example is not None:
        got = spec.evaluate(example.inputs)
        if abs(got - example.output) > example.tolerance:
            raise FormulaError(
                f"worked example gives {got:.6g}, not {example.output:g} ± {example.tolerance:g}"
            )
    return spec


def _formula_lines(text: str) -> list[int]:
    """1-based line numbers of each `[[formula]]` header, to point errors at a line."""
    return [i for i, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[formula]]"]


def load_formula_file(path: Path) -> tuple[list[FormulaSpec], list[ImportIssue]]:
    """Parse a TOML formula file; each bad formula becomes an issue, the rest still load."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        return [], [ImportIssue(path, None, "not valid UTF-8")]
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        return [], [ImportIssue(path, int(found[1]) if found else None, f"invalid TOML: {exc}")]
    tables = data.get("formula", [])
    if not isinstance(tables, list) or not tables:
        return [], [ImportIssue(path, None, "no [[formula]] tables")]
    lines = _formula_lines(text)
    specs: list[FormulaSpec] = []
    issues: list[ImportIssue] = []
    seen: set[str] = set()
    for index, raw in enumerate(tables):
        line = lines[index] if index < len(lines) else None
        label = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            spec = formula_from_mapping(raw)
        except FormulaError as exc:
            issues.append(ImportIssue(path, line, f"formula {label}: {exc}"))
            continue
        if spec.id in seen:
            issues.append(ImportIssue(path, line, f"formula {label}: duplicate id"))
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs, issues
