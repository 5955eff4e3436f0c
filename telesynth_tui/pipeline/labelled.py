"""Labelled examples made from the bundled corpus, for training and measuring the filters.

Documents are split by name into a calibration part and a held-out part, so the figures
reported by bench/filters.py come from text the heads and thresholds never saw.
"""

from __future__ import annotations

import csv
import random
import re
import sqlite3
import tomllib
from pathlib import Path

import numpy as np

from telesynth_tui.config import RetrievalSettings
from telesynth_tui.inference.base import Encoder
from telesynth_tui.pipeline import store

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
REFUSALS = (
    "The context does not say.",
    "I cannot answer this from the given context.",
    "The provided context does not contain enough information to answer.",
    "This is not mentioned in the context.",
    "Sorry, I don't know.",
    "There is no information about {topic} in the context.",
    "The documents do not describe {topic}.",
    "Unable to determine {topic} from the context provided.",
    "Not enough information is given about {topic}.",
    "I'm not able to find {topic} in the provided text.",
    "The answer cannot be found in the context.",
    "No answer: the context lacks details on {topic}.",
)


def split_documents(kg_dir: Path) -> tuple[list[Path], list[Path]]:
    """(calibration, held-out): every fourth document by name is held out."""
    docs = sorted((kg_dir / "docs").rglob("*.md"))
    held = docs[::4]
    return [d for d in docs if d not in held], held


def sentences(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for path in paths:
        for block in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(block.split())
            if not text or text.startswith(("#", "|", "```")):
                continue
            text = re.sub(r"^[-*\d.]+\s+", "", text).replace("**", "")
            for sentence in _SENTENCE_END.split(text):
                if len(sentence.split()) >= 6 and sentence[-1] in ".!?":
                    out.append(sentence)
    return out


def kg_answers(kg_dir: Path) -> list[str]:
    """Short answers in the style the realizer writes: facts and formula results."""
    out: list[str] = []
    for path in sorted((kg_dir / "triples").glob("*.csv")):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                out.append(
                    f"{row['subject']} {row['predicate'].replace('_', ' ')} {row['object']}."
                )
    rng = random.Random(7)
    for path in sorted((kg_dir / "formulas").glob("*.toml")):
        for f in tomllib.loads(path.read_text(encoding="utf-8")).get("formula", []):
            if not f.get("example"):
                continue
            symbol = f.get("output_symbol") or "result"
            unit = f.get("output_unit", "")
            for _ in range(6):  # worked results in the forms answers take
                value = f"{f['example']['output'] * rng.uniform(0.2, 3):.4g} {unit}".strip()
                forms = (
                    f"{symbol} = {value}.",
                    f"With {symbol} = {f['expression']} and the given inputs, {symbol} = {value}.",
                    f"The {f['name']} is {value}.",
                )
                out.append(rng.choice(forms))
    return out


def truncate(text: str, rng: random.Random) -> str | None:
    """Cut a finished text part-way (at a word, sometimes inside a word); None if too short."""
    words = text.split()
    if len(words) < 5:
        return None
    cut = rng.randint(2, len(words) - 2)
    piece = " ".join(words[:cut])
    if rng.random() < 0.25 and len(words[cut]) > 3:
        piece += " " + words[cut][: rng.randint(1, len(words[cut]) - 2)]
    return piece.rstrip(".,;:")


def unfinished_examples(
    kg_dir: Path, held_out: bool, seed: int = 0, limit: int = 3000
) -> tuple[list[str], list[int]]:
    """Texts and labels (1 = unfinished) from one side of the document split."""
    rng = random.Random(seed)
    calibration, held = split_documents(kg_dir)
    finished = sentences(held if held_out else calibration)
    answers = kg_answers(kg_dir)
    rng.shuffle(answers)
    half = len(answers) // 2
    finished += answers[half:] if held_out else answers[:half]
    # multi-sentence answers end cleanly too
    finished += [" ".join(finished[i : i + 2]) for i in range(0, len(finished) - 1, 7)]
    rng.shuffle(finished)
    finished = finished[: limit // 2]
    texts: list[str] = []
    labels: list[int] = []
    for text in finished:
        texts.append(text)
        labels.append(0)
        cut = truncate(text, rng)
        if cut:
            texts.append(cut)
            labels.append(1)
    return texts, labels


def refusal_examples(kg_dir: Path, held_out: bool, seed: int = 0) -> tuple[list[str], list[int]]:
    """Answers (0) and refusals to answer (1)."""
    rng = random.Random(seed + 1)
    calibration, held = split_documents(kg_dir)
    answers = sentences(held if held_out else calibration)
    rng.shuffle(answers)
    answers = answers[:300]
    topics = [" ".join(a.split()[:3]).lower() for a in answers]
    refusals = [
        rng.choice(REFUSALS).format(topic=rng.choice(topics)) for _ in range(len(answers) // 2)
    ]
    texts = answers + refusals
    labels = [0] * len(answers) + [1] * len(refusals)
    return texts, labels


def unrelated_examples(
    conn: sqlite3.Connection,
    retrieval: RetrievalSettings,
    encoder: Encoder,
    plans: int = 150,
    seed: int = 1,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Head features of realized QA pairs with their own retrieved context (0) and with the
    context of another plan (1: swapped). One planner makes both sets in turn, so the second
    (held-out) set is about the entities and relations the first one did not use."""
    from telesynth_tui.graph.retrieval import Retriever
    from telesynth_tui.pipeline.filters import unrelated_features
    from telesynth_tui.pipeline.plans import PLAN_TYPES, Planner
    from telesynth_tui.pipeline.realize import TemplateRealizer

    retriever = Retriever(conn, retrieval)
    planner = Planner(conn, seed, store.sample_provenances(conn))
    realizer = TemplateRealizer(seed)
    sets = []
    for _ in range(2):
        items = []
        for i in range(plans):
            plan = planner.make(PLAN_TYPES[i % len(PLAN_TYPES)])
            if plan is None:
                continue
            candidate = realizer.realize(plan.type, plan.payload)
            result = retriever.retrieve(candidate.question, budget_tokens=700)
            texts = [item.text for item in result.items if item.kind == "chunk"][:5]
            items.append((candidate.question, candidate.answer, texts))
        x, y = [], []
        for i, (question, answer, texts) in enumerate(items):
            swapped = items[(i + len(items) // 2) % len(items)][2]
            for context, label in ((texts, 0), (swapped, 1)):
                v = encoder.embed([question, answer, *context])
                x.append(unrelated_features(question, answer, context, v[0], v[1], v[2:]))
                y.append(label)
        sets.append((np.array(x), np.array(y, dtype=np.float64)))
    return sets[0], sets[1]
