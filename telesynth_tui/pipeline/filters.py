"""Stage 5, filter: unanswered, unfinished, unrelated, near-duplicate and maths verification,
with ONNX models on CPU. Each filter returns a verdict with its score and the reason."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from telesynth_tui.inference.base import CallContext, Encoder
from telesynth_tui.pipeline.records import FilterVerdict as Verdict
from telesynth_tui.units import check_numeric

# Phrases of an answer that declines; the exemplars catch paraphrases by embedding similarity.
_DECLINE_RE = re.compile(
    r"\b(?:(?:does|do|did) not (?:contain|mention|say|state|provide|include|specify|describe)"
    r"|(?:is|are) not (?:mentioned|given|provided|stated|specified|described)"
    r"|(?:can ?not|can't|unable to|not able to) (?:be )?(?:answer|determine|find|tell|say)"
    r"|(?:no|not enough|insufficient) (?:information|details|data)"
    r"|i (?:do not|don't) know|no answer)\b",
    re.IGNORECASE,
)
DECLINE_EXEMPLARS = (
    "The context does not provide this information.",
    "I cannot answer the question with the given information.",
    "This cannot be determined from the text.",
    "The passage doesn't mention it.",
    "I don't know.",
    "Insufficient information.",
)


TAIL_WORDS = 120


@dataclass(frozen=True)
class FilterSettings:
    unanswered_similarity: float = 0.75  # cosine to a declining exemplar
    question_context: float = 0.30  # min cosine of the question to its best context item
    answer_context: float = 0.30  # min cosine of the answer to its best context item
    duplicate: float = 0.95  # max cosine to an already accepted question
    maths_rel_tolerance: float = 0.01


def unrelated_features(
    question: str,
    answer: str,
    texts: list[str],
    q_vec: np.ndarray,
    a_vec: np.ndarray,
    ctx: np.ndarray,
) -> np.ndarray:
    """Semantic (best and mean cosine of question and answer to the context items) and lexical
    (share of their content words found in the context) closeness: the unrelated head's input."""
    from telesynth_tui.pipeline.scoring import content_words

    if ctx.size == 0:
        return np.zeros(6, dtype=np.float32)
    q_sims, a_sims = ctx @ q_vec, ctx @ a_vec
    words = set().union(*(content_words(t) for t in texts))
    qw, aw = content_words(question), content_words(answer)
    return np.array(
        [
            q_sims.max(),
            a_sims.max(),
            q_sims.mean(),
            a_sims.mean(),
            len(qw & words) / max(len(qw), 1),
            len(aw & words) / max(len(aw), 1),
        ],
        dtype=np.float32,
    )


class ClassifierHead:
    """An ONNX classifier head trained by `models build` (features in, probability out)."""

    def __init__(self, path: Path, threshold: float | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        info = path.with_name("heads.json")
        if threshold is None and info.is_file():
            threshold = json.loads(info.read_text())[path.stem]["threshold"]
        self.threshold = 0.5 if threshold is None else float(threshold)

    def probability(self, features: np.ndarray) -> np.ndarray:
        return self.session.run(["probability"], {"features": features.astype(np.float32)})[0]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b.T  # rows are L2-normalised


class Filters:
    def __init__(
        self,
        encoder: Encoder,
        head: ClassifierHead,
        settings: FilterSettings,
        unrelated_head: ClassifierHead | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.unrelated_head = unrelated_head
        self.settings = settings
        self._decline = encoder.embed(list(DECLINE_EXEMPLARS))
        self.accepted: list[np.ndarray] = []

    def unanswered(self, answer: str, answer_vec: np.ndarray) -> Verdict:
        match = _DECLINE_RE.search(answer)
        similarity = float(_cos(answer_vec[None], self._decline).max())
        if match:
            return Verdict("unanswered", False, similarity, f"declines: '{match.group()}'")
        if similarity >= self.settings.unanswered_similarity:
            return Verdict(
                "unanswered", False, similarity, f"reads like a refusal (cosine {similarity:.2f})"
            )
        return Verdict("unanswered", True, similarity, "answers")

    def unfinished(self, answer: str, ctx: CallContext | None = None) -> Verdict:
        if not answer.strip():
            return Verdict("unfinished", False, 1.0, "empty answer")
        # the ending decides; the encoder reads at most 256 tokens, so give it the tail
        tail = " ".join(answer.split()[-TAIL_WORDS:])
        p = float(self.head.probability(self.encoder.features([tail], ctx))[0])
        if p >= self.head.threshold:
            return Verdict("unfinished", False, p, f"cut off (p={p:.2f})")
        return Verdict("unfinished", True, p, "complete")

    def unrelated(
        self,
        q_vec: np.ndarray,
        a_vec: np.ndarray,
        ctx: np.ndarray,
        question: str = "",
        answer: str = "",
        texts: list[str] | None = None,
    ) -> Verdict:
        if ctx.size == 0:
            return Verdict("unrelated", False, 0.0, "no context")
        if self.unrelated_head is not None:
            x = unrelated_features(question, answer, texts or [], q_vec, a_vec, ctx)
            p = float(self.unrelated_head.probability(x[None])[0])
            detail = f"question {x[0]:.2f}, answer {x[1]:.2f}, shared words {x[4]:.0%}/{x[5]:.0%}"
            if p >= self.unrelated_head.threshold:
                return Verdict("unrelated", False, p, f"not about the context ({detail})")
            return Verdict("unrelated", True, p, detail)
        q = float(_cos(q_vec[None], ctx).max())
        a = float(_cos(a_vec[None], ctx).max())
        s = self.settings
        if q < s.question_context:
            return Verdict("unrelated", False, q, f"question far from context ({q:.2f})")
        if a < s.answer_context:
            return Verdict("unrelated", False, a, f"answer far from context ({a:.2f})")
        return Verdict("unrelated", True, min(q, a), f"question {q:.2f}, answer {a:.2f}")

    def duplicate(self, q_vec: np.ndarray) -> Verdict:
        if not self.accepted:
            return Verdict("duplicate", True, 0.0, "first")
        best = float(_cos(q_vec[None], np.vstack(self.accepted)).max())
        if best > self.settings.duplicate:
            return Verdict("duplicate", False, best, f"near-duplicate (cosine {best:.3f})")
        return Verdict("duplicate", True, best, "new")

    def maths(self, answer: str, payload: dict[str, Any]) -> Verdict:
        check = check_numeric(
            answer,
            float(payload["answer"]),
            str(payload.get("unit", "")),
            rel_tol=self.settings.maths_rel_tolerance,
        )
        return Verdict("maths", check.ok, check.value, check.detail)

    def run(
        self,
        question: str,
        answer: str,
        context_texts: list[str],
        plan_type: str,
        payload: dict[str, Any],
        known: dict[int, np.ndarray] | None = None,
        ctx: CallContext | None = None,
    ) -> tuple[list[Verdict], dict[str, np.ndarray]]:
        """All verdicts for one candidate (in order), and the vectors computed on the way.
        `known` holds vectors already stored for some context items (by position); the
        encoder's call metrics go to `ctx`."""
        known = known or {}
        missing = [t for i, t in enumerate(context_texts) if i not in known]
        vectors = self.encoder.embed([question, answer or " ", *missing], ctx)
        q_vec, a_vec = vectors[0], vectors[1]
        fresh = iter(vectors[2:])
        rows = [known[i] if i in known else next(fresh) for i in range(len(context_texts))]
        context_vecs = np.array(rows)
        verdicts = [
            self.unanswered(answer, a_vec),
            self.unfinished(answer, ctx),
            self.unrelated(q_vec, a_vec, context_vecs, question, answer, context_texts),
            self.duplicate(q_vec),
        ]
        if plan_type == "maths":
            verdicts.append(self.maths(answer, payload))
        return verdicts, {"question": q_vec, "answer": a_vec, "context": context_vecs}

    def accept(self, q_vec: np.ndarray) -> None:
        self.accepted.append(q_vec)
