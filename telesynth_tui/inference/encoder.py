"""Sentence encoder over onnxruntime: batched, length-sorted, bounded threads, no spinning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Encoder
from telesynth_tui.inference.energy import EnergyMeter
from telesynth_tui.inference.metrics import CallMeter, CallMetrics

REQUIRED_INPUTS = {"input_ids", "attention_mask"}
OPTIONAL_INPUTS = {"token_type_ids"}
OUTPUT = "sentence_embedding"
TOKENS = "token_embeddings"


class EncoderError(TelesynthError):
    """An encoder model or tokenizer that cannot be used."""


class OnnxEncoder(Encoder):
    """Embeds texts into L2-normalised vectors with an ONNX graph that pools inside."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        model_id: str,
        threads: int = 1,
        batch_size: int = 32,
        max_tokens: int = 256,
        energy: EnergyMeter | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_id = model_id
        self.batch_size = batch_size
        self.energy = energy or EnergyMeter()
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise EncoderError(f"{path}: no such file (run: telesynth models build)")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise EncoderError(f"{tokenizer_path}: not a tokenizer.json: {exc}") from None
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderError(f"{model_path}: not a loadable ONNX model: {first}") from None
        names = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if not names >= REQUIRED_INPUTS or names - REQUIRED_INPUTS - OPTIONAL_INPUTS:
            raise EncoderError(
                f"{model_path}: unexpected ONNX inputs {sorted(names)}; an encoder needs "
                f"{sorted(REQUIRED_INPUTS)} (and optionally token_type_ids)"
            )
        if OUTPUT not in outputs:
            raise EncoderError(
                f"{model_path}: no '{OUTPUT}' output (outputs: {sorted(outputs)}); export the "
                "encoder with pooling inside the graph"
            )
        self._token_types = "token_type_ids" in names
        self.has_token_output = TOKENS in outputs
        dims = next(o.shape for o in self.session.get_outputs() if o.name == OUTPUT)
        self.dimension = dims[-1] if isinstance(dims[-1], int) else None

    def _feeds(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def _run(self, encodings: list[object], last_token: bool = False) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)  # type: ignore[attr-defined]
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)  # type: ignore[attr-defined]
            ids[row, :n] = enc.ids  # type: ignore[attr-defined]
            mask[row, :n] = 1
        feeds = self._feeds(ids, mask)
        if not last_token:
            return self.session.run([OUTPUT], feeds)[0]
        pooled, tokens = self.session.run([OUTPUT, TOKENS], feeds)
        # the last real token (not [SEP] or another special token the tokenizer appends)
        positions = [
            max((i for i, s in enumerate(e.special_tokens_mask) if not s), default=0)  # type: ignore[attr-defined]
            for e in encodings
        ]
        last = tokens[np.arange(len(encodings)), positions]
        last = last / np.maximum(np.linalg.norm(last, axis=1, keepdims=True), 1e-9)
        return np.hstack([pooled, last])

    def features(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        """Pooled embedding and the (normalised) last token's hidden state side by side: the
        input of the classifier heads (the last token tells whether a text ends cleanly)."""
        if not self.has_token_output:
            raise EncoderError(f"{self.model_id}: the graph has no '{TOKENS}' output")
        return self._embed(texts, True, ctx)

    def token_vectors(self, text: str) -> np.ndarray:
        """L2-normalised hidden states of the text's real tokens (no special tokens)."""
        if not self.has_token_output:
            raise EncoderError(f"{self.model_id}: the graph has no '{TOKENS}' output")
        encoding = self.tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        tokens = self.session.run([TOKENS], self._feeds(ids, np.ones_like(ids)))[0][0]
        keep = [i for i, special in enumerate(encoding.special_tokens_mask) if not special]
        vectors = tokens[keep]
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def embed(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        """Vectors in the order of `texts`; batches hold texts of similar length."""
        return self._embed(texts, False, ctx)

    def _embed(self, texts: Sequence[str], last_token: bool, ctx: CallContext | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        metrics = CallMetrics(self.model_id, "embed", items=len(texts))
        with CallMeter(self.energy) as meter:
            encodings = self.tokenizer.encode_batch(list(texts))
            order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
            out: np.ndarray | None = None
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                vectors = self._run([encodings[i] for i in idx], last_token)
                if out is None:
                    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                out[idx] = vectors
            metrics.prompt_tokens = sum(len(e.ids) for e in encodings)
        if ctx is not None:
            ctx.metrics.append(meter.fill(metrics))
        assert out is not None
        return out
