"""Free-form answer metrics against one or several references: ROUGE-L, BLEU and a
BERTScore-style F1 over the ONNX encoder's token embeddings. Each takes the best reference."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_TOKEN_RE = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, references: Sequence[str]) -> float:
    """ROUGE-L F1 (longest common subsequence of lower-cased words), best over references."""
    cand = _tokens(candidate)
    best = 0.0
    for reference in references:
        ref = _tokens(reference)
        lcs = _lcs(cand, ref)
        if lcs:
            precision, recall = lcs / len(cand), lcs / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def bleu(candidate: str, references: Sequence[str]) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) in [0, 1], all references together."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(effective_order=True)
    return metric.sentence_score(candidate, list(references)).score / 100


def embedding_f1(candidate: str, references: Sequence[str], encoder: Any) -> float:
    """BERTScore-style F1: greedy cosine matching of token embeddings, best over references."""
    cand = encoder.token_vectors(candidate)
    best = 0.0
    for reference in references:
        ref = encoder.token_vectors(reference)
        if not len(cand) or not len(ref):
            continue
        sims = cand @ ref.T
        precision, recall = float(sims.max(axis=1).mean()), float(sims.max(axis=0).mean())
        if precision + recall > 0:
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None
