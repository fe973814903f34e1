"""What the language-model backends share: the plan JSON Schema, the prompt, the scene and reply checks.

The transformers and openai backends ask a model for one JSON plan. This module builds what they
send and checks what comes back:

* `plan_schema`: the plan JSON Schema from the skill catalog, restricted to the robot's skills.
  Steps are a discriminated union: each variant fixes "skill" to one name and requires "args" to
  satisfy that skill's parameter schema, with every object-id argument an enum of the scene's ids.
  Free text is capped and lists have maxItems, so every plan the schema admits has a bounded length
  (`max_plan_bytes`); the "decoding" form also puts numbers on a grid, so constrained decoding
  always closes the JSON within a token budget that can be computed.
* `relevant_objects` and `scene_text`: the "eliminate" step of Plan-Eliminate-Track. Only the
  objects the instruction can be about are shown: those whose label, category or colour it names
  (open-vocabulary `query` plus word overlap), the containers and supports they may go in or on,
  and the dialogue's referents; the whole map when nothing matches.
* `build_prompt`: the system prompt with the skill docs, and the user message with the scene,
  recent dialogue turns and the instruction.
* `parse_plan`: a model reply to a `Plan` that satisfies the schema and `validate_plan`, or
  `InvalidPlan` saying why not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import jsonschema

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.query import COLOR_SYNONYMS, SIZE_SYNONYMS, query
from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.planning.plan import PLAN_KINDS, Plan, PlanRequest, object_arguments, validate_plan
from modular_robot.skills.base import OBJECT_ID_PATTERN
from modular_robot.skills.library import skill_catalog

# Caps that keep every admissible plan short: a plan longer than this is never needed at a table.
MAX_STEPS = 6
MAX_TEXT_CHARS = 120
MAX_CANDIDATES = 5
# Dialogue turns shown to the model; older ones rarely matter for pronouns and follow-ups.
PROMPT_TURNS = 6
# Grid of numbers in the "decoding" form: 1 cm (or 0.01 rad) within the parameter's bounds, and
# within +-10 m where it has none (poses, positions: a table-top or room-sized world). A grid bounds
# the digits a model can write, which a plain JSON number does not.
NUMBER_STEP = 0.01
UNBOUNDED_LIMIT = 10.0
# Worst-case UTF-8 bytes of one string character as JSON writes it: a \uXXXX escape.
MAX_BYTES_PER_CHAR = 6
# Arguments of which exactly one must be given (a model validator, not expressible per property).
EXCLUSIVE_ARGUMENTS: dict[str, tuple[str, ...]] = {"navigate_to": ("object", "pose")}
# Categories that hold or carry other objects: shown whenever the instruction may move something.
CONTAINER_CATEGORIES = frozenset({"tray", "bowl", "plate", "box", "bin", "basket", "container", "crate", "dish",
                                  "platter", "board", "pan", "shelf", "table"})
_PLACING_WORDS = frozenset({"put", "place", "move", "drop", "stack", "set", "into", "onto", "in", "on", "inside",
                            "back", "return", "undo", "bring", "give", "leave", "sort", "tidy", "clean"})
_ID_RE = re.compile(OBJECT_ID_PATTERN)
_WORD_RE = re.compile(r"[a-z0-9]+")
# Breaks an instruction into the referring expressions `query` understands ("the red cube", "the tray").
_PHRASE_SPLIT_RE = re.compile(r"\b(?:and|then|into|onto|in|on|to|from|with|at|inside|next)\b|[,.;:!?]")
_OPEN_ARGUMENT_WORDS = frozenset({"the", "a", "an", "it", "them", "one", "please", "me"})

SchemaForm = Literal["decoding", "api"]
# How a backend's refusal of an invalid model plan begins.
INVALID_PLAN_REPLY = "the language model's plan was invalid: "


class InvalidPlan(ValueError):
    """A model reply that is not a valid plan; the message says why."""


class Tokenizer(Protocol):
    """What token counting needs of a Hugging Face tokenizer."""

    chat_template: Any

    def __call__(self, text: str, add_special_tokens: bool = ...) -> Any: ...

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Prompt:
    """What a backend sends for one request.

    Attributes:
        messages: Chat messages: the system prompt, then the user message with scene and instruction.
        scene: The objects shown to the model (the eliminated map), in the order listed.
        filtered: Whether the scene is a subset of the map (False when it fell back to the whole map).
    """

    messages: list[dict[str, str]]
    scene: tuple[MapObject, ...]
    filtered: bool

    @property
    def object_ids(self) -> tuple[str, ...]:
        """Ids a plan may name: those of the scene shown that are valid skill arguments."""
        return tuple(o.id for o in self.scene if _ID_RE.match(o.id))


# --- schema ---------------------------------------------------------------------------------------


def plan_schema(skills: Iterable[str], object_ids: Sequence[str], form: SchemaForm = "decoding") -> dict[str, Any]:
    """Return the JSON Schema of a plan for these skills and map ids.

    Args:
        skills: Skills the robot can run; the others are not offered.
        object_ids: Ids object arguments and candidates may take (an enum); skills that need an
            object are left out when there are none.
        form: "decoding" for local constrained decoding: the root is a union that ties kind
            "execute" to one to MAX_STEPS steps and the other kinds to none, and numbers lie on a
            grid, so every admissible plan is valid and of bounded length. "api" for OpenAI strict
            structured output, which wants a plain object at the root and allows numeric ranges:
            there "execute needs steps" is left to `validate_plan`.
    """
    ids = sorted({i for i in object_ids if _ID_RE.match(i)})
    allowed = set(skills)
    variants = []
    for entry in skill_catalog():
        if entry["name"] in allowed:
            variants += _step_variants(entry["name"], entry["parameters"], ids, form)
    reply = {"type": "string", "maxLength": MAX_TEXT_CHARS,
             "description": "What the robot says: the answer, the question, the refusal, or what it will do."}
    candidates = {"type": "array", "items": {"type": "string", "enum": ids} if ids else {"type": "string"},
                  "maxItems": MAX_CANDIDATES if ids else 0,
                  "description": "Map ids a clarifying question offers (kind 'clarify' only)."}
    step = {"anyOf": variants} if variants else None

    def branch(kinds: Sequence[str], min_steps: int, max_steps: int) -> dict[str, Any]:
        # A branch with no steps still names an item schema: strict mode requires one.
        items = step if step is not None else {"type": "object", "properties": {}, "required": [],
                                               "additionalProperties": False}
        return {"type": "object", "additionalProperties": False, "required": ["kind", "steps", "reply", "candidates"],
                "properties": {"kind": {"type": "string", "enum": list(kinds)},
                               "steps": {"type": "array", "items": items, "minItems": min_steps,
                                         "maxItems": max_steps},
                               "reply": reply, "candidates": candidates}}

    talk = [k for k in PLAN_KINDS if k != "execute"]
    if form == "api":
        return branch(PLAN_KINDS if step else talk, 0, MAX_STEPS if step else 0)
    branches = ([branch(["execute"], 1, MAX_STEPS)] if step else []) + [branch(talk, 0, 0)]
    return {"anyOf": branches}


def _step_variants(skill: str, parameters: dict[str, Any], ids: list[str], form: SchemaForm) -> list[dict[str, Any]]:
    """Return the step schemas of one skill: one per way of giving its exclusive arguments."""
    properties = parameters.get("properties", {})
    exclusive = EXCLUSIVE_ARGUMENTS.get(skill, ())
    choices = [(name,) for name in exclusive] if exclusive else [()]
    variants = []
    for choice in choices:
        args: dict[str, Any] = {}
        possible = True
        for name, spec in properties.items():
            if name in exclusive and name not in choice:
                continue
            converted = _argument_schema(skill, name, spec, ids, form)
            if converted is None:
                possible = False
                break
            args[name] = converted
        if not possible:
            continue
        # Every argument is required: strict mode demands it, and it fixes the plan's length.
        variants.append({"type": "object", "additionalProperties": False, "required": ["skill", "args"],
                         "properties": {"skill": {"type": "string", "enum": [skill]},
                                        "args": {"type": "object", "additionalProperties": False,
                                                 "required": list(args), "properties": args}}})
    return variants


def _argument_schema(skill: str, name: str, spec: dict[str, Any], ids: list[str],
                     form: SchemaForm) -> dict[str, Any] | None:
    """Return the schema of one argument, or None when no value is possible (no object to name)."""
    options = [s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"]
    base = dict(options[0])
    if "description" in spec:
        base["description"] = spec["description"]
    base.pop("title", None)
    base.pop("default", None)
    if name in object_arguments(skill):
        if not ids:
            return None
        return {"type": "string", "enum": ids, "description": base.get("description", "")}
    kind = base.get("type")
    if kind == "string" and "enum" not in base:
        base.pop("pattern", None)
        base["maxLength"] = min(int(base.get("maxLength", MAX_TEXT_CHARS)), MAX_TEXT_CHARS)
    elif kind in ("number", "integer"):
        base = _number_schema(base, form)
    elif kind == "array" and base.get("items", {}).get("type") in ("number", "integer"):
        base["items"] = _number_schema(dict(base["items"]), form)
    return base


def _number_schema(spec: dict[str, Any], form: SchemaForm) -> dict[str, Any]:
    """Return a number's schema: its range for the API, its grid of values for decoding."""
    if form == "api":
        return spec
    low = spec.get("minimum", spec.get("exclusiveMinimum"))
    high = spec.get("maximum", spec.get("exclusiveMaximum"))
    described = {k: v for k, v in spec.items() if k == "description"}
    if spec.get("type") == "integer":
        low = -int(UNBOUNDED_LIMIT) if low is None else int(low)
        high = int(UNBOUNDED_LIMIT) if high is None else int(high)
        return {"type": "integer", "enum": list(range(low, high + 1)), **described}
    low = -UNBOUNDED_LIMIT if low is None else float(low)
    high = UNBOUNDED_LIMIT if high is None else float(high)
    first, last = round(low / NUMBER_STEP), round(high / NUMBER_STEP)
    values = [round(k * NUMBER_STEP, 6) for k in range(first, last + 1)]
    values = [v for v in values if _in_range(v, spec)]
    return {"type": "number", "enum": values, **described}


def _in_range(value: float, spec: dict[str, Any]) -> bool:
    """Return whether a grid value satisfies the schema's bounds."""
    return (value >= spec.get("minimum", -float("inf")) and value <= spec.get("maximum", float("inf"))
            and value > spec.get("exclusiveMinimum", -float("inf"))
            and value < spec.get("exclusiveMaximum", float("inf")))


def max_plan_bytes(schema: dict[str, Any]) -> int:
    """Return the most UTF-8 bytes a compact JSON document valid against the schema can take.

    Compact means no whitespace between tokens, as the decoders are configured. Every string
    character is counted as a \\uXXXX escape, the longest way JSON can write it.

    Raises:
        ValueError: if the schema admits documents of unbounded length.
    """
    if "anyOf" in schema:
        return max(max_plan_bytes(s) for s in schema["anyOf"])
    if "enum" in schema:
        return max((len(json.dumps(v, ensure_ascii=False).encode()) for v in schema["enum"]), default=0)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        keys = sum(len(json.dumps(k).encode()) + 1 + max_plan_bytes(s) for k, s in properties.items())
        return 2 + keys + max(len(properties) - 1, 0)
    if kind == "array":
        count = schema.get("maxItems")
        if count is None:
            raise ValueError("an array without maxItems has no length bound")
        return 2 + count * max_plan_bytes(schema["items"]) + max(count - 1, 0) if count else 2
    if kind == "string":
        if "maxLength" not in schema:
            raise ValueError("a string without maxLength has no length bound")
        return 2 + MAX_BYTES_PER_CHAR * int(schema["maxLength"])
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    raise ValueError(f"no length bound for a schema of type {kind!r}")


# --- the scene ("eliminate") ----------------------------------------------------------------------


def relevant_objects(request: PlanRequest, similarity: TextSimilarity | None = None) -> tuple[list[MapObject], bool]:
    """Return the map objects the instruction can be about, and whether that is a strict subset.

    An object is relevant when the instruction names its label, category or colour (word overlap,
    and open-vocabulary `query` on each phrase of the instruction), when it is a container or
    support and the instruction may move something, when it is held, or when the dialogue refers
    to it (last referents, a pending clarification's candidates, the last task's moves). With
    nothing relevant, the whole map is returned, so the model can still answer or ask.

    Args:
        request: The instruction, map and dialogue.
        similarity: Text similarity for `query`; None uses the shared MiniLM embedder.
    """
    objects = list(request.objects)
    words = {_singular(w) for w in _WORD_RE.findall(request.instruction.lower())}
    chosen: set[str] = set()
    for obj in objects:
        if words & _object_words(obj):
            chosen.add(obj.id)
    for phrase in [request.instruction, *_PHRASE_SPLIT_RE.split(request.instruction)]:
        if set(_WORD_RE.findall(phrase.lower())) - _OPEN_ARGUMENT_WORDS:
            chosen.update(o.id for o, _ in query(objects, phrase, max_results=0, similarity=similarity,
                                                  robot_pose=request.robot_pose))
    named = bool(chosen)
    dialogue = request.dialogue
    chosen.update(dialogue.referents)
    if dialogue.pending is not None:
        chosen.update(dialogue.pending.candidates)
    chosen.update(move.object_id for move in dialogue.last_moves())
    if request.held is not None:
        chosen.add(request.held)
    if not chosen:
        return objects, False
    if named and words & _PLACING_WORDS:
        chosen.update(o.id for o in objects if _is_container(o))
    scene = [o for o in objects if o.id in chosen]
    return scene, len(scene) < len(objects)


def _singular(word: str) -> str:
    """Return a crude singular ("cubes" -> "cube", "boxes" -> "box"); enough for overlap."""
    if len(word) > 4 and word.endswith(("xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _object_words(obj: MapObject) -> set[str]:
    """Return the words that name an object: label and category nouns, its colour and synonyms."""
    words = {_singular(w) for w in _WORD_RE.findall(f"{obj.label} {obj.category}".lower())}
    words -= set(SIZE_SYNONYMS)
    color = (obj.color or "").lower()
    if color:
        words |= {name for name, canonical in COLOR_SYNONYMS.items() if canonical == COLOR_SYNONYMS.get(color, color)}
    return words


def _is_container(obj: MapObject) -> bool:
    """Return whether things can go in or on the object: a container category, or broad and flat."""
    if set(_WORD_RE.findall(obj.category.lower())) & CONTAINER_CATEGORIES:
        return True
    return bool(min(obj.size[0], obj.size[1]) >= 0.12 and obj.size[2] <= 0.06)


def scene_text(scene: Sequence[MapObject], request: PlanRequest) -> str:
    """Return the compact scene: one line per shown object, the held object and the robot pose."""
    lines = []
    for obj in scene:
        x, y, z = (float(v) for v in obj.position)
        sx, sy, sz = (float(v) for v in obj.size)
        colour = f", {obj.color}" if obj.color else ""
        lines.append(f"- {obj.id}: {obj.label} ({obj.category}{colour}) at ({x:.2f}, {y:.2f}, {z:.2f}) m, "
                     f"size {sx:.2f} x {sy:.2f} x {sz:.2f} m")
    if not lines:
        lines.append("- (the map is empty)")
    hidden = len(request.objects) - len(scene)
    if hidden > 0:
        lines.append(f"({hidden} other objects in the map are unrelated to the instruction and not listed.)")
    lines.append(f"Held: {request.held or 'nothing'}.")
    if request.robot_pose is not None:
        x, y, yaw = request.robot_pose
        lines.append(f"Robot base at ({x:.2f}, {y:.2f}) m, heading {yaw:.2f} rad.")
    return "\n".join(lines)


def dialogue_text(request: PlanRequest, turns: int = PROMPT_TURNS) -> str:
    """Return the latest dialogue turns and any pending clarifying question, oldest first."""
    dialogue = request.dialogue
    lines = []
    for turn in dialogue.turns[-turns:]:
        ran = f" Ran: {'; '.join(turn.steps)}." if turn.steps else ""
        outcome = "" if turn.kind != "execute" else (" It succeeded." if turn.success else " It failed.")
        lines.append(f"User: {turn.user}\nRobot ({turn.kind}): {turn.reply}{ran}{outcome}")
    if dialogue.pending is not None:
        lines.append(f"The robot asked which object was meant for \"{dialogue.pending.instruction}\": "
                     f"{', '.join(dialogue.pending.candidates)}. The instruction below may answer it.")
    return "\n".join(lines)


# --- prompt ----------------------------------------------------------------------------------------


def system_prompt(skills: Iterable[str]) -> str:
    """Return the system prompt: the robot's role, the plan format and the docs of its skills."""
    allowed = set(skills)
    docs = []
    for entry in skill_catalog():
        if entry["name"] not in allowed:
            continue
        params = []
        for name, spec in entry["parameters"].get("properties", {}).items():
            options = [s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"]
            kind = "|".join(json.dumps(o["enum"]) if "enum" in o else o.get("type", "any") for o in options)
            params.append(f"    {name} ({kind}): {spec.get('description', '')}")
        docs.append(f"- {entry['name']}: {entry['description']}\n" + ("\n".join(params) or "    (no arguments)")
                    + f"\n    preconditions: {', '.join(entry['preconditions']) or 'none'}; "
                    f"effects: {', '.join(entry['effects']) or 'none'}")
    return (
        "You plan for a robot arm at a table. Reply with one JSON object and nothing else:\n"
        '{"kind": ..., "steps": [{"skill": ..., "args": {...}}, ...], "reply": ..., "candidates": [...]}\n'
        "kind is one of: execute (steps run in order), answer (a question about the scene, answered in "
        "reply), clarify (reply asks which of the candidate ids is meant), refuse (reply says why), "
        "not_understood (reply says so and gives examples). Only 'execute' has steps. Name objects by "
        "their ids in the scene. Positions are in metres in the world frame: x forward from the robot, "
        "y to its left, z up.\n\nSkills:\n" + "\n".join(docs))


def build_prompt(request: PlanRequest, *, eliminate: bool = True, similarity: TextSimilarity | None = None) -> Prompt:
    """Return the messages for a request, with the scene restricted to the relevant objects.

    Args:
        request: What to plan.
        eliminate: Show only the relevant objects (`relevant_objects`); False shows the whole map.
        similarity: Text similarity for the open-vocabulary lookup; None uses MiniLM.
    """
    if eliminate:
        scene, filtered = relevant_objects(request, similarity)
    else:
        scene, filtered = list(request.objects), False
    parts = [f"Scene:\n{scene_text(scene, request)}"]
    history = dialogue_text(request)
    if history:
        parts.append(f"Dialogue so far:\n{history}")
    parts.append(f"Instruction: {request.instruction}")
    messages = [{"role": "system", "content": system_prompt(request.skills)},
                {"role": "user", "content": "\n\n".join(parts)}]
    return Prompt(messages, tuple(scene), filtered)


def render_prompt(tokenizer: Tokenizer, messages: list[dict[str, str]]) -> tuple[str, bool]:
    """Return the prompt text for a causal model and whether it came from the chat template.

    Without a chat template, the messages are written as plain "System:/User:/Assistant:" text.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), True
    body = "\n\n".join(f"{m['role'].capitalize()}:\n{m['content']}" for m in messages)
    return f"{body}\n\nAssistant:\n", False


def count_tokens(tokenizer: Tokenizer, text: str, templated: bool) -> int:
    """Return the number of tokens of a prompt text (special tokens added unless a template wrote them)."""
    return len(tokenizer(text, add_special_tokens=not templated)["input_ids"])


# --- replies ---------------------------------------------------------------------------------------


def parse_plan(reply: str, schema: dict[str, Any], request: PlanRequest) -> Plan:
    """Return the plan a model replied, checked against the schema it was given and `validate_plan`.

    Raises:
        InvalidPlan: if the reply is not JSON, violates the schema, or names a skill the robot
            lacks, arguments its schema rejects, or an id that is not in the map.
    """
    try:
        data = json.loads(reply)
    except json.JSONDecodeError as error:
        raise InvalidPlan(f"the reply is not valid JSON ({error})") from error
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidPlan("the reply violates the plan schema: " + "; ".join(_schema_error(e) for e in errors[:3]))
    try:
        plan = Plan.from_dict(data)
    except ValueError as error:
        raise InvalidPlan(str(error)) from error
    problems = validate_plan(plan, request.objects, request.skills)
    if problems:
        raise InvalidPlan("; ".join(problems))
    return plan


def _schema_error(error: jsonschema.ValidationError) -> str:
    """Return a short reason for a schema error, naming where it is and, for unions, the best match."""
    where = "/".join(str(p) for p in error.absolute_path) or "the plan"
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        inner = "/".join(str(p) for p in best.absolute_path) or where
        return f"at {inner}: {best.message[:200]}"
    return f"at {where}: {error.message[:200]}"
