"""Formulas: TOML loading and a safe expression evaluator (syntax tree walk, never `eval`)."""

from __future__ import annotations

import ast
import math
import operator
import random
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from telesynth_tui.graph.issues import ImportIssue

# --- table-driven telecom functions -------------------------------------------------------

# TS 38.214 Table 5.2.2.1-2 (CQI table 1, up to 64QAM) and 5.2.2.1-3 (table 2, up to 256QAM):
# spectral efficiency in bit/s/Hz for CQI 1..15 (CQI 0 = out of range).
CQI_EFFICIENCY: dict[int, tuple[float, ...]] = {
    1: (
        0.1523,
        0.2344,
        0.3770,
        0.6016,
        0.8770,
        1.1758,
        1.4766,
        1.9141,
        2.4063,
        2.7305,
        3.3223,
        3.9023,
        4.5234,
        5.1152,
        5.5547,
    ),
    2: (
        0.1523,
        0.3770,
        0.8770,
        1.4766,
        1.9141,
        2.4063,
        2.7305,
        3.3223,
        3.9023,
        4.5234,
        5.1152,
        5.5547,
        6.2266,
        6.9141,
        7.4063,
    ),
}

# TS 38.101-1 Table 5.3.2-1, FR1 maximum transmission bandwidth configuration N_RB.
NR_MAX_PRB: dict[int, dict[float, int]] = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {
        5: 11,
        10: 24,
        15: 38,
        20: 51,
        25: 65,
        30: 78,
        35: 92,
        40: 106,
        45: 119,
        50: 133,
        60: 162,
        70: 189,
        80: 217,
        90: 245,
        100: 273,
    },
    60: {
        10: 11,
        15: 18,
        20: 24,
        25: 31,
        30: 38,
        35: 44,
        40: 51,
        45: 58,
        50: 65,
        60: 79,
        70: 93,
        80: 107,
        90: 121,
        100: 135,
    },
}

# TS 38.101-2 Table 5.3.2-1, FR2 maximum transmission bandwidth configuration N_RB.
NR_FR2_MAX_PRB: dict[int, dict[float, int]] = {
    60: {50: 66, 100: 132, 200: 264},
    120: {50: 32, 100: 66, 200: 132, 400: 264},
}

# TS 36.101 Table 5.6-1: channel bandwidth (MHz) -> transmission bandwidth configuration N_RB.
LTE_PRB: dict[float, int] = {1.4: 6, 3: 15, 5: 25, 10: 50, 15: 75, 20: 100}

MAX_ERLANG_CHANNELS = 100_000


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


def nr_prb_allowed(n_prb: float, scs_khz: float) -> float:
    """1 when n_prb is the maximum transmission bandwidth N_RB of some NR channel bandwidth at
    this subcarrier spacing (TS 38.101-1 FR1 or TS 38.101-2 FR2), else 0."""
    scs = int(scs_khz)
    allowed = {*NR_MAX_PRB.get(scs, {}).values(), *NR_FR2_MAX_PRB.get(scs, {}).values()}
    return 1.0 if n_prb in allowed else 0.0


def nr_max_prb_scs(scs_khz: float) -> float:
    """The largest N_RB any NR channel bandwidth has at this subcarrier spacing (FR1 and FR2):
    the most PRBs a bandwidth part at this numerology can hold."""
    scs = int(scs_khz)
    allowed = {*NR_MAX_PRB.get(scs, {}).values(), *NR_FR2_MAX_PRB.get(scs, {}).values()}
    if scs != scs_khz or not allowed:
        raise FormulaError(f"nr_max_prb_scs: no NR channel bandwidth at {scs_khz:g} kHz")
    return float(max(allowed))


def lte_prb(bandwidth_mhz: float) -> float:
    prbs = LTE_PRB.get(bandwidth_mhz)
    if prbs is None:
        raise FormulaError(f"lte_prb: no LTE channel bandwidth of {bandwidth_mhz:g} MHz")
    return float(prbs)


def erlang_b(traffic_erl: float, channels: float) -> float:
    """Blocking probability by the stable recursion B(m) = A·B(m-1) / (m + A·B(m-1))."""
    if channels != int(channels) or channels < 0 or traffic_erl < 0:
        raise FormulaError("erlang_b: needs traffic >= 0 and a whole number of channels >= 0")
    if channels > MAX_ERLANG_CHANNELS:
        raise FormulaError(f"erlang_b: more than {MAX_ERLANG_CHANNELS} channels")
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
    "nr_prb_allowed": nr_prb_allowed,
    "nr_max_prb_scs": nr_max_prb_scs,
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
        if len(text) > MAX_EXPRESSION_CHARS:
            raise FormulaError(
                f"expression is {len(text)} characters long, over the {MAX_EXPRESSION_CHARS} limit"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise FormulaError(f"cannot parse expression {_short(text)!r}: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise FormulaError(f"expression {_short(text)!r} is nested too deeply") from None
        names: set[str] = set()
        depth = _depth(tree)
        if depth > MAX_EXPRESSION_DEPTH:
            raise FormulaError(
                f"expression {_short(text)!r} is nested {depth} levels deep, over the "
                f"{MAX_EXPRESSION_DEPTH} limit"
            )
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


MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_DEPTH = 60


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _depth(tree: ast.AST) -> int:
    """Depth of the syntax tree, measured without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


_ALLOWED = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Compare,
    ast.IfExp,
    ast.USub,
    ast.UAdd,
    *_BINARY,
    *_COMPARE,
)


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
        case ast.Constant(value=int() | float() as value):  # checked: numbers only
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
            for cmp, comp in zip(ops, comparators, strict=True):
                nxt = _eval(comp, values)
                if not _COMPARE[type(cmp)](current, nxt):
                    return 0.0
                current = nxt
            return 1.0
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body if _eval(test, values) else orelse, values)
        case ast.Call(func=ast.Name(id=name), args=args):
            return float(FUNCTIONS[name](*(_eval(arg, values) for arg in args)))
    raise FormulaError(f"cannot evaluate {ast.unparse(node)!r}")


# --- formula specs --------------------------------------------------------------------------


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def round_sig(value: float, digits: int = 3) -> float:
    """`value` rounded to `digits` significant figures."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class Variable:
    """An input: its unit and valid set, a discrete list of `values` where the standard defines
    one (subcarrier spacings, alpha), otherwise the range [min, max] (whole numbers if
    `integer`)."""

    symbol: str
    unit: str
    min: float
    max: float
    description: str = ""
    integer: bool = False
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise FormulaError(f"variable {self.symbol}: min and max must be finite numbers")
        if self.min > self.max:
            raise FormulaError(
                f"variable {self.symbol}: min {self.min:g} is above max {self.max:g}"
            )
        if self.integer and math.ceil(self.min) > math.floor(self.max):
            raise FormulaError(
                f"variable {self.symbol}: no whole number in [{self.min:g}, {self.max:g}]"
            )
        for value in self.values:
            if not math.isfinite(value) or not self.min <= value <= self.max:
                raise FormulaError(
                    f"variable {self.symbol}: value {value:g} is outside "
                    f"[{self.min:g}, {self.max:g}]"
                )
            if self.integer and value != int(value):
                raise FormulaError(f"variable {self.symbol}: value {value:g} is not whole")

    def check(self, value: float) -> None:
        if self.values:
            if not any(_same(value, v) for v in self.values):
                listed = ", ".join(f"{v:g}" for v in self.values)
                raise FormulaError(
                    f"{self.symbol}={value:g} {self.unit} is not one of {listed}".replace("  ", " ")
                )
            return
        if not self.min <= value <= self.max:
            raise FormulaError(
                f"{self.symbol}={value:g} {self.unit} is outside [{self.min:g}, {self.max:g}]"
            )
        if self.integer and value != int(value):
            raise FormulaError(f"{self.symbol} must be a whole number, got {value:g}")

    def draw(self, rng: random.Random) -> float:
        """One value from the valid set: a listed value, a whole number, or a value of the range
        (log-uniform over ranges wider than 100x) rounded to 3 significant figures."""
        if self.values:
            return float(rng.choice(self.values))
        if self.integer:
            return float(rng.randint(math.ceil(self.min), math.floor(self.max)))
        if self.min > 0 and self.max / self.min > 100:
            value = math.exp(rng.uniform(math.log(self.min), math.log(self.max)))
        else:
            value = rng.uniform(self.min, self.max)
        return min(max(round_sig(value, 3), self.min), self.max)

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "symbol": self.symbol,
            "unit": self.unit,
            "min": self.min,
            "max": self.max,
            "description": self.description,
            "integer": self.integer,
        }
        if self.values:
            record["values"] = list(self.values)
        return record


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
    # validity conditions across inputs (expressions that must be true, e.g. "d_m > 4*h_t*h_r/l")
    conditions: tuple[str, ...] = ()
    parsed: Expression = field(init=False, repr=False, compare=False)
    parsed_conditions: tuple[Expression, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = Expression.parse(self.expression)
        declared = {v.symbol for v in self.variables}
        if len(declared) != len(self.variables):
            raise FormulaError("a variable is declared twice")
        undefined = parsed.names - declared
        if undefined:
            raise FormulaError(f"undefined variable(s) {', '.join(sorted(undefined))}")
        conditions = []
        for text in self.conditions:
            try:
                condition = Expression.parse(text)
            except FormulaError as exc:
                raise FormulaError(f"condition {_short(text)!r}: {exc}") from None
            unknown = condition.names - declared
            if unknown:
                raise FormulaError(
                    f"condition {_short(text)!r} names undeclared {', '.join(sorted(unknown))}"
                )
            conditions.append(condition)
        # an input may only bound the others (a frequency that places the breakpoint)
        unused = declared - parsed.names - {n for c in conditions for n in c.names}
        if unused:
            raise FormulaError(f"declared but unused variable(s) {', '.join(sorted(unused))}")
        object.__setattr__(self, "parsed", parsed)
        object.__setattr__(self, "parsed_conditions", tuple(conditions))

    def check_inputs(self, inputs: Mapping[str, float]) -> None:
        """Raise FormulaError unless every input is in its valid set and every condition holds."""
        for var in self.variables:
            if var.symbol in inputs:
                var.check(float(inputs[var.symbol]))
        for condition in self.parsed_conditions:
            if not condition.names <= inputs.keys():
                continue
            if not condition.evaluate(inputs):
                raise FormulaError(f"condition {condition.text!r} does not hold")

    def evaluate(self, inputs: Mapping[str, float], *, check_ranges: bool = True) -> float:
        if check_ranges:
            self.check_inputs(inputs)
        return self.parsed.evaluate(inputs)

    def to_record(self) -> dict[str, object]:
        return {
            "slug": self.id,
            "name": self.name,
            "description": self.description,
            "expression": self.expression,
            "output_symbol": self.output_symbol,
            "output_unit": self.output_unit,
            "variables": [v.to_record() for v in self.variables],
            "example": vars(self.example) if self.example else None,
            "reference": self.reference,
            "conditions": list(self.conditions),
        }


def sample_inputs(spec: FormulaSpec, rng: random.Random, attempts: int = 100) -> dict[str, float]:
    """Inputs drawn from each variable's valid set that satisfy every condition and evaluate to
    a finite value. A condition is checked as soon as its variables are drawn (so a PRB count is
    drawn for the numerology already chosen). Raises FormulaError with the last failure when
    `attempts` full draws find none."""
    ready: dict[str, list[Expression]] = {}
    order = [v.symbol for v in spec.variables]
    for condition in spec.parsed_conditions:
        last = max((order.index(n) for n in condition.names), default=0)
        ready.setdefault(order[last], []).append(condition)
    problem = "no draw was tried"
    for _ in range(max(1, attempts)):
        inputs: dict[str, float] = {}
        for var in spec.variables:
            for _retry in range(25):
                inputs[var.symbol] = var.draw(rng)
                try:
                    failed = next(
                        (c for c in ready.get(var.symbol, []) if not c.evaluate(inputs)), None
                    )
                except FormulaError as exc:
                    problem = str(exc)
                    continue
                if failed is None:
                    break
                problem = f"condition {failed.text!r} does not hold"
            else:
                break
        else:
            try:
                spec.evaluate(inputs)
            except FormulaError as exc:
                problem = str(exc)
                continue
            return inputs
    raise FormulaError(f"no valid inputs in {attempts} draws (last: {problem})")


def formula_from_mapping(raw: Mapping[str, object]) -> FormulaSpec:
    """Build a FormulaSpec from a TOML table; raises FormulaError naming what is wrong."""
    try:
        variables = []
        for v in cast(list[Any], raw.get("variables") or []):
            values = tuple(float(x) for x in v.get("values") or ())
            variables.append(
                Variable(
                    symbol=str(v["symbol"]),
                    unit=str(v.get("unit", "")),
                    min=float(v["min"] if "min" in v or not values else min(values)),
                    max=float(v["max"] if "max" in v or not values else max(values)),
                    description=str(v.get("description", "")),
                    integer=bool(v.get("integer", False)),
                    values=values,
                )
            )
        ex = raw.get("example")
        example = None
        if isinstance(ex, Mapping):
            example = Example(
                inputs={str(k): float(x) for k, x in ex["inputs"].items()},
                output=float(ex["output"]),
                tolerance=float(ex.get("tolerance", 1e-6)),
            )
        conditions = raw.get("conditions") or []
        if isinstance(conditions, str):
            conditions = [conditions]
        if not isinstance(conditions, list):
            raise FormulaError("conditions must be a list of expressions")
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
            conditions=tuple(str(c) for c in conditions),
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


def usable_formula(raw: Mapping[str, object]) -> FormulaSpec:
    """A formula that can be evaluated: built from its table, then shown to have valid inputs
    by sampling them (seeded, so the verdict is reproducible). Raises FormulaError."""
    spec = formula_from_mapping(raw)
    sample_inputs(spec, random.Random(0), attempts=200)
    return spec


def _formula_lines(text: str) -> list[int]:
    """1-based line numbers of each `[[formula]]` header, to point errors at a line."""
    return [i for i, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[formula]]"]


def load_formula_file(path: Path) -> tuple[list[FormulaSpec], list[ImportIssue]]:
    """Parse a TOML formula file; each bad formula becomes an issue, the rest still load. A
    formula is refused when it cannot be evaluated for any input drawn from its valid sets."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        return [], [ImportIssue(path, None, "not valid UTF-8")]
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        return [], [ImportIssue(path, int(found[1]) if found else None, f"invalid TOML: {exc}")]
    except (RecursionError, MemoryError):
        return [], [ImportIssue(path, None, "invalid TOML: nested too deeply")]
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
            if not isinstance(raw, dict):
                raise FormulaError("not a table")
            spec = usable_formula(raw)
        except FormulaError as exc:
            issues.append(ImportIssue(path, line, f"formula {label}: {exc}"))
            continue
        except RecursionError:
            issues.append(ImportIssue(path, line, f"formula {label}: nested too deeply"))
            continue
        if spec.id in seen:
            issues.append(ImportIssue(path, line, f"formula {label}: duplicate id"))
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs, issues
