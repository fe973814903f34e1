"""Plan with a local Hugging Face causal language model, its output constrained to the plan schema.

The model and tokenizer load from a local directory (`AutoModelForCausalLM`, `AutoTokenizer`).
The prompt is the tokenizer's chat template when it has one, else plain text. Decoding is
constrained by outlines (its outlines-core engine) to the "decoding" form of `llm.plan_schema`:
every object id is an enum of the scene's ids, and every plan the schema admits passes
`validate_plan`, so any model, even one with random weights, yields a valid plan.

Every admissible plan is at most `llm.max_plan_bytes(schema)` bytes of compact JSON and each token
writes at least one character, so with the default token budget the JSON always closes. A smaller
`max_new_tokens` is allowed; a plan cut off by it is refused, saying so.

Why outlines, measured on this 2-core CPU (November 2026) with the tiny random Llama of
benchmarks/tiny_lm.py (400-token vocabulary, prompts of about 3,300 tokens, greedy):

=====================  ===========================  ==============  =========  ==================
library                download (with new deps)     installed       tokens/s   schema compile
=====================  ===========================  ==============  =========  ==================
outlines 1.3.3         9.3 MB (+outlines-core,      29 MB           ~490       0.32 s (400 tok),
                       pillow, diskcache, genson)                              7.9 s (30k vocab)
xgrammar 0.2.8         290 MB (triton 3.9.0 is a    1.0 GB          ~425       0.03-0.08 s,
                       hard dependency on Linux)                               1.9 s (30k vocab)
lm-format-enforcer     76 KB (+interegular)         0.7 MB          ~400       none
0.11.3
unconstrained          -                            -               ~490       -
=====================  ===========================  ==============  =========  ==================

Per token, all three cost little next to the model on CPU. xgrammar compiles fastest but drags in
a gigabyte of GPU compiler a CPU robot never uses. lm-format-enforcer is the smallest, but its
transformers integration no longer imports with transformers 5 (it imports the removed
`transformers.tokenization_utils`) and its JSON parser still emitted whitespace with
`max_consecutive_whitespaces=0`, so its plans have no length bound. outlines writes compact JSON
(`whitespace_pattern=""`) and its compile time, the one real cost, is paid once per distinct
schema: compiled indexes are cached by schema, and the schema changes only when the scene does.
The first constrained generation in a process also pays a one-off warm-up of about two seconds.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from outlines import from_transformers
from outlines.backends.outlines_core import OutlinesCoreBackend, OutlinesCoreLogitsProcessor
from outlines_core import Index
from outlines_core.json_schema import build_regex_from_schema
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.planning.llm import (
    INVALID_PLAN_REPLY,
    InvalidPlan,
    Prompt,
    build_prompt,
    max_plan_bytes,
    parse_plan,
    plan_schema,
    render_prompt,
)
from modular_robot.planning.plan import Plan, PlanRequest

# Compiled schemas kept: one per recent scene; a compile takes seconds with a real vocabulary.
INDEX_CACHE_SIZE = 8


class TransformersPlanner:
    """Plan with a local causal language model under schema-constrained decoding.

    Args:
        model_dir: Local directory of the model and tokenizer (`save_pretrained` layout).
        device: Torch device of the model ("cpu", "cuda").
        max_new_tokens: Cap on generated tokens; None uses the schema's worst-case plan length,
            which guarantees a complete plan. A smaller cap may cut a plan off: it is then refused.
        seed: None decodes greedily (deterministic); an integer samples at `temperature`, seeded
            per request so the same request gives the same plan.
        temperature: Sampling temperature (with `seed` only).
        eliminate: Show the model only the objects relevant to the instruction; False shows the map.
        similarity: Text similarity for finding relevant objects; None uses the shared MiniLM.
    """

    name = "transformers"

    def __init__(self, model_dir: str | Path, device: str = "cpu", max_new_tokens: int | None = None,
                 seed: int | None = None, temperature: float = 0.7, eliminate: bool = True,
                 similarity: TextSimilarity | None = None) -> None:
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1 or None, got {max_new_tokens}")
        if temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.model_dir = Path(model_dir)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.temperature = temperature
        self.eliminate = eliminate
        self._similarity = similarity
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir).to(device).eval()
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"the tokenizer in {self.model_dir} has no eos token: a plan could never end")
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self._vocabulary = OutlinesCoreBackend(from_transformers(self.model, self.tokenizer)).vocabulary
        self._indexes: OrderedDict[str, Index] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, request: PlanRequest) -> Plan:
        """Return the model's plan for the request: always one that passes `validate_plan`."""
        return self.plan_prompt(request, build_prompt(request, eliminate=self.eliminate, similarity=self._similarity))

    def plan_prompt(self, request: PlanRequest, prompt: Prompt) -> Plan:
        """Return the model's plan for a request whose prompt is already built (benchmarks time this part)."""
        schema = plan_schema(request.skills, prompt.object_ids)
        budget = max_plan_bytes(schema) + 1  # + the eos token
        limit = budget if self.max_new_tokens is None else min(self.max_new_tokens, budget)
        text, templated = render_prompt(self.tokenizer, prompt.messages)
        generated, prompt_tokens = self.generate(text, templated, schema, limit)
        tokens = {"prompt": prompt_tokens, "completion": len(generated)}
        ended = bool(generated) and generated[-1] == self.tokenizer.eos_token_id
        reply = self.tokenizer.decode(generated[:-1] if ended else generated, skip_special_tokens=False)
        try:
            plan = parse_plan(reply, schema, request)
        except InvalidPlan as error:
            # Decoding follows the schema, so only a cut-off plan gets here.
            why = f"it ran out of tokens ({limit}) before its plan was complete" if not ended else str(error)
            return Plan("refuse", reply=INVALID_PLAN_REPLY + why, tokens=tokens)
        return replace(plan, tokens=tokens)

    def generate(self, text: str, templated: bool, schema: dict[str, Any] | None,
                 max_new_tokens: int, min_new_tokens: int = 0) -> tuple[list[int], int]:
        """Generate from a prompt text; return the new token ids and the prompt's token count.

        Args:
            text: The rendered prompt.
            templated: Whether a chat template wrote it (then it carries its own special tokens).
            schema: JSON Schema to constrain decoding to; None generates freely (for benchmarks).
            max_new_tokens: At most this many new tokens.
            min_new_tokens: At least this many (the eos token is suppressed until then).
        """
        encoded = self.tokenizer(text, add_special_tokens=not templated, return_tensors="pt").to(self.device)
        processors = LogitsProcessorList()
        if schema is not None:
            processors.append(OutlinesCoreLogitsProcessor(self.compiled(schema), "torch"))
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "min_new_tokens": min_new_tokens,
                                   "logits_processor": processors, "pad_token_id": self._pad_id,
                                   "eos_token_id": self.tokenizer.eos_token_id}
        if self.seed is None:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=self.temperature, top_p=None, top_k=None)
        # The seed applies to this call only; the process's random state is left as it was.
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            if self.seed is not None:
                torch.manual_seed(self.seed)
            output = self.model.generate(**encoded, **options)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        return output[0, prompt_tokens:].tolist(), prompt_tokens

    def compiled(self, schema: dict[str, Any]) -> Index:
        """Return the compiled outlines index of a schema, from the cache when seen recently."""
        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            index = self._indexes.get(key)
            if index is not None:
                self._indexes.move_to_end(key)
                return index
        # Compact JSON (no whitespace between tokens) is what `max_plan_bytes` bounds.
        index = Index(build_regex_from_schema(json.dumps(schema), ""), self._vocabulary)
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > INDEX_CACHE_SIZE:
                self._indexes.popitem(last=False)
        return index
