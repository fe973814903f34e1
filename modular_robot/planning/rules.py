"""The offline `rules` planner backend: a grammar of commands over the open-vocabulary resolver.

`RulesPlanner.plan` turns an instruction into a `Plan` with no language model: `rules_language`
cuts it into clauses and parses each against a small grammar; object phrases are resolved on the
map by `modular_robot.core.mapping.query` (colours, sizes, synonyms, spatial relations and
superlatives, MiniLM-grounded nouns) through `rules_scene`; questions are answered by
`rules_questions`. The planner keeps the dialogue: "it" and "them" name the last instruction's
objects, "do the same with the blue one" repeats the last action, "undo that" and "put it back"
put moved objects back where the executor saw them, and an ambiguous phrase gets a clarifying
question whose answer finishes the instruction. The object in the gripper (`PlanRequest.held`, then
what the plan so far leaves there) is what "what you are holding" and "the cube in your hand" name,
what "it" names when the dialogue names nothing, and what "put it down" puts on the surface below
it (with `place_at`); while nothing is held these are refused, naming the words. It is
deterministic: the same request and dialogue give the same plan.

On a robot that can both drive and pick (an arm on a mobile base), an arm step on an object out of
the arm's reach is preceded by a drive up to that object (`navigate_to`), with the arm sent home
first so that it rides tucked in, out of the camera's view: "put the red cube in the tray" on
another table becomes drive to the cube, pick it, arm home, drive to the tray, place it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.query import parse_query
from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.core.mapping.text_embedding import default_embedder
from modular_robot.planning.dialogue import Clarification, Dialogue, Move
from modular_robot.planning.plan import Call, Plan, PlanRequest, validate_plan
from modular_robot.planning.rules_language import (
    Clause,
    Quantity,
    Ref,
    is_cancel,
    is_courtesy,
    is_unsafe,
    parse_clause,
    parse_quantity,
    split_clauses,
    strip_polite,
    surface_only,
)
from modular_robot.planning.rules_questions import answer, bare, is_question
from modular_robot.planning.rules_scene import (
    SET_FLOOR,
    a_or_an,
    best_group,
    distinct_names,
    free_spot,
    full_name,
    grasp_problem,
    is_container,
    is_round,
    join_words,
    noun,
    ranked,
    rests_in_or_on,
)

EXAMPLES = ("'put the red cube in the tray'", "'pick up the blue block'", "'what do you see?'")
SAFETY_REPLY = ("I cannot do that: my safety limits (speed, force, workspace and collision checking) stay in "
                "force whatever I am told.")
# Push distances the skill accepts (m); a request outside them is refused, not clamped.
PUSH_RANGE_M = (0.02, 0.3)
_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
             "fifth": 4, "5th": 4}
_RELATION_WORDS = {"in": "in", "on": "on", "left_of": "left of", "right_of": "right of",
                   "in_front_of": "in front of", "behind": "behind", "near": "next to"}
_NOT_CAUGHT = "Sorry, I did not catch which one."
# On a robot with a base and an arm, objects farther than this from where the base stands (m,
# horizontal) are out of the arm's reach: the base drives up to them first. A Panda reaches about
# 0.85 m from its base; the tabletop scenes keep every object within it.
ARM_REACH_M = 0.9


@dataclass(frozen=True)
class LastAction:
    """What "do the same with ..." repeats: the last command, its object left open.

    Attributes:
        clause: The command with its destination resolved to an id.
        noun: What the previous object was ("cube"), for "the blue one".
    """

    clause: Clause
    noun: str


class _Stop(Exception):
    """Planning ends early with this plan (a refusal, a clarifying question, an answer)."""

    def __init__(self, plan: Plan, clarification: Clarification | None = None) -> None:
        super().__init__(plan.reply)
        self.plan = plan
        self.clarification = clarification


@dataclass
class _Context:
    """The state of one planning pass: the simulated gripper, the referents, the calls so far."""

    request: PlanRequest
    text: str
    fixed: dict[str, tuple[str, ...]]
    held: str | None
    referents: tuple[str, ...]
    objects: dict[str, MapObject]
    steps: list[Call] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    last_action: LastAction | None = None
    forget: list[Move] = field(default_factory=list)
    forget_last: bool = False
    unseen: str | None = None
    drove_to: str | None = None
    base_moved: bool = False
    arm_home: bool = False
    down_steps: set[int] = field(default_factory=set)


class RulesPlanner:
    """Plan with a fixed grammar and the map's open-vocabulary resolver; no model calls beyond MiniLM.

    Args:
        similarity: Cosine similarity of two short texts; None uses the shared MiniLM embedder
            (which caches every string's embedding, so repeated words cost nothing).
    """

    name = "rules"

    def __init__(self, similarity: TextSimilarity | None = None) -> None:
        self._similarity = similarity if similarity is not None else default_embedder().similarity

    def plan(self, request: PlanRequest) -> Plan:
        """Return the plan, answer, clarifying question or refusal for the request's instruction."""
        dialogue = request.dialogue
        raw = " ".join(request.instruction.lower().split()).strip(" .!?")
        text = strip_polite(request.instruction.strip()).strip(" .!")
        low = text.lower().rstrip("?").strip()
        # "Can you see a ball?" is a question before "can you" is taken for politeness.
        asked = raw if is_question(raw) else low
        if not low:
            return _not_understood(request.instruction)
        if is_unsafe(low):
            return Plan("refuse", reply=SAFETY_REPLY)
        pending = dialogue.pending
        if pending is not None:
            if is_cancel(low):
                dialogue.pending = None
                return Plan("answer", reply="All right, I will leave it.")
            if not self._is_command(asked):
                answered = self._answer_clarification(request, pending, low)
                # "Do the same with the ball" names none of the candidates: a new follow-up, not an answer.
                if not (answered.reply.startswith(_NOT_CAUGHT) and self._is_follow_up(low)):
                    return answered
            dialogue.pending = None
        if is_courtesy(low):
            return Plan("answer", reply="Hello! Tell me what to do, for example " + EXAMPLES[0] + ".")
        if is_question(asked):
            found = answer(asked, request.objects, self._similarity, request.robot_pose, request.held,
                           dialogue.referents)
            if found is not None:
                if found.referents:
                    dialogue.referents = found.referents
                return Plan("answer", reply=found.reply)
        return self._plan_text(request, text, {})

    # Dialogue.

    def _is_command(self, low: str) -> bool:
        """Return whether the text is a new instruction rather than the answer to a question."""
        if is_question(low):
            return True
        clauses = [parse_clause(c) for c in split_clauses(low)]
        return bool(clauses) and all(c is not None and c.action != "follow_up" for c in clauses)

    def _is_follow_up(self, low: str) -> bool:
        """Return whether the text is a follow-up instruction ("do the same with ...")."""
        clauses = [parse_clause(c) for c in split_clauses(low)]
        return bool(clauses) and all(c is not None for c in clauses) and any(c.action == "follow_up" for c in clauses)

    def _answer_clarification(self, request: PlanRequest, pending: Clarification, low: str) -> Plan:
        """Pick the candidate the answer names and finish the pending instruction."""
        objects = {o.id: o for o in request.objects}
        candidates = [objects[i] for i in pending.candidates if i in objects]
        state = pending.state if isinstance(pending.state, dict) else {}
        chosen = _ordinal_choice(low, candidates)
        if chosen is None and candidates:
            phrase = re.sub(r"^(?:i mean|i meant|i want|take|use|pick|choose|that is|it is|it's)\s+", "", low)
            group = [o for o, _ in best_group(ranked(candidates, phrase, self._similarity, request.robot_pose))]
            if len(group) == 1:
                chosen = group[0]
            elif 1 < len(group) < len(candidates):
                return self._clarify(request, group, state["text"], state["fixed"], state["key"])
        if chosen is None or "text" not in state:
            return Plan("clarify", reply=f"{_NOT_CAUGHT} {_question(candidates, request)}",
                        candidates=tuple(o.id for o in candidates))
        request.dialogue.pending = None
        fixed = {**state["fixed"], state["key"]: (chosen.id,)}
        return self._plan_text(request, state["text"], fixed)

    def _clarify(self, request: PlanRequest, candidates: list[MapObject], text: str,
                 fixed: dict[str, tuple[str, ...]], key: str) -> Plan:
        ids = tuple(o.id for o in candidates)
        request.dialogue.pending = Clarification(request.instruction, ids, {"text": text, "fixed": dict(fixed),
                                                                            "key": key})
        return Plan("clarify", reply=_question(candidates, request), candidates=ids)

    # Planning.

    def _plan_text(self, request: PlanRequest, text: str, fixed: dict[str, tuple[str, ...]]) -> Plan:
        dialogue = request.dialogue
        ctx = _Context(request, text, fixed, request.held, dialogue.referents, {o.id: o for o in request.objects})
        try:
            for index, clause in enumerate(self._clauses(dialogue, text)):
                self._clause(ctx, index, clause)
        except _Stop as stop:
            if stop.clarification is not None:
                dialogue.pending = stop.clarification
            return stop.plan
        if not ctx.steps:
            if ctx.answers:
                dialogue.referents = ctx.referents
                return Plan("answer", reply=" ".join(ctx.answers))
            return Plan("refuse", reply="There is nothing for me to do.")
        plan = Plan("execute", tuple(ctx.steps), reply=_summary(ctx))
        problems = validate_plan(plan, request.objects, request.skills)
        if problems:
            return Plan("refuse", reply=f"I cannot do that: {problems[0]}.")
        dialogue.referents = ctx.referents
        if ctx.last_action is not None:
            dialogue.last_action = ctx.last_action
        if ctx.forget_last:
            dialogue.forget_last_moves()
        _forget_moves(dialogue, ctx.forget)
        return plan

    def _clauses(self, dialogue: Dialogue, text: str) -> list[Clause]:
        """Return the instruction's commands; a follow-up becomes the last action on its new object."""
        whole = parse_clause(text.lower())
        if whole is not None and whole.action == "follow_up":
            return [self._repeat(dialogue, whole)]
        clauses = []
        for piece in split_clauses(text):
            clause = parse_clause(piece)
            if clause is None:
                raise _Stop(_not_understood(piece))
            clauses.append(clause)
        if not clauses:
            raise _Stop(_not_understood(text))
        return clauses

    def _repeat(self, dialogue: Dialogue, follow_up: Clause) -> Clause:
        last = dialogue.last_action
        if not isinstance(last, LastAction):
            _refuse("There is nothing to repeat yet: tell me what to do first.")
        phrase = follow_up.obj.text if follow_up.obj else ""
        quantity = parse_quantity(phrase)
        if not (quantity.held or quantity.pronoun) and parse_query(quantity.description).target.noun is None \
                and last.noun:
            # "The blue one" after "put the red cube ...": one of the same kind.
            if re.search(r"\bones\b", phrase):
                phrase = re.sub(r"\bones\b", f"{last.noun}s", phrase, count=1)
            elif re.search(r"\bone\b", phrase):
                phrase = re.sub(r"\bone\b", last.noun, phrase, count=1)
            else:
                phrase = f"{phrase} {last.noun}"
        return last.clause.with_object(Ref(phrase))

    def _clause(self, ctx: _Context, index: int, clause: Clause) -> None:
        handler = {
            "pick": self._pick, "place": self._place, "push": self._push, "navigate": self._navigate,
            "search": self._search, "undo": self._undo, "put_back": self._put_back, "put_down": self._put_down,
        }.get(clause.action)
        if handler is not None:
            handler(ctx, index, clause)
        elif clause.action == "home":
            _require(ctx, "move_arm_home", "this robot has no arm to move home")
            ctx.steps.append(Call("move_arm_home", {}))
            ctx.arm_home = True
        elif clause.action == "open":
            _require(ctx, "open_gripper", "this robot has no gripper")
            args: dict[str, Any] = {}
            if clause.distance is not None:
                if not 0.0 < clause.distance <= 0.08:
                    _refuse(f"My gripper opens between 0 and 8 cm; {clause.distance * 100:.0f} cm is out of range.")
                args = {"opening": round(clause.distance, 4)}
            ctx.steps.append(Call("open_gripper", args))
            ctx.held = None
        elif clause.action == "close":
            _require(ctx, "close_gripper", "this robot has no gripper")
            ctx.steps.append(Call("close_gripper", {}))
        elif clause.action == "say":
            _require(ctx, "say", "this robot cannot speak")
            ctx.steps.append(Call("say", {"text": clause.text[:500]}))
        elif clause.action == "follow_up":
            raise _Stop(_not_understood(clause.obj.text if clause.obj else ""))

    def _pick(self, ctx: _Context, index: int, clause: Clause) -> None:
        quantity = self._quantity(clause.obj)
        plural = quantity.mode in ("all", "both", "count") and (quantity.count != 1 or quantity.pronoun)
        if plural and not (quantity.pronoun and len(ctx.referents) == 1):
            _refuse("I can hold only one object at a time; tell me where to put them instead.")
        if surface_only(quantity.description):
            _refuse(f"I cannot pick up the {bare(quantity.description)}: it is not an object I can move.")
        obj = self._one(ctx, clause.obj, f"{index}:object")
        problem = grasp_problem(obj)
        if problem is not None:
            _refuse(f"I cannot pick up the {full_name(obj)}: {problem}.")
        if ctx.held == obj.id:
            _refuse(f"I am already holding the {full_name(obj)}.")
        self._hands_free(ctx)
        _require(ctx, "pick", "this robot has no arm")
        _arm_step(ctx, obj, Call("pick", {"object": obj.id}))
        ctx.held = obj.id
        ctx.referents = (obj.id,)
        ctx.last_action = LastAction(Clause("pick"), noun(obj))

    def _place(self, ctx: _Context, index: int, clause: Clause) -> None:
        target_ref = clause.target or Ref()
        if not target_ref.ids and surface_only(target_ref.text):
            mover = self._quantity(clause.obj)
            if (ctx.held is not None or mover.held or mover.pronoun) and clause.relation in ("on", "to"):
                # "Put it on the table": put the held object down on the surface below it.
                self._put_down(ctx, index, Clause("put_down", obj=clause.obj))
                return
            _refuse("I can only put things in, on or next to an object; tell me which one.")
        if target_ref.text in ("itself", "themselves", "it self", "each other", "one another"):
            _refuse("I cannot put an object in, on or next to itself.")
        target = self._one(ctx, target_ref, f"{index}:target")
        relation = clause.relation or "in"
        if relation == "to":
            relation = "in" if is_container(target) else "near"
        movers = self._movers(ctx, index, clause.obj or Ref(), target, relation)
        word = _RELATION_WORDS[relation]
        for obj in movers:
            if relation == "in" and not is_container(target):
                _refuse(f"The {full_name(target)} is not a container: I can put things on it or next to it.")
            if relation == "on" and is_round(target):
                _refuse(f"Nothing stays on top of the {full_name(target)}: it is round.")
            if relation in ("in", "on") and float(max(obj.size[:2])) > float(max(target.size[:2])):
                _refuse(f"The {full_name(obj)} is too big to go {word} the {full_name(target)}.")
            problem = grasp_problem(obj)
            if problem is not None:
                _refuse(f"I cannot pick up the {full_name(obj)}: {problem}.")
        _require(ctx, "place", "this robot has no arm")
        for obj in movers:
            if ctx.held != obj.id:
                self._hands_free(ctx)
                _require(ctx, "pick", "this robot has no arm")
                _arm_step(ctx, obj, Call("pick", {"object": obj.id}))
            _arm_step(ctx, target, Call("place", {"object": obj.id, "relation": relation, "target": target.id}))
            ctx.held = None
        ctx.referents = tuple(o.id for o in movers)
        ctx.last_action = LastAction(Clause("place", relation=relation, target=Ref(ids=(target.id,))),
                                     noun(movers[0]))

    def _movers(self, ctx: _Context, index: int, ref: Ref, target: MapObject, relation: str) -> list[MapObject]:
        """Return the objects a place moves, held one first; the target is never one of them."""
        quantity = self._quantity(ref)
        if quantity.mode in ("one", "any") and not (quantity.pronoun and len(ctx.referents) > 1):
            if not ref.ids and not quantity.pronoun and not quantity.held and f"{index}:object" not in ctx.fixed:
                results = ranked(list(ctx.objects.values()), quantity.description, self._similarity,
                                 ctx.request.robot_pose)
                group = best_group(results)
                if group and all(o.id == target.id for o, _ in group):
                    _refuse(f"I cannot put the {full_name(target)} {_RELATION_WORDS[relation]} itself.")
            obj = self._one(ctx, ref, f"{index}:object", exclude=(target.id,))
            if obj.id == target.id:
                _refuse(f"I cannot put the {full_name(target)} {_RELATION_WORDS[relation]} itself.")
            return [obj]
        pool = [o for o in self._set(ctx, quantity) if o.id != target.id]
        return self._quantified(ctx, quantity, pool, target, relation)

    def _quantified(self, ctx: _Context, quantity: Quantity, pool: list[MapObject], target: MapObject | None,
                    relation: str | None) -> list[MapObject]:
        """Apply "both", a count and the skip of objects already there to a set of objects."""
        phrase = bare(quantity.description)
        if not pool:
            _refuse(f"I cannot find any {phrase}.")
        if quantity.mode == "both" and len(pool) != 2:
            _refuse(f"I see {len(pool)} {phrase}, not two: which do you mean?")
        graspable = [o for o in pool if grasp_problem(o) is None]
        if not graspable:
            _refuse(f"I cannot pick up the {full_name(pool[0])}: {grasp_problem(pool[0])}.")
        pool = graspable
        skipped = False
        if target is not None and relation in ("in", "on") and not quantity.pronoun:
            remaining = [o for o in pool if not rests_in_or_on(o, target)]
            skipped = len(remaining) < len(pool)
            pool = remaining
        if quantity.mode == "count":
            if len(pool) < quantity.count:
                verb = "is" if len(pool) == 1 else "are"
                where = f" that are not already {_RELATION_WORDS[relation or 'in']} the {full_name(target)}" \
                    if skipped and target is not None else ""
                _refuse(f"There {verb} only {len(pool)} {phrase}{where}, not {quantity.count}.")
            pool = pool[:quantity.count]
        if not pool:
            _refuse(f"All the {phrase} are already {_RELATION_WORDS[relation or 'in']} the "
                    f"{full_name(target) if target is not None else 'place'}.")
        if ctx.held is not None:
            pool.sort(key=lambda o: o.id != ctx.held)
        return pool

    def _push(self, ctx: _Context, index: int, clause: Clause) -> None:
        quantity = self._quantity(clause.obj)
        if clause.direction is None:
            what = f"the {bare(quantity.description)}" if quantity.description else clause.obj.text
            _refuse(f"Which way should I push {what}? Say left, right, forward or backward, and how far.")
        distance = clause.distance if clause.distance is not None else 0.1
        low, high = PUSH_RANGE_M
        if not low - 1e-9 <= distance <= high + 1e-9:
            _refuse(f"I can push things between {low * 100:.0f} and {high * 100:.0f} cm; "
                    f"{distance * 100:.0f} cm is out of range.")
        if quantity.mode in ("one", "any") and not (quantity.pronoun and len(ctx.referents) > 1):
            objects = [self._one(ctx, clause.obj, f"{index}:object")]
        else:
            objects = self._quantified(ctx, quantity, self._set(ctx, quantity), None, None)
        self._hands_free(ctx)
        _require(ctx, "push", "this robot has no arm")
        for obj in objects:
            _arm_step(ctx, obj, Call("push", {"object": obj.id, "direction": clause.direction,
                                              "distance": round(distance, 4)}))
        ctx.referents = tuple(o.id for o in objects)
        ctx.last_action = LastAction(replace(clause, obj=None, distance=distance), noun(objects[0]))

    def _navigate(self, ctx: _Context, index: int, clause: Clause) -> None:
        _require(ctx, "navigate_to", "this robot has no base to drive with")
        if clause.obj is None:
            x, y = (float(v) for v in clause.text.split(","))
            ctx.steps.append(Call("navigate_to", {"pose": [x, y]}))
            ctx.drove_to, ctx.base_moved = None, True
            return
        obj = self._one(ctx, clause.obj, f"{index}:object")
        ctx.steps.append(Call("navigate_to", {"object": obj.id}))
        ctx.drove_to, ctx.base_moved = obj.id, True
        ctx.referents = (obj.id,)
        ctx.last_action = LastAction(Clause("navigate"), noun(obj))

    def _search(self, ctx: _Context, index: int, clause: Clause) -> None:
        phrase = clause.obj.text if clause.obj else ""
        if parse_quantity(phrase).held:
            fact = answer("what are you holding", list(ctx.objects.values()), self._similarity,
                          ctx.request.robot_pose, ctx.held, ctx.referents)
            ctx.answers.append(fact.reply)
            ctx.referents = fact.referents or ctx.referents
            return
        found = [o for o, _ in best_group(ranked(list(ctx.objects.values()), parse_quantity(phrase).description,
                                                 self._similarity, ctx.request.robot_pose), SET_FLOOR)]
        if found:
            fact = answer(f"where is {phrase}", list(ctx.objects.values()), self._similarity,
                          ctx.request.robot_pose, ctx.held, ctx.referents)
            ctx.answers.append(fact.reply if fact is not None else "")
            ctx.referents = tuple(o.id for o in found)
            return
        if "search" not in ctx.request.skills:
            _refuse(f"I cannot find {a_or_an(bare(phrase))}.")
        ctx.steps.append(Call("search", {"query": phrase}))
        ctx.referents = ()
        ctx.unseen = phrase

    def _undo(self, ctx: _Context, index: int, clause: Clause) -> None:
        moves = ctx.request.dialogue.last_moves()
        if not moves:
            _refuse("There is nothing to undo: I have not moved anything yet.")
        _require(ctx, "place_at", "this robot has no place_at skill to put things back where they "
                                  "were, so I cannot undo")
        self._put_moves_back(ctx, list(reversed(moves)))
        ctx.forget_last = True

    def _put_back(self, ctx: _Context, index: int, clause: Clause) -> None:
        quantity = self._quantity(clause.obj)
        if quantity.mode in ("one", "any") and not (quantity.pronoun and len(ctx.referents) > 1):
            objects = [self._one(ctx, clause.obj, f"{index}:object")]
        else:
            objects = self._set(ctx, quantity)
        moves = []
        for obj in objects:
            move = next((m for task in reversed(ctx.request.dialogue.moves) for m in task if m.object_id == obj.id),
                        None)
            if move is None:
                _refuse(f"I have not moved the {full_name(obj)}, so I do not know where it was.")
            moves.append(move)
        _require(ctx, "place_at", "this robot has no place_at skill to put things down at a "
                                  "position")
        self._put_moves_back(ctx, moves)
        ctx.forget.extend(moves)

    def _put_down(self, ctx: _Context, index: int, clause: Clause) -> None:
        """Put the held object down on the surface below it, or the nearest free spot around."""
        phrase = clause.obj.text if clause.obj else "it"
        words = clause.text or f"put {phrase} down"
        if ctx.held is None:
            _refuse(f"I am not holding anything, so I cannot {words}.")
        quantity = self._quantity(clause.obj)
        resolved = clause.obj is not None and bool(clause.obj.ids)
        if resolved or quantity.held or (quantity.pronoun and len(ctx.referents) <= 1):
            obj = self._one(ctx, clause.obj, f"{index}:object")
        else:
            named = self._set(ctx, quantity) if quantity.mode not in ("one", "any") or quantity.pronoun \
                else [o for o, _ in best_group(ranked(list(ctx.objects.values()), quantity.description,
                                                      self._similarity, ctx.request.robot_pose), SET_FLOOR)]
            if not named:
                _refuse(f"I cannot find {a_or_an(bare(quantity.description))}.")
            held = [o for o in named if o.id == ctx.held]
            # Only the held object is up: "put the cube down" with three cubes names the one held.
            obj = held[0] if held else named[0]
            if quantity.mode not in ("one", "any") and len(named) > 1:
                _refuse(f"I can put down only the one object I am holding, so I cannot {words}: say "
                        f"\"put it down\" for that one.")
        if obj.id != ctx.held:
            holding = ctx.objects.get(ctx.held)
            _refuse(f"I am not holding the {full_name(obj)}, so I cannot {words}: I am holding the "
                    f"{full_name(holding) if holding else ctx.held}.")
        if "place_at" not in ctx.request.skills:
            _refuse(f"I cannot {words}: this robot has no place_at skill to put things down on the surface.")
        spot = free_spot(obj, list(ctx.objects.values()))
        if spot is None:
            _refuse(f"I cannot {words}: there is no free spot on the surface below the {full_name(obj)}.")
        ctx.down_steps.add(len(ctx.steps))
        ctx.steps.append(Call("place_at", {"object": obj.id, "position": [round(spot[0], 4), round(spot[1], 4)]}))
        ctx.arm_home = False
        ctx.held = None
        ctx.referents = (obj.id,)
        ctx.last_action = LastAction(Clause("put_down"), noun(obj))

    def _put_moves_back(self, ctx: _Context, moves: list[Move]) -> None:
        for move in moves:
            obj = ctx.objects.get(move.object_id)
            if obj is None:
                _refuse(f"I cannot put {move.object_id} back: it is no longer in my map.")
            if ctx.held != obj.id:
                self._hands_free(ctx)
                _require(ctx, "pick", "this robot has no arm")
                _arm_step(ctx, obj, Call("pick", {"object": obj.id}))
            ctx.steps.append(Call("place_at", {"object": obj.id,
                                               "position": [round(move.before[0], 4), round(move.before[1], 4)]}))
            ctx.arm_home = False
            ctx.held = None
        ctx.referents = tuple(m.object_id for m in moves)

    # Resolution.

    def _quantity(self, ref: Ref | None) -> Quantity:
        if ref is None:
            return Quantity("one", 1, "")
        if ref.ids:
            return Quantity("one" if len(ref.ids) == 1 else "all", len(ref.ids), "", pronoun=False)
        return parse_quantity(ref.text)

    def _one(self, ctx: _Context, ref: Ref | None, key: str, exclude: tuple[str, ...] = ()) -> MapObject:
        """Return the one object a phrase names; refuse when none fits, ask when several fit as well."""
        ref = ref or Ref()
        if ref.ids:
            return _lookup(ctx, ref.ids[0])
        if key in ctx.fixed:
            return _lookup(ctx, ctx.fixed[key][0])
        quantity = parse_quantity(ref.text)
        if quantity.held:
            return self._held(ctx, ref.text, quantity.description)
        pool = [o for o in ctx.objects.values() if o.id not in exclude]
        if quantity.pronoun:
            candidates = [ctx.objects[i] for i in ctx.referents if i in ctx.objects and i not in exclude]
            if not candidates:
                if ctx.unseen:
                    _refuse(f"I do not see {bare(ctx.unseen)} yet: once I have found it, tell me what to do with it.")
                # Nothing said names an object: "it" is what the gripper holds, if anything.
                if ctx.held is not None and ctx.held not in exclude:
                    return self._held(ctx, ref.text, "")
                _refuse(f"I do not know what '{ref.text}' means here: please name the object.")
            if len(candidates) > 1:
                raise _Stop(self._clarify(ctx.request, candidates, ctx.text, ctx.fixed, key))
            return candidates[0]
        results = ranked(pool, quantity.description, self._similarity, ctx.request.robot_pose)
        for phrase in quantity.exceptions:
            left_out = {o.id for o, _ in best_group(ranked([o for o, _ in results], phrase, self._similarity,
                                                           ctx.request.robot_pose), SET_FLOOR)}
            results = [(o, s) for o, s in results if o.id not in left_out]
        if not results:
            _refuse(f"I cannot find {a_or_an(bare(quantity.description))}.")
        group = best_group(results)
        if len(group) == 1 or quantity.mode == "any":
            return group[0][0]
        raise _Stop(self._clarify(ctx.request, [o for o, _ in group], ctx.text, ctx.fixed, key))

    def _set(self, ctx: _Context, quantity: Quantity) -> list[MapObject]:
        """Return every object a plural phrase names, best first, exceptions left out."""
        if quantity.pronoun:
            objects = [ctx.objects[i] for i in ctx.referents if i in ctx.objects]
            if not objects and ctx.held is not None:
                return [self._held(ctx, quantity.description, "")]
            if not objects:
                _refuse(f"I do not know what '{quantity.description}' means here: please name the objects.")
            return objects
        results = best_group(ranked(list(ctx.objects.values()), quantity.description, self._similarity,
                                    ctx.request.robot_pose), SET_FLOOR)
        objects = [o for o, _ in results]
        for phrase in quantity.exceptions:
            left_out = {o.id for o, _ in best_group(ranked(objects, phrase, self._similarity,
                                                           ctx.request.robot_pose), SET_FLOOR)}
            objects = [o for o in objects if o.id not in left_out]
        return objects

    def _held(self, ctx: _Context, words: str, description: str) -> MapObject:
        """Return the object in the gripper, which a phrase ("what you are holding") names.

        Refused while nothing is held, when the map has lost the held object, and when the words
        that describe it ("the red cube you are holding") do not fit it.
        """
        if ctx.held is None:
            _refuse(f"I am not holding anything, so I do not know what '{words}' means.")
        held = ctx.objects.get(ctx.held)
        if held is None:
            _refuse(f"I am holding {ctx.held}, but it is no longer in my map, so I cannot plan with "
                    f"'{words}': open the gripper to let it go.")
        if description:
            fits = best_group(ranked(list(ctx.objects.values()), parse_quantity(description).description,
                                     self._similarity, ctx.request.robot_pose), SET_FLOOR)
            if all(o.id != held.id for o, _ in fits):
                _refuse(f"I am holding the {full_name(held)}, not {a_or_an(bare(description))}.")
        return held

    def _hands_free(self, ctx: _Context) -> None:
        if ctx.held is not None:
            held = ctx.objects.get(ctx.held)
            _refuse(f"I am holding the {full_name(held) if held else ctx.held}; tell me where to put it first.")


def _refuse(reason: str) -> None:
    raise _Stop(Plan("refuse", reply=reason))


def _arm_step(ctx: _Context, obj: MapObject, call: Call) -> None:
    """Append an arm step on an object, driving up to the object first when it is out of the arm's reach."""
    if _needs_drive(ctx, obj):
        if not ctx.arm_home:
            ctx.steps.append(Call("move_arm_home", {}))
        ctx.steps.append(Call("navigate_to", {"object": obj.id}))
        ctx.drove_to, ctx.base_moved = obj.id, True
    ctx.steps.append(call)
    ctx.arm_home = False


def _needs_drive(ctx: _Context, obj: MapObject) -> bool:
    """Return whether the base must drive up to an object before the arm can act on it.

    Only a robot that can both drive and pick ever drives. Where the base stands: in front of the
    object the plan last drove to (only that object is then in reach), or, before any drive, at the
    request's robot pose (the origin when not given), with everything within ARM_REACH_M in reach.
    """
    if "navigate_to" not in ctx.request.skills or "pick" not in ctx.request.skills:
        return False
    if ctx.base_moved:
        return ctx.drove_to != obj.id
    x, y = ctx.request.robot_pose[:2] if ctx.request.robot_pose is not None else (0.0, 0.0)
    return math.hypot(float(obj.position[0]) - x, float(obj.position[1]) - y) > ARM_REACH_M


def _require(ctx: _Context, skill: str, reason: str) -> None:
    """Refuse with the reason when the robot lacks the skill."""
    if skill not in ctx.request.skills:
        _refuse(f"I cannot do that: {reason}.")


def _lookup(ctx: _Context, object_id: str) -> MapObject:
    obj = ctx.objects.get(object_id)
    if obj is None:
        _refuse(f"I cannot find {object_id} any more: it is no longer in my map.")
    return obj


def _ordinal_choice(low: str, candidates: list[MapObject]) -> MapObject | None:
    """Return the candidate an ordinal answer names ("the second one", "the last one")."""
    for word in low.split():
        if word in _ORDINALS and _ORDINALS[word] < len(candidates):
            return candidates[_ORDINALS[word]]
        if word == "last" and candidates:
            return candidates[-1]
    return None


def _question(candidates: list[MapObject], request: PlanRequest) -> str:
    kinds = {noun(o) for o in candidates}
    kind = kinds.pop() if len(kinds) == 1 else "one"
    names = distinct_names(candidates, request.robot_pose)
    return f"Which {kind} do you mean: {join_words(names, 'or')}?"


def _not_understood(text: str) -> Plan:
    return Plan("not_understood", reply=f"I did not understand \"{text.strip()}\". Try: {', '.join(EXAMPLES[:2])} "
                                        f"or {EXAMPLES[2]}")


def _summary(ctx: _Context) -> str:
    """Return what the plan does, in words."""
    def name(object_id: str) -> str:
        obj = ctx.objects.get(object_id)
        return f"the {full_name(obj)}" if obj else object_id

    parts = []
    for index, call in enumerate(ctx.steps):
        args = call.args
        if call.skill == "pick":
            parts.append(f"pick up {name(args['object'])}")
        elif call.skill == "place":
            parts.append(f"put {name(args['object'])} {_RELATION_WORDS[args['relation']]} {name(args['target'])}")
        elif call.skill == "place_at":
            x, y = args["position"]
            how = "down" if index in ctx.down_steps else "back"
            parts.append(f"put {name(args['object'])} {how} at x {x:.2f} m, y {y:.2f} m")
        elif call.skill == "push":
            parts.append(f"push {name(args['object'])} {args['direction']} by {args['distance'] * 100:.0f} cm")
        elif call.skill == "navigate_to":
            parts.append(f"drive to {name(args['object'])}" if "object" in args
                         else f"drive to x {args['pose'][0]:.2f} m, y {args['pose'][1]:.2f} m")
        elif call.skill == "search":
            parts.append(f"search for {args['query']}")
        elif call.skill == "move_arm_home":
            parts.append("move my arm home")
        elif call.skill == "open_gripper":
            parts.append("open the gripper")
        elif call.skill == "close_gripper":
            parts.append("close the gripper")
        elif call.skill == "say":
            parts.append(f"say \"{args['text']}\"")
    prefix = " ".join(ctx.answers) + " " if ctx.answers else ""
    return f"{prefix}I will {join_words(parts, 'and then')}."


def _forget_moves(dialogue: Dialogue, moves: list[Move]) -> None:
    """Drop moves that were put back from the dialogue's record, and tasks left with none."""
    if not moves:
        return
    kept = []
    for task in dialogue.moves:
        rest = tuple(m for m in task if all(m is not gone for gone in moves))
        if rest:
            kept.append(rest)
    dialogue.moves[:] = kept
