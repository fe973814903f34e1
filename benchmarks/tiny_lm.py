"""A tiny random-weight causal language model and its tokenizer, built offline for planner tests and benchmarks.

Model hubs are unreachable, so tests and the LLM planner benchmark make their own model: a
byte-level BPE tokenizer trained with the `tokenizers` library on the skill docs and a few plans
(a few hundred tokens; byte-level, so any text encodes), and a two-layer Llama with random
weights. Both are saved with `save_pretrained`, so the planner loads them through the real
`AutoTokenizer` / `AutoModelForCausalLM` path.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from modular_robot.skills.library import skill_catalog

EOS = "<|eos|>"
PAD = "<|pad|>"
# A minimal chat template in the usual Jinja form: role headers, then the generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_EXAMPLE_PLANS = [
    {"kind": "execute", "steps": [{"skill": "pick", "args": {"object": "red_cube_1"}},
                                  {"skill": "place", "args": {"object": "red_cube_1", "relation": "in",
                                                              "target": "blue_tray_1"}}],
     "reply": "I will put the red cube in the blue tray.", "candidates": []},
    {"kind": "clarify", "steps": [], "reply": "Which cube do you mean?",
     "candidates": ["red_cube_1", "red_cube_2"]},
    {"kind": "answer", "steps": [], "reply": "There are three objects on the table.", "candidates": []},
]


def _corpus() -> list[str]:
    """Return training text: skill docs, parameter schemas, example plans and instructions."""
    texts = [json.dumps(entry) for entry in skill_catalog()]
    texts += [entry["description"] for entry in skill_catalog()]
    texts += [json.dumps(plan, separators=(",", ":")) for plan in _EXAMPLE_PLANS]
    texts += ["put the red cube in the tray", "push the green cylinder to the left", "what is on the table?",
              "id red_cube_1 label small red cube at (0.45, -0.12, 0.03) m size 0.05 x 0.05 x 0.05 m"]
    return texts


def build_tiny_lm(directory: str | Path, *, vocab_size: int = 400, chat_template: bool = True,
                  seed: int = 0) -> Path:
    """Train a tokenizer, build a random two-layer Llama, save both to ``directory`` and return it.

    Args:
        directory: Where to save (created if missing).
        vocab_size: Tokenizer vocabulary size, including the 256 byte tokens and the specials.
        chat_template: Give the tokenizer a chat template (else the planner falls back to plain text).
        seed: Seed of the random weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=EOS, pad_token=PAD)
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16384,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    return directory
