"""The QA-source interface: what writes the question-answer candidates of one plan.

Two sources implement it: the KG-template realizer (`pipeline/realize.py`, deterministic, no
model) and the LLM writer (`pipeline/generate_llm.py`, a registered GGUF). A source gets the plan,
its context, the plan's seed and how many pairs to write; it returns candidates or recorded
rejections ("reason\\nraw text"), and the metrics of every model call it makes go to the call
context it is given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from telesynth_tui.inference.base import CallContext

if TYPE_CHECKING:
    from telesynth_tui.pipeline.realize import Candidate


@dataclass
class QARequest:
    """One plan to write QA for."""

    plan_type: str
    payload: dict[str, Any]
    # the context items the source may read (empty for a source that does not read context)
    context: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0  # the plan's own seed: the same request gives the same output
    pairs: int = 1  # how many pairs a document plan asks for


class QASource(ABC):
    """Writes the QA candidates of a plan."""

    name: str
    # True: the source writes from the context, so the context is retrieved before it writes;
    # False: it writes from the plan alone and the context is retrieved for its question
    reads_context: ClassVar[bool] = True

    @abstractmethod
    def write(self, request: QARequest, ctx: CallContext) -> list[Candidate | str]:
        """Candidates, or rejections "reason\\nraw text"; model-call metrics go to
        `ctx.metrics`, and a model stops within a token once `ctx.cancelled()`."""
