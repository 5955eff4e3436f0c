"""Stage 1, plan: question plans drawn from the graph, reproducible by seed, coverage-aware.

Each plan names what a question is about (entities, a relation path, a formula with inputs
sampled from their valid sets and within the formula's validity conditions, and the exact answer
computed by our code). Entities and relations used least so far in the project come first;
ties are broken by the seeded RNG.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.formulas import (
    FormulaError,
    FormulaSpec,
    formula_from_mapping,
    sample_inputs,
)
from telesynth_tui.graph.technology import compatible, specific

MAX_PLANS = 100_000  # plans of one run at most (all are stored when the run starts)
PLAN_TYPES = ("troubleshooting", "multi_hop", "maths", "factual", "definition")
DEFAULT_MIX = {
    "troubleshooting": 0.3,
    "multi_hop": 0.2,
    "maths": 0.25,
    "factual": 0.15,
    "definition": 0.1,
}
# relation chains a multi-hop question may follow (predicates in order)
CHAINS = [
    ("indicates", "resolved_by"),
    ("indicates", "resolved_by", "adjusts"),
    ("indicates", "checked_by"),
    ("checked_by", "reads"),
    ("indicates", "checked_by", "reads"),
    ("resolved_by", "adjusts"),
    ("resolved_by", "verified_by"),
    ("degrades", "measured_by"),
]


@dataclass
class Plan:
    type: str
    payload: dict[str, Any]
    entity_ids: list[int] = field(default_factory=list)
    relation_ids: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {**self.payload, "entity_ids": self.entity_ids, "relation_ids": self.relation_ids}
        )


def parse_mix(text: str) -> dict[str, float]:
    """'troubleshooting,maths' (default weights) or 'troubleshooting=0.6,maths=0.4'."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        try:
            value = float(weight) if weight else DEFAULT_MIX.get(name.strip(), 0.2)
        except ValueError:
            raise TelesynthError(f"bad weight in {part!r}") from None
        if not math.isfinite(value) or value < 0:
            raise TelesynthError(f"bad weight in {part!r}: use a number of 0 or more")
        mix[name.strip()] = value
    return mix


def allocate(n: int, mix: dict[str, float]) -> dict[str, int]:
    """Split n across types by weight (largest remainder), every listed type at least once."""
    if not 1 <= n <= MAX_PLANS:
        raise TelesynthError(f"--n must be between 1 and {MAX_PLANS}, not {n}")
    bad = [
        t for t, w in mix.items() if not (isinstance(w, int | float) and math.isfinite(w)) or w < 0
    ]
    if bad:
        raise TelesynthError(f"the weight of {', '.join(bad)} must be a number of 0 or more")
    weights = {t: w for t, w in mix.items() if w > 0}
    if not weights:
        raise TelesynthError("the type mix is empty")
    unknown = set(weights) - set(PLAN_TYPES)
    if unknown:
        raise TelesynthError(f"unknown question type(s): {', '.join(sorted(unknown))}")
    total = sum(weights.values())
    exact = {t: n * w / total for t, w in weights.items()}
    counts = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: exact[t] - counts[t], reverse=True)[
        : n - sum(counts.values())
    ]:
        counts[t] += 1
    for t in counts:
        if counts[t] == 0 and n >= len(counts):
            donor = max(counts, key=counts.__getitem__)
            counts[donor] -= 1
            counts[t] += 1
    return counts


class Planner:
    def __init__(
        self, conn: sqlite3.Connection, seed: int, asked: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Plans over the project's graph; `asked` (the provenance of the samples stored so
        far: `store.sample_provenances`) steers plans to what has been asked least."""
        self.conn = conn
        self.rng = random.Random(seed)
        self.entity_use: Counter[int] = Counter()
        self.unusable: dict[str, str] = {}  # formula slug -> why it cannot be evaluated
        self._formula_specs: list[tuple[int, int | None, FormulaSpec]] | None = None
        self.relation_use: Counter[int] = Counter()
        for data in asked:
            self.entity_use.update(data.get("entity_ids", []))
            self.relation_use.update(data.get("relation_ids", []))
        # curated entities and those taking part in accepted relations (extracted ones)
        rows = conn.execute(
            "SELECT id, name, type, description, technology FROM entities e"
            " WHERE status = 'curated'"
            " OR EXISTS (SELECT 1 FROM relations r WHERE r.status = 'accepted'"
            " AND (r.subject_id = e.id OR r.object_id = e.id))"
            " OR (description != '' AND EXISTS (SELECT 1 FROM entity_extractions x"
            " WHERE x.entity_id = e.id))"  # a term a document defines
        ).fetchall()
        self.names = {r[0]: (r[1], r[2], r[3]) for r in rows}
        self.technology = {r[0]: r[4] or "" for r in rows}
        relations = conn.execute(  # candidates and rejected extractions never reach a plan
            "SELECT id, subject_id, predicate, object_id FROM relations"
            " WHERE status = 'accepted' ORDER BY id"
        )
        self.edges = [tuple(r) for r in relations]
        self.out_edges: dict[int, list[tuple[int, int, str, int]]] = {}
        for edge in self.edges:
            self.out_edges.setdefault(edge[1], []).append(edge)

    # --- helpers --------------------------------------------------------------------------

    def _least_used(self, items: list[Any], key: Any) -> Any:
        """The least-used item (by the key's usage count), ties broken by the RNG."""
        if not items:
            return None
        low = min(key(i) for i in items)
        return self.rng.choice([i for i in items if key(i) == low])

    def _use(self, plan: Plan) -> Plan:
        self.entity_use.update(plan.entity_ids)
        self.relation_use.update(plan.relation_ids)
        return plan

    def _edge_use(self, edge: tuple[int, int, str, int]) -> int:
        return self.relation_use[edge[0]] * 4 + self.entity_use[edge[1]] + self.entity_use[edge[3]]

    def _name(self, entity_id: int) -> str:
        return self.names[entity_id][0] if entity_id in self.names else f"#{entity_id}"

    def _tech(self, entity_id: int) -> str:
        return self.technology.get(entity_id, "")

    def _fits(self, current: str, edge: tuple[int, int, str, int]) -> bool:
        """Does the edge keep a plan of technology `current` ('' while open) within one?"""
        a, b = self._tech(edge[1]), self._tech(edge[3])
        return compatible(current, a) and compatible(current, b) and compatible(a, b)

    def _narrow(self, current: str, edge: tuple[int, int, str, int]) -> str:
        """The plan's technology once the edge is in it."""
        found = specific([current, self._tech(edge[1]), self._tech(edge[3])])
        return found.pop() if found else ""

    def _fact(self, edge: tuple[int, int, str, int]) -> dict[str, Any]:
        rid, s, p, o = edge
        return {
            "relation_id": rid,
            "subject": self._name(s),
            "subject_id": s,
            "predicate": p,
            "object": self._name(o),
            "object_id": o,
            "subject_type": self.names.get(s, ("", "", ""))[1],
            "object_type": self.names.get(o, ("", "", ""))[1],
        }

    # --- plan types -----------------------------------------------------------------------

    def factual(self) -> Plan | None:
        edges = [
            e
            for e in self.edges
            if e[2] != "related_to" and e[1] in self.names and self._fits("", e)
        ]
        edge = self._least_used(edges, self._edge_use)
        if edge is None:
            return None
        fact = self._fact(edge)
        tech = self._narrow("", edge)
        # every true object of the same subject and predicate (in the same technology) is a
        # correct answer
        answers = [
            self._name(e[3])
            for e in self.out_edges.get(edge[1], [])
            if e[2] == edge[2] and self._fits(tech, e)
        ]
        return self._use(
            Plan(
                "factual",
                {"fact": fact, "answers": answers, "technology": tech},
                [edge[1], edge[3]],
                [edge[0]],
            )
        )

    def multi_hop(self) -> Plan | None:
        starts = []
        for chain in CHAINS:
            for edge in self.edges:
                if edge[2] == chain[0]:
                    starts.append((chain, edge))
        self.rng.shuffle(starts)
        starts.sort(key=lambda item: self._edge_use(item[1]))
        for chain, first in starts[:200]:
            if not self._fits("", first):
                continue
            path, tech = [first], self._narrow("", first)
            for predicate in chain[1:]:
                options = [
                    e
                    for e in self.out_edges.get(path[-1][3], [])
                    if e[2] == predicate and self._fits(tech, e)
                ]
                nxt = self._least_used(options, self._edge_use)
                if nxt is None:
                    break
                path.append(nxt)
                tech = self._narrow(tech, nxt)
            if len(path) == len(chain):
                facts = [self._fact(e) for e in path]
                ids = [path[0][1], *(e[3] for e in path)]
                return self._use(
                    Plan(
                        "multi_hop", {"path": facts, "technology": tech}, ids, [e[0] for e in path]
                    )
                )
        return None

    def troubleshooting(self) -> Plan | None:
        symptoms = sorted({e[1] for e in self.edges if e[2] == "indicates"})
        symptom = self._least_used(symptoms, lambda i: self.entity_use[i])
        if symptom is None:
            return None
        tech = "".join(specific([self._tech(symptom)]))
        causes = [
            e
            for e in self.out_edges.get(symptom, [])
            if e[2] == "indicates" and self._fits(tech, e)
        ]
        self.rng.shuffle(causes)
        causes.sort(key=self._edge_use)
        used_edges: list[tuple[int, int, str, int]] = []
        steps: list[dict[str, Any]] = []

        def keep(edges: list[tuple[int, int, str, int]], most: int) -> list[Any]:
            """Up to `most` edges that keep the plan within one technology."""
            nonlocal tech
            kept: list[tuple[int, int, str, int]] = []
            for edge in edges:
                if len(kept) < most and self._fits(tech, edge):
                    kept.append(edge)
                    tech = self._narrow(tech, edge)
            return kept

        for cause_edge in causes:
            if len(steps) == 3:
                break
            if not keep([cause_edge], 1):
                continue
            cause = cause_edge[3]
            out = self.out_edges.get(cause, [])
            checks = keep([e for e in out if e[2] == "checked_by"], 2)
            reads = keep(
                [r for c in checks for r in self.out_edges.get(c[3], []) if r[2] == "reads"], 3
            )
            actions = keep([e for e in out if e[2] == "resolved_by"], 2)
            adjusts = keep(
                [a for x in actions for a in self.out_edges.get(x[3], []) if a[2] == "adjusts"], 2
            )
            verifies = keep(
                [v for x in actions for v in self.out_edges.get(x[3], []) if v[2] == "verified_by"],
                2,
            )
            used_edges += [cause_edge, *checks, *reads, *actions, *adjusts, *verifies]
            steps.append(
                {
                    "cause": self._name(cause),
                    "checks": [self._name(c[3]) for c in checks],
                    "reads": [self._name(r[3]) for r in reads],
                    "actions": [self._name(a[3]) for a in actions],
                    "adjusts": [self._name(a[3]) for a in adjusts],
                    "verify": [self._name(v[3]) for v in verifies],
                }
            )
        entity_ids = sorted({symptom, *(e[3] for e in used_edges)})
        payload = {
            "symptom": self._name(symptom),
            "symptom_type": self.names[symptom][1],
            "causes": steps,
            "technology": tech,
        }
        return self._use(Plan("troubleshooting", payload, entity_ids, [e[0] for e in used_edges]))

    def definition(self) -> Plan | None:
        described = [i for i, (_, _, d) in self.names.items() if d and len(d) > 20]
        entity = self._least_used(described, lambda i: self.entity_use[i])
        if entity is None:
            return None
        name, type_, description = self.names[entity]
        return self._use(
            Plan(
                "definition",
                {"entity": name, "entity_type": type_, "description": description},
                [entity],
            )
        )

    def _formulas(self) -> list[tuple[int, int | None, FormulaSpec]]:
        """The project's formulas that can be built; one that cannot is left out (and noted)."""
        if self._formula_specs is None:
            self._formula_specs = []
            rows = self.conn.execute(
                "SELECT id, slug, name, description, expression, variables, output_symbol,"
                " output_unit, example, reference, entity_id, conditions FROM formulas ORDER BY id"
            ).fetchall()
            for row in rows:
                try:
                    spec = formula_from_mapping(
                        {
                            "id": row[1],
                            "name": row[2],
                            "description": row[3],
                            "expression": row[4],
                            "variables": json.loads(row[5]),
                            "output_symbol": row[6],
                            "output_unit": row[7],
                            "example": json.loads(row[8]) if row[8] else None,
                            "reference": row[9],
                            "conditions": json.loads(row[11] or "[]"),
                        }
                    )
                except (FormulaError, ValueError) as exc:
                    self.unusable[str(row[1])] = str(exc)
                    continue
                self._formula_specs.append((int(row[0]), row[10], spec))
        return self._formula_specs

    def _formula_use(self, formula: tuple[int, int | None, FormulaSpec]) -> int:
        return self.entity_use[-formula[0]]

    def maths(self) -> Plan | None:
        """A formula with inputs from each input's valid set that satisfy its validity
        conditions. A formula with no valid inputs is marked unusable and another one is taken,
        so one bad formula never stops a run."""
        while True:
            candidates = [f for f in self._formulas() if f[2].id not in self.unusable]
            if not candidates:
                return None
            formula_id, entity_id, spec = self._least_used(candidates, self._formula_use)
            try:
                inputs = self._sample_inputs(spec)
                truth = spec.evaluate(inputs)
            except FormulaError as exc:
                self.unusable[spec.id] = str(exc)
                continue
            break
        self.entity_use[-formula_id] += 1  # formulas count under negative ids
        payload = {
            "formula": spec.id,
            "name": spec.name,
            "expression": spec.expression,
            "inputs": inputs,
            "units": {v.symbol: v.unit for v in spec.variables},
            "descriptions": {v.symbol: v.description for v in spec.variables},
            "answer": truth,
            "unit": spec.output_unit,
            "output_symbol": spec.output_symbol,
            "tolerance": max(abs(truth) * 0.01, 1e-6),
            "reference": spec.reference,
        }
        return self._use(Plan("maths", payload, [entity_id] if entity_id else []))

    def _sample_inputs(self, spec: FormulaSpec) -> dict[str, float]:
        """Inputs from each variable's valid set (a listed value, a whole number or 3
        significant figures of the range) that satisfy the formula's conditions; after failed
        draws, the worked example when it is valid. Raises FormulaError when nothing is."""
        try:
            return sample_inputs(spec, self.rng, attempts=30)
        except FormulaError:
            if spec.example is None:
                raise
            spec.check_inputs(spec.example.inputs)
            return dict(spec.example.inputs)

    def make(self, plan_type: str) -> Plan | None:
        return getattr(self, plan_type)()

    def plans(self, counts: dict[str, int]) -> list[Plan]:
        """Plans in a seeded, interleaved order of types."""
        order = [t for t, n in counts.items() for _ in range(n)]
        self.rng.shuffle(order)
        out: list[Plan] = []
        for plan_type in order:
            plan = self.make(plan_type)
            if plan is not None:
                out.append(plan)
        return out
