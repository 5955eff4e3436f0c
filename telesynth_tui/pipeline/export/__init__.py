"""Stage 7, export: fixed, versioned layouts for SFT (chat messages or prompt-completion), RFT
(OpenAI's messages plus TRL GRPO's prompt, with references), DPO (TRL's conversational
preference type) and CSV; the openai target; parquet; Hugging Face dataset folders with splits;
and dataset cards with YAML front matter."""

from telesynth_tui.pipeline.export.records import FORMATS, LAYOUT_VERSION, LAYOUTS, TARGETS
from telesynth_tui.pipeline.export.run import Tokenizer, default_out, export_run, project_tokenizer

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "LAYOUT_VERSION",
    "TARGETS",
    "Tokenizer",
    "default_out",
    "export_run",
    "project_tokenizer",
]
