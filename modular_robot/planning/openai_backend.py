"""Plan with a model behind any OpenAI-compatible chat completions server (ollama, vLLM, hosted).

The request asks for structured output against the "api" form of `llm.plan_schema`
(``response_format={"type": "json_schema", ...}`` with ``strict: true``). Servers do not all
honour it, so every reply is checked again (`llm.parse_plan`): a reply that is not JSON, violates
the schema, or fails `validate_plan` is sent back once with the reason; a second bad reply becomes
a refusal. An invalid plan is never returned for execution. Network and server errors are
refusals that say what went wrong.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import openai

from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.planning.llm import INVALID_PLAN_REPLY, InvalidPlan, build_prompt, parse_plan, plan_schema
from modular_robot.planning.plan import Plan, PlanRequest

# One re-ask: a model that fails twice on the same request rarely gets it right the third time.
MAX_REPLIES = 2


class OpenAIPlanner:
    """Plan through the official `openai` client against a configurable endpoint.

    Args:
        base_url: The server's API root, e.g. "http://localhost:11434/v1" for ollama.
        model: Model name as the server knows it.
        api_key: API key; local servers accept any.
        timeout_s: Timeout of one request (s).
        temperature: Sampling temperature; 0 asks for the most likely plan.
        max_tokens: Cap on the reply's tokens, or None for the server's default.
        eliminate: Show the model only the objects relevant to the instruction; False shows the map.
        similarity: Text similarity for finding relevant objects; None uses the shared MiniLM.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "none", timeout_s: float = 60.0,
                 temperature: float = 0.0, max_tokens: int | None = None, eliminate: bool = True,
                 similarity: TextSimilarity | None = None) -> None:
        if timeout_s <= 0.0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.eliminate = eliminate
        self._similarity = similarity
        # The client's own retries would resend silently; a planner should answer, not wait.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=0)

    def plan(self, request: PlanRequest) -> Plan:
        """Return the model's valid plan, or a refusal that says why there is none."""
        prompt = build_prompt(request, eliminate=self.eliminate, similarity=self._similarity)
        schema = plan_schema(request.skills, prompt.object_ids, form="api")
        messages: list[dict[str, Any]] = list(prompt.messages)
        tokens = {"prompt": 0, "completion": 0}
        reason = ""
        for _ in range(MAX_REPLIES):
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "plan", "schema": schema, "strict": True}},
                    **({"max_tokens": self.max_tokens} if self.max_tokens is not None else {}))
            except openai.APIStatusError as error:
                return Plan("refuse", reply=f"the language model server answered HTTP {error.status_code}: "
                                            f"{_short(error.message)}", tokens=tokens)
            except openai.APIError as error:
                return Plan("refuse", reply=f"the language model could not be reached: {_short(str(error))}",
                            tokens=tokens)
            if response.usage is not None:
                tokens["prompt"] += response.usage.prompt_tokens or 0
                tokens["completion"] += response.usage.completion_tokens or 0
            if not response.choices:
                reason = "the server returned no reply"
                continue
            choice = response.choices[0]
            message = choice.message
            if getattr(message, "refusal", None):
                return Plan("refuse", reply=f"the language model declined: {_short(message.refusal)}", tokens=tokens)
            content = message.content or ""
            try:
                if choice.finish_reason == "length":
                    raise InvalidPlan("the reply was cut off at the token limit")
                plan = parse_plan(content, schema, request)
            except InvalidPlan as error:
                reason = str(error)
                messages += [{"role": "assistant", "content": content},
                             {"role": "user", "content": f"That plan is invalid: {reason}. Reply with a corrected "
                                                         f"plan: one JSON object that follows the schema."}]
                continue
            return replace(plan, tokens=dict(tokens))
        return Plan("refuse", reply=INVALID_PLAN_REPLY + reason, tokens=tokens)


def _short(text: str, limit: int = 300) -> str:
    """Return text on one line, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
