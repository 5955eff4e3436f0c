"""Train the filter classifier heads on examples made from the bundled corpus and export them to
ONNX. The "unfinished answer" head reads the int8 encoder's features (pooled embedding and the
last token's hidden state) and is a logistic regression trained with a fixed seed; its threshold
is calibrated on the calibration documents only (bench/filters.py measures it on held-out ones).

Run: .venv/bin/python models/build_heads.py  (after models/build_encoder.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.inference.encoder import OnnxEncoder
from telesynth_tui.inference.registry import sha256_file
from telesynth_tui.modelkit.build import heads_fingerprint
from telesynth_tui.pipeline.labelled import unfinished_examples, unrelated_examples
from telesynth_tui.project import Project

HERE = Path(__file__).resolve().parent
KG = HERE.parent / "kg"


def train_logistic(
    x: np.ndarray, y: np.ndarray, epochs: int = 600, lr: float = 0.5, l2: float = 1e-3
) -> tuple[np.ndarray, float]:
    """Full-batch gradient descent on the logistic loss (deterministic)."""
    w = np.zeros(x.shape[1], dtype=np.float64)
    b = 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        grad = p - y
        w -= lr * (x.T @ grad / len(y) + l2 * w)
        b -= lr * grad.mean()
    return w, float(b)


def best_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    best = (0.5, -1.0)
    for t in np.linspace(0.05, 0.95, 91):
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        precision = tp / max(pred.sum(), 1)
        recall = tp / max((y == 1).sum(), 1)
        balanced = min(precision, recall)  # neither may lag: both are reported
        if balanced > best[1]:
            best = (float(t), balanced)
    return best


def export_head(w: np.ndarray, b: float, path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
            helper.make_node("Squeeze", ["p", "axis"], ["probability"]),
        ],
        "unfinished_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", len(w)])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[
            numpy_helper.from_array(w.reshape(-1, 1), "W"),
            numpy_helper.from_array(np.array([b], dtype=np.float32), "B"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    save(model, str(path))


def fit_head(
    x: np.ndarray, y: np.ndarray, out: Path, name: str, seed: int = 0
) -> dict[str, object]:
    """Standardise, fit, fold the scaling into the weights, pick the threshold where precision
    and recall balance, export `name`.onnx."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    w, b = train_logistic((x - mean) / std, y)
    w, b = (w / std).astype(np.float32), float(b - (w * mean / std).sum())
    # the threshold balances precision and recall over all training examples (a calibration
    # fifth alone is too small for a stable choice); held-out figures come from bench/filters.py
    threshold, balance = best_threshold(1 / (1 + np.exp(-(x @ w + b))), y)
    head = out / f"{name}.onnx"
    export_head(w, b, head)
    return {
        "file": head.name,
        "sha256": sha256_file(head),
        "threshold": round(threshold, 3),
        "train_min_precision_recall": round(balance, 4),
        "examples": len(y),
        "features": int(x.shape[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", type=Path, default=HERE / "build" / "encoder")
    parser.add_argument("--out", type=Path, default=HERE / "build" / "heads")
    args = parser.parse_args()
    encoder = OnnxEncoder(
        args.encoder / "model.int8.onnx",
        args.encoder / "tokenizer.json",
        "minilm-l6-int8",
        threads=2,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    fingerprint = heads_fingerprint(HERE, KG, sha256_file(args.encoder / "model.int8.onnx"))
    texts, labels = unfinished_examples(KG, held_out=False, seed=0)
    unfinished = fit_head(
        encoder.features(texts).astype(np.float64),
        np.array(labels, dtype=np.float64),
        args.out,
        "unfinished",
    )
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "p")
        conn = project.connect()
        import_paths(conn, [KG], project.settings.ingest)
        (x, y), _ = unrelated_examples(conn, project.settings.retrieval, encoder)
    unrelated = fit_head(x.astype(np.float64), y, args.out, "unrelated")
    info = {
        "unfinished": {
            **unfinished,
            "inputs_sha256": fingerprint,
            "encoder": "minilm-l6-int8",
            "input": "sentence_embedding + last real token's hidden state",
        },
        "unrelated": {
            **unrelated,
            "inputs_sha256": fingerprint,
            "encoder": "minilm-l6-int8",
            "input": "question/answer to context: best and mean cosine, shared words",
        },
    }
    (args.out / "heads.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
