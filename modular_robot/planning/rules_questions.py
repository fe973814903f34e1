"""Questions about the scene that the rules planner answers from the map, word for word the same each time.

"What do you see?", "how many red things are there?", "is there a ball?", "where is the duck?",
"what colour is the block?", "what is in the tray?" and "what are you holding?". Descriptions are
resolved with `modular_robot.core.mapping.query` through `rules_scene`; counts and lists take every
object that fits the words nearly as well as the best one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.planning.rules_language import PRONOUNS, held_description
from modular_robot.planning.rules_scene import (
    SET_FLOOR,
    a_or_an,
    best_group,
    full_name,
    join_words,
    ranked,
    robot_xy,
    where_phrase,
)

_HELD = re.compile(
    r"^(?:what|which (?:object|thing))(?: is|'s| are)? (?:you )?(?:holding|carrying|grasping|gripping)\b|"
    r"^what(?: is|'s) in (?:your|the) (?:gripper|hand|fingers|claw)|^are you (?:holding|carrying)\b|"
    r"^do you (?:have|hold) (?:anything|something)(?: in your (?:gripper|hand))?$")
_LIST = re.compile(
    r"^(?:what|which(?: objects| things| items)?)(?: objects| things| items)?(?: do| can)? you see\b|"
    r"^what(?: is|'s| objects are| things are| items are)? (?:there )?(?:on|at) the "
    r"(?:table|desk|tabletop|surface|floor)$|"
    r"^what(?: objects| things| items)? (?:is|are) (?:there|here|around)(?: on the table)?$|"
    r"^(?:list|name|describe|show me)\b.*\b(?:objects|things|items|scene|table|everything|see)\b|"
    r"^(?:tell me )?what you see$|^what(?: is|'s) (?:around|in front of you|here)$")
_COUNT = re.compile(r"^how many (?P<d>.+?)(?: are there| is there| do you see| can you see| do you have|"
                    r"(?: are)? on the table| are visible| can you find| are here| exist)?$")
_COLOR = re.compile(r"^(?:what|which) colou?r (?:is|are|'s)\s+(?P<d>.+)$|"
                    r"^what(?: is|'s) the colou?r of\s+(?P<d2>.+)$")
_WHERE = re.compile(r"^where(?: is|'s| are| did you put| can i find| do i find| is located)?\s+(?P<d>.+?)"
                    r"(?: located| now| right now| at the moment)?$")
_EXISTS = re.compile(r"^(?:is there|are there|do you see|can you see|do you have|have you seen|do we have|"
                     r"is anything like)\s+(?:a |an |any |some )?(?P<d>.+?)(?: anywhere| here| on the table| there)?$")
_CONTENTS = re.compile(
    r"^what(?: is|'s| objects are| things are| items are| else is)?\s+(?P<rel>in|inside|inside of|on|on top of|"
    r"left of|to the left of|right of|to the right of|in front of|behind|next to|near|beside)\s+(?P<d>.+)$|"
    r"^what does (?P<d2>.+?) (?:contain|hold)$|^what(?: is|'s) in(?:side)? (?P<d3>.+)$")


@dataclass(frozen=True)
class Answer:
    """An answer and the objects it was about.

    Attributes:
        reply: What the robot says.
        referents: Map ids a following "it" or "them" means (empty when the answer names none).
    """

    reply: str
    referents: tuple[str, ...] = ()


def is_question(text: str) -> bool:
    """Return whether the text is a question this module answers."""
    low = _clean(text)
    return any(p.match(low) for p in (_HELD, _LIST, _COUNT, _COLOR, _WHERE, _EXISTS, _CONTENTS))


def answer(text: str, objects: Sequence[MapObject], similarity: TextSimilarity,
           robot_pose: tuple[float, float, float] | None, held: str | None,
           referents: tuple[str, ...]) -> Answer | None:
    """Return the answer to a question about the scene, or None when the text asks none.

    Args:
        text: The question, politeness already removed.
        objects: The map's objects.
        similarity: Text similarity for the resolver.
        robot_pose: The robot's pose, which defines left and right.
        held: Id of the object in the gripper, or None.
        referents: What "it" and "them" mean now.
    """
    low = _clean(text)
    objects = list(objects)
    if _HELD.match(low):
        return _held(objects, held)
    if _LIST.match(low):
        return _list(objects, robot_pose)
    match = _COUNT.match(low)
    if match:
        return _count(objects, match.group("d"), similarity, robot_pose)
    match = _COLOR.match(low)
    if match:
        return _colour(objects, match.group("d") or match.group("d2"), similarity, robot_pose, referents, held)
    match = _CONTENTS.match(low)
    if match:
        relation = match.group("rel") or "in"
        return _contents(objects, relation, match.group("d") or match.group("d2") or match.group("d3"),
                         similarity, robot_pose)
    match = _WHERE.match(low)
    if match:
        return _where(objects, match.group("d"), similarity, robot_pose, referents, held)
    match = _EXISTS.match(low)
    if match:
        return _exists(objects, match.group("d"), similarity, robot_pose)
    return None


def _clean(text: str) -> str:
    low = " ".join(text.lower().replace("\u2019", "'").split()).strip(" ?.!")
    return re.sub(r"^(?:can you tell me|could you tell me|tell me|do you know|please|so|and)\s+", "", low)


def bare(description: str) -> str:
    """Return a description without its article and verb filler ("the red cube" -> "red cube")."""
    words = [w for w in description.split() if w not in ("is", "are", "there", "located")]
    text = " ".join(words)
    return re.sub(r"^(?:the|a|an|any|some|this|that|these|those)\s+", "", text)


def _matches(objects: list[MapObject], description: str, similarity: TextSimilarity,
             robot_pose: tuple[float, float, float] | None, referents: tuple[str, ...] = (),
             held: str | None = None) -> list[MapObject]:
    """Return the objects a description names: "it" names the referents (else the held object), "the
    cube you are holding" the held object if it is a cube."""
    by_id = {o.id: o for o in objects}
    held_words = held_description(description)
    if held_words is not None:
        if held not in by_id:
            return []
        fits = not held_words or any(o.id == held for o in _matches(objects, held_words, similarity, robot_pose))
        return [by_id[held]] if fits else []
    if description.strip() in PRONOUNS:
        found = [by_id[i] for i in referents if i in by_id]
        return found or ([by_id[held]] if held in by_id else [])
    return [o for o, _ in best_group(ranked(objects, description, similarity, robot_pose), SET_FLOOR)]


def _not_found(objects: list[MapObject], description: str, held: str | None) -> Answer:
    """Return the answer when nothing fits a description; for a phrase naming the held object, what is held."""
    held_words = held_description(description)
    if held_words is None:
        return Answer(f"I cannot find {a_or_an(bare(description))}.")
    obj = next((o for o in objects if o.id == held), None)
    if held is None:
        return Answer("I am not holding anything.")
    if obj is None:
        return Answer(f"I am holding {held}, but it is no longer in my map.")
    return Answer(f"I am holding the {full_name(obj)}, not {a_or_an(bare(held_words))}.", (obj.id,))


def _held(objects: list[MapObject], held: str | None) -> Answer:
    if held is None:
        return Answer("I am not holding anything.")
    obj = next((o for o in objects if o.id == held), None)
    return Answer(f"I am holding the {full_name(obj)}." if obj else f"I am holding {held}.", (held,))


def _list(objects: list[MapObject], robot_pose: tuple[float, float, float] | None) -> Answer:
    if not objects:
        return Answer("I do not see any objects.")
    # Left to right, as the robot sees them.
    ordered = sorted(objects, key=lambda o: (-robot_xy(o, robot_pose)[1], o.id))
    count = len(ordered)
    return Answer(f"I see {count} object{'s' if count != 1 else ''}: "
                  f"{join_words([a_or_an(full_name(o)) for o in ordered])}.")


def _count(objects: list[MapObject], description: str, similarity: TextSimilarity,
           robot_pose: tuple[float, float, float] | None) -> Answer:
    found = _matches(objects, description, similarity, robot_pose)
    phrase = bare(description)
    if not found:
        return Answer(f"There are no {phrase}.")
    verb = "is" if len(found) == 1 else "are"
    if len(found) == 1:
        phrase = _singular(phrase)
    names = join_words([f"the {full_name(o)}" for o in found])
    return Answer(f"There {verb} {len(found)} {phrase}: {names}.", tuple(o.id for o in found))


def _singular(phrase: str) -> str:
    """Return a plural noun phrase in the singular ("red things" -> "red thing"), roughly."""
    head, _, last = phrase.rpartition(" ")
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    return f"{head} {last}".strip()


def _exists(objects: list[MapObject], description: str, similarity: TextSimilarity,
            robot_pose: tuple[float, float, float] | None) -> Answer:
    found = _matches(objects, description, similarity, robot_pose)
    if not found:
        return Answer(f"No, I do not see {a_or_an(bare(description))}.")
    if len(found) == 1:
        return Answer(f"Yes: the {full_name(found[0])}, {where_phrase(found[0], objects, robot_pose)}.",
                      (found[0].id,))
    return Answer(f"Yes, {len(found)}: {join_words([f'the {full_name(o)}' for o in found])}.",
                  tuple(o.id for o in found))


def _where(objects: list[MapObject], description: str, similarity: TextSimilarity,
           robot_pose: tuple[float, float, float] | None, referents: tuple[str, ...], held: str | None) -> Answer:
    found = _matches(objects, description, similarity, robot_pose, referents, held)
    if not found:
        return _not_found(objects, description, held)
    parts = [f"the {full_name(o)} is {where_phrase(o, objects, robot_pose)}" for o in found]
    reply = "; ".join(parts)
    return Answer(reply[0].upper() + reply[1:] + ".", tuple(o.id for o in found))


def _colour(objects: list[MapObject], description: str, similarity: TextSimilarity,
            robot_pose: tuple[float, float, float] | None, referents: tuple[str, ...], held: str | None) -> Answer:
    found = _matches(objects, description, similarity, robot_pose, referents, held)
    if not found:
        return _not_found(objects, description, held)
    parts = [f"the {full_name(o)} is {o.color}" if o.color else f"I do not know the colour of the {full_name(o)}"
             for o in found]
    reply = "; ".join(parts)
    return Answer(reply[0].upper() + reply[1:] + ".", tuple(o.id for o in found))


def _contents(objects: list[MapObject], relation: str, description: str, similarity: TextSimilarity,
              robot_pose: tuple[float, float, float] | None) -> Answer:
    anchors = [o for o, _ in ranked(objects, description, similarity, robot_pose)]
    if not anchors:
        return Answer(f"I cannot find {a_or_an(bare(description))}.")
    anchor = anchors[0]
    inside = [o for o, _ in best_group(ranked(objects, f"things {relation} {description}", similarity, robot_pose),
                                       SET_FLOOR) if o.id != anchor.id]
    place = f"{relation} the {full_name(anchor)}"
    if not inside:
        return Answer(f"There is nothing {place}.", (anchor.id,))
    verb = "is" if len(inside) == 1 else "are"
    names = join_words([a_or_an(full_name(o)) for o in inside])
    return Answer(f"{place[0].upper()}{place[1:]} there {verb} {names}.", tuple(o.id for o in inside))
