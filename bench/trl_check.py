"""Train two steps with TRL's SFTTrainer, DPOTrainer and GRPOTrainer on telesynth exports, with a
tiny randomly initialised Llama and a tokenizer built offline from the exports' own text.

Not part of the test suite (TRL and torch are too heavy for it); run it in a throwaway venv:

    python3.11 -m venv /tmp/trlenv
    /tmp/trlenv/bin/pip install torch==2.13.0 && /tmp/trlenv/bin/pip install trl==1.16.0
    telesynth export 1 --format sft --hf --out EXPORTS/sft-hf
    telesynth export 1 --format sft --layout prompt-completion --out EXPORTS/sft-pc.jsonl
    telesynth export DTA_RUN --format dpo --out EXPORTS/dpo.jsonl --with-context
    telesynth export DTA_RUN --format rft --out EXPORTS/rft.jsonl
    PYTHONPATH=. /tmp/trlenv/bin/python bench/trl_check.py EXPORTS

The exports are read as they are: the dataset folder with `load_dataset(DIR)`, the plain exports
through the folder's README configs (`load_dataset(EXPORTS, "dpo")`). The GRPO rewards are
`telesynth_tui.pipeline.rewards.numeric_reward` and `rubric_reward`, passed as they are.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any


def tokenizer_for(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    chatml = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
        "'<|im_end|>' + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        chat_template=chatml,
    )


def tiny_model(tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return LlamaForCausalLM(config)


def main(exports: Path) -> None:
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from telesynth_tui.pipeline.rewards import numeric_reward, rubric_reward

    sft = load_dataset(str(exports / "sft-hf"))
    pc = load_dataset(str(exports), "sft-prompt-completion")["train"]
    dpo = load_dataset(str(exports), "dpo")["train"]
    rft = load_dataset(str(exports), "rft")["train"]
    print(
        {
            "sft": {k: v.num_rows for k, v in sft.items()},
            "sft-prompt-completion": pc.num_rows,
            "dpo": dpo.num_rows,
            "rft": rft.num_rows,
        }
    )
    texts = [m["content"] for row in sft["train"]["messages"] for m in row]
    texts += [m["content"] for row in pc["prompt"] for m in row]
    texts += [
        m["content"] for col in ("prompt", "chosen", "rejected") for row in dpo[col] for m in row
    ]
    tokenizer = tokenizer_for(texts)
    out = Path(tempfile.mkdtemp(prefix="trl-check-"))
    common: dict[str, Any] = {
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "learning_rate": 1e-3,
    }
    runs = [
        (
            "sft (messages, hf folder)",
            lambda: SFTTrainer(
                model=tiny_model(tokenizer),
                processing_class=tokenizer,
                train_dataset=sft["train"],
                eval_dataset=sft.get("validation"),
                args=SFTConfig(output_dir=str(out / "sft"), max_length=1024, **common),
            ),
        ),
        (
            "sft (prompt-completion)",
            lambda: SFTTrainer(
                model=tiny_model(tokenizer),
                processing_class=tokenizer,
                train_dataset=pc,
                args=SFTConfig(output_dir=str(out / "pc"), max_length=1024, **common),
            ),
        ),
        (
            "dpo",
            lambda: DPOTrainer(
                model=tiny_model(tokenizer),
                ref_model=tiny_model(tokenizer),
                processing_class=tokenizer,
                train_dataset=dpo,
                args=DPOConfig(output_dir=str(out / "dpo"), max_length=2048, **common),
            ),
        ),
        (
            "grpo",
            lambda: GRPOTrainer(
                model=tiny_model(tokenizer),
                processing_class=tokenizer,
                train_dataset=rft,
                reward_funcs=[numeric_reward, rubric_reward],
                args=GRPOConfig(
                    output_dir=str(out / "grpo"),
                    num_generations=2,
                    max_completion_length=24,
                    **common,
                ),
            ),
        ),
    ]
    for name, make in runs:
        trainer = make()
        result = trainer.train()
        losses = [h.get("loss") for h in trainer.state.log_history if "loss" in h]
        rewards = [h.get("reward") for h in trainer.state.log_history if "reward" in h]
        print(
            f"{name}: {trainer.state.global_step} steps, losses {losses}"
            + (f", rewards {rewards}" if rewards else "")
            + f", train_loss {result.training_loss:.4f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
