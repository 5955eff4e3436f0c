"""DTA Phase II, style: what the student's own answers look like, and teacher solutions rewritten
into that shape.

The profile is measured on the student's answers to a few probe problems: length, how steps are
laid out, how many there are, whether it writes equations, and the words it uses to state the
final answer. A rewriter model (a registered GGUF or the student itself) rewrites each teacher
solution following the profile; when a rewrite loses the final answer, the solution is
re-laid-out deterministically instead, and the stored decision says so.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from telesynth_tui.dta.solutions import Problem, Solution
from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, SamplingParams, TextModel

LAYOUTS = ("numbered", "bulleted", "lines", "prose")
_NUMBERED = re.compile(r"^\s*(?:step\s*)?\d+[.):]\s+", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s+")
_MARKER = re.compile(
    r"(final answer|the answer is|answer|result|therefore|thus|so|hence)\s*[:=,]?", re.IGNORECASE
)
_EQUATION = re.compile(r"[A-Za-z_]\w*\s*=\s*[-+(\d]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass
class StyleProfile:
    words: int  # median answer length in words
    steps: int  # median number of steps (lines, items or sentences)
    layout: str  # numbered | bulleted | lines | prose
    marker: str  # how the final answer is introduced, e.g. "Answer:"; "" when not marked
    equations: bool  # writes "x = ..." equations
    probes: int = 0  # answers the profile was measured on

    def describe(self) -> str:
        layout = {
            "numbered": "numbered steps (1., 2., ...)",
            "bulleted": "bullet points (- )",
            "lines": "one step per line",
            "prose": "a single paragraph",
        }[self.layout]
        marker = f"'{self.marker} <final answer>'" if self.marker else "the final answer"
        equations = "with equations (x = ...)" if self.equations else "in words"
        return (
            f"about {self.words} words, {self.steps} step(s) as {layout}, {equations}, "
            f"ending with {marker}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def segments(text: str) -> tuple[str, list[str]]:
    """The layout of a text and its steps (non-empty lines, list items or sentences)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        if sum(bool(_NUMBERED.match(line)) for line in lines) >= len(lines) / 2:
            return "numbered", [_NUMBERED.sub("", line) for line in lines]
        if sum(bool(_BULLET.match(line)) for line in lines) >= len(lines) / 2:
            return "bulleted", [_BULLET.sub("", line) for line in lines]
        return "lines", lines
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(lines)) if s.strip()]
    return "prose", sentences


def final_marker(text: str) -> str:
    """The words that introduce the final answer in the last step ("" when none)."""
    _, steps = segments(text)
    if not steps:
        return ""
    match = _MARKER.search(steps[-1])
    if match is None or match.start() > len(steps[-1]) / 2:
        return ""
    word = match.group(1)
    return word[0].upper() + word[1:].lower() + ":"


def measure(texts: list[str]) -> StyleProfile:
    """The style profile of a set of answers (an empty answer set gives a neutral profile)."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return StyleProfile(words=60, steps=3, layout="numbered", marker="Answer:", equations=True)
    shapes = [segments(t) for t in texts]
    markers = Counter(final_marker(t) for t in texts)
    return StyleProfile(
        words=int(statistics.median(len(t.split()) for t in texts)),
        steps=max(1, int(statistics.median(len(s) for _, s in shapes))),
        layout=Counter(layout for layout, _ in shapes).most_common(1)[0][0],
        marker=markers.most_common(1)[0][0],
        equations=sum(bool(_EQUATION.search(t)) for t in texts) > len(texts) / 2,
        probes=len(texts),
    )


def lay_out(steps: list[str], final: str, profile: StyleProfile) -> str:
    """Steps and final answer in the profile's layout, marker and number of steps."""
    keep = max(1, profile.steps - 1)
    if len(steps) > keep:  # merge the surplus into the last kept step
        steps = [*steps[: keep - 1], " ".join(steps[keep - 1 :])]
    closing = f"{profile.marker} {final}".strip() if profile.marker else final
    parts = [s.rstrip(".") + "." for s in steps if s.strip()] + [closing.rstrip(".") + "."]
    if profile.layout == "numbered":
        return "\n".join(f"{i}. {p}" for i, p in enumerate(parts, 1))
    if profile.layout == "bulleted":
        return "\n".join(f"- {p}" for p in parts)
    return ("\n" if profile.layout == "lines" else " ").join(parts)


def similarity(text: str, profile: StyleProfile) -> float:
    """How closely a text follows the profile, 0..1: layout, final-answer marker, length."""
    layout, steps = segments(text)
    words = max(len(text.split()), 1)
    length = min(words, profile.words) / max(words, profile.words, 1)
    marker = 1.0 if final_marker(text) == profile.marker else 0.0
    count = min(len(steps), profile.steps) / max(len(steps), profile.steps, 1)
    return round((float(layout == profile.layout) + marker + length + count) / 4, 4)


REWRITE_SYSTEM = "You rewrite worked solutions without changing their content or final answer."


class Rewriter:
    """A model that rewrites a teacher's solution in the student's style (free text)."""

    def __init__(self, generator: TextModel, max_tokens: int = 256) -> None:
        self.generator = generator
        self.name = generator.name
        self.max_tokens = min(max_tokens, generator.n_ctx // 2)

    def rewrite(
        self,
        problem: Problem,
        solution: Solution,
        profile: StyleProfile,
        example: str,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """(rewritten text, metrics); raises TelesynthError when the model cannot run."""
        request = (
            f"Problem: {problem.question}\n\nSolution:\n{solution.text}\n\n"
            f"Rewrite this solution in the style of the example: {profile.describe()}. Keep "
            f"every number and the final answer.\n\nExample of the style:\n{example}"
        )
        messages = [
            {"role": "system", "content": REWRITE_SYSTEM},
            {"role": "user", "content": request},
        ]
        if not self.generator.fits(messages, self.max_tokens):  # drop the example first
            messages[1]["content"] = request.split("\n\nExample of the style:")[0]
            if not self.generator.fits(messages, self.max_tokens):
                raise TelesynthError(f"{self.name}: the solution does not fit its context")
        params = SamplingParams(max_tokens=self.max_tokens)
        done = self.generator.complete(messages, params, CallContext(cancel=cancel))
        return done.text.strip(), done.metrics.to_dict()
