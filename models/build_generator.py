"""Train the tiny embedded generator on the bundled knowledge and export it as a Q8_0 GGUF.

Reproducible: fixed seed and step count (not wall-clock). The corpus is kg/docs plus
task-formatted ChatML examples made from kg/triples, kg/entities and kg/formulas. The model is a
~2M-parameter Llama; it exercises every real code path (llama.cpp, chat template, grammar,
timings) but does not write useful answers.

Run: .venv/bin/python models/build_generator.py [--steps N] [--out models/tiny-telesynth-q8_0.gguf]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from tinyllama import (  # noqa: E402
    TinyConfig,
    TinyLlama,
    export_gguf,
    quantize_gguf,
    train_tokenizer,
)

from telesynth_tui.inference.registry import sha256_file  # noqa: E402

KG = HERE.parent / "kg"
OUT = HERE / "tiny-telesynth-q8_0.gguf"
SYSTEM = "You are a RAN troubleshooting assistant. Answer from the given context."
QUESTIONS = {
    "indicates": "What can {s} indicate?",
    "degrades": "Which KPI does {s} degrade?",
    "checked_by": "How do you check for {s}?",
    "reads": "What does the check '{s}' look at?",
    "resolved_by": "How is {s} resolved?",
    "adjusts": "Which parameter does '{s}' change?",
    "verified_by": "How do you verify '{s}'?",
    "measured_by": "Which counter measures {s}?",
    "raised_by": "Which element raises {s}?",
    "defined_in": "Where is {s} specified?",
    "computes": "What does the formula '{s}' compute?",
    "has_input": "What is an input of '{s}'?",
}


def chat(user: str, assistant: str) -> str:
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
        f"<|im_start|>assistant\n{assistant}<|im_end|>\n"
    )


def task_examples(rng: random.Random) -> list[str]:
    """ChatML examples from the bundled triples and formulas (plain and JSON answers)."""
    examples: list[str] = []
    for path in sorted((KG / "triples").glob("*.csv")):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                s, p, o = row["subject"], row["predicate"], row["object"]
                sentence = f"{s} {p.replace('_', ' ')} {o}."
                question = QUESTIONS.get(p, "What is {s} related to?").format(s=s)
                if rng.random() < 0.5:
                    examples.append(chat(question, sentence))
                else:
                    answer = json.dumps({"question": question, "answer": sentence})
                    examples.append(
                        chat(f"Context: {sentence}\nWrite one QA pair as JSON.", answer)
                    )
    for path in sorted((KG / "formulas").glob("*.toml")):
        for formula in tomllib.loads(path.read_text(encoding="utf-8")).get("formula", []):
            example = formula.get("example")
            if not example:
                continue
            inputs = ", ".join(f"{k} = {v}" for k, v in example["inputs"].items())
            examples.append(
                chat(
                    f"Compute {formula['name']} for {inputs}.",
                    f"{formula.get('output_symbol') or 'Result'} = {formula['expression']} = "
                    f"{example['output']:g} {formula.get('output_unit', '')}".strip(),
                )
            )
    rng.shuffle(examples)
    return examples


def corpus(seed: int) -> list[str]:
    docs = [p.read_text(encoding="utf-8") for p in sorted((KG / "docs").rglob("*.md"))]
    return docs + task_examples(random.Random(seed))


def train(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    texts = corpus(args.seed)
    cfg = TinyConfig()
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    cfg = TinyConfig(vocab_size=tokenizer.get_vocab_size())
    eot = tokenizer.token_to_id("<|endoftext|>")
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text).ids)
        ids.append(eot)
    data = torch.tensor(ids, dtype=torch.long)
    model = TinyLlama(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed)
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(args.steps):
        warm = min(1.0, (step + 1) / 50)
        decay = 0.5 * (1 + torch.cos(torch.tensor(step / args.steps * torch.pi))).item()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm * (0.1 + 0.9 * decay)
        starts = torch.randint(0, len(data) - args.seq - 1, (args.batch,), generator=generator)
        batch = torch.stack([data[s : s + args.seq + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, cfg.vocab_size), batch[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(round(loss.item(), 4))
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {time.perf_counter() - t0:6.1f}s")
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "tiny-f32.gguf"
        export_gguf(model, tokenizer, f32, "tiny-telesynth")
        quantize_gguf(f32, args.out, "Q8_0")
    digest = sha256_file(args.out)
    report = {
        "file": args.out.name,
        "sha256": digest,
        "parameters": model.n_parameters(),
        "config": vars(cfg) if hasattr(cfg, "__dict__") else str(cfg),
        "train_tokens": len(ids),
        "steps": args.steps,
        "batch": args.batch,
        "seq": args.seq,
        "seed": args.seed,
        "first_loss": losses[0],
        "final_loss": sum(losses[-20:]) / min(20, len(losses)),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    report = train(parser.parse_args())
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
