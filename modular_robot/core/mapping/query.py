"""Open-vocabulary lookup of map objects from text: "the small crimson block left of the tray".

A query is parsed into a target description, an optional spatial relation to an anchor
description, and an optional superlative. A description holds colour words (the twelve names and
their synonyms), a size word, and a noun phrase. Nouns are matched two ways and the better one
counts: an explicit synonym table ("block" is a cube, "ball" a sphere, "box" a cube when small and
a tray when large), and MiniLM cosine similarity between the noun phrase and the object's category
or label, which handles words the table lacks ("mug" against a detector's "cup"). Cosine alone
scores low and close together ("crimson block" vs "red cube" is about 0.41, "elephant" vs "duck"
about 0.47), so it is rescaled to count only above 0.5, and colour and size are matched explicitly.

Spatial words are in the robot's view: world x forward, y left, the robot at the origin looking
along +x unless a robot pose is given. "In front of" means nearer the robot.

A description names the objects that fit it nearly as well as the best one (``_BEST_FIT_RATIO``):
"the tin" is an actual can when there is one, not every cylinder; those objects serve as a
relation's anchor and compete for a superlative.

Scores are products of factors in [0, 1]; objects scoring under ``min_score`` are not returned, so
"the purple elephant" finds nothing when nothing like it exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.semantic_map import TextSimilarity
from modular_robot.core.mapping.text_embedding import default_embedder
from modular_robot.core.perception.geometry import size_class
from modular_robot.core.perception.types import SHAPES, SIZE_CLASSES

# Synonyms of the twelve colour names. "magenta" and "violet" are purple, as the colour namer sees them.
COLOR_SYNONYMS: dict[str, str] = {
    **{name: name for name in ("red", "green", "blue", "yellow", "orange", "purple", "white",
                               "black", "gray", "brown", "pink", "cyan")},
    "crimson": "red", "scarlet": "red", "ruby": "red", "cherry": "red", "maroon": "red",
    "navy": "blue", "azure": "blue", "cobalt": "blue", "sapphire": "blue", "indigo": "blue",
    "lime": "green", "emerald": "green", "olive": "green", "jade": "green",
    "golden": "yellow", "gold": "yellow", "lemon": "yellow", "mustard": "yellow",
    "amber": "orange", "tangerine": "orange", "apricot": "orange",
    "violet": "purple", "magenta": "purple", "lavender": "purple", "lilac": "purple", "plum": "purple",
    "ivory": "white", "cream": "white",
    "ebony": "black", "jet": "black",
    "grey": "gray", "silver": "gray", "charcoal": "gray", "slate": "gray",
    "tan": "brown", "chocolate": "brown", "beige": "brown", "bronze": "brown",
    "rose": "pink", "fuchsia": "pink", "salmon": "pink",
    "teal": "cyan", "turquoise": "cyan", "aqua": "cyan", "aquamarine": "cyan",
}

SIZE_SYNONYMS: dict[str, str] = {
    "small": "small", "little": "small", "tiny": "small", "mini": "small", "smaller": "small",
    "medium": "medium", "mid": "medium", "midsize": "medium", "midsized": "medium", "average": "medium",
    "big": "large", "large": "large", "huge": "large", "giant": "large", "larger": "large",
    "bigger": "large",
}

SUPERLATIVE_SYNONYMS: dict[str, str] = {
    "largest": "largest", "biggest": "largest", "hugest": "largest",
    "smallest": "smallest", "tiniest": "smallest", "littlest": "smallest",
    "tallest": "tallest", "highest": "tallest", "shortest": "shortest", "lowest": "shortest",
    "leftmost": "leftmost", "left": "leftmost", "rightmost": "rightmost", "right": "rightmost",
    "frontmost": "frontmost", "front": "frontmost", "foremost": "frontmost",
    "backmost": "backmost", "rearmost": "backmost", "back": "backmost", "rear": "backmost",
    "closest": "closest", "nearest": "closest",
    "farthest": "farthest", "furthest": "farthest",
}

# Noun -> [(sense, weight, size condition)]: the kinds of object a word can mean. A query noun
# and an object's category match through a shared sense (every word is also its own sense with
# weight 1), so "brick" finds a "block" from an open-vocabulary detector via the sense "cube". The
# condition "small" or "large" restricts a sense to objects whose largest extent is under or over
# _BOX_SPLIT_M: a "box" on a table is a block when hand-sized and a tray when not. "flat" and
# "irregular" are the geometric detector's coarse shapes for low wide objects that it cannot call a
# tray or a bowl (a footprint cut short by the view) and for ducks.
_NOUN_TABLE: dict[str, list[tuple[str, float, str | None]]] = {}
_BOX_SPLIT_M = 0.10


def _nouns(words: str, entries: list[tuple[str, float, str | None]]) -> None:
    for word in words.split(","):
        _NOUN_TABLE[word.strip()] = entries


_nouns("cube, block, brick, die, dice, cuboid, square, toy block, wooden block",
       [("cube", 1.0, None)])
_nouns("box", [("cube", 0.9, "small"), ("tray", 0.8, "large")])
_nouns("cylinder, tube, canister, cylindrical object, column, pillar, barrel", [("cylinder", 1.0, None)])
_nouns("can, tin, tin can, soda can", [("can", 1.0, None), ("cylinder", 0.75, None)])
_nouns("mug, cup, teacup, coffee mug, coffee cup", [("cup", 1.0, None), ("cylinder", 0.6, None)])
_nouns("glass, beaker, jar, bottle", [("cylinder", 0.6, None)])
_nouns("sphere, ball, orb, globe, marble, round object, bead", [("sphere", 1.0, None)])
_nouns("duck, rubber duck, duckie, ducky, duckling, toy duck, rubber duckie, bath duck, bird",
       [("duck", 1.0, None), ("irregular", 0.6, None)])
_nouns("toy, figure, figurine, rubber toy", [("duck", 0.9, None), ("irregular", 0.6, None)])
# A flat object fits "tray" less than _BEST_FIT_RATIO as well as a tray does: with a tray in view,
# "the tray" is that tray, not also a far cube the detector has not made out yet.
_nouns("tray, plate, platter, board, pan", [("tray", 1.0, None), ("flat", 0.75, None)])
_nouns("container, bin, receptacle, crate",
       [("tray", 0.9, None), ("bowl", 0.9, None), ("flat", 0.7, None)])
_nouns("bowl, dish, basin, pot, vessel", [("bowl", 1.0, None), ("flat", 0.6, None), ("irregular", 0.5, None)])

_GENERIC_NOUNS = frozenset({"object", "thing", "item", "one", "something", "stuff", "piece", "shape"})
_FILLER_WORDS = frozenset({
    "the", "a", "an", "that", "which", "who", "is", "are", "was", "it", "its", "there", "here",
    "located", "sitting", "lying", "placed", "standing", "resting", "lies", "sits", "stands",
    "please", "me", "find", "show", "get", "grab", "pick", "up", "locate", "select", "where",
    "what", "this", "those", "these", "some", "any", "all", "every", "each", "of", "to", "from",
    "most", "colored", "coloured", "sized", "size", "color", "colour", "shaped", "and",
    "just", "directly", "immediately", "somewhere",
    # Shades qualify a colour without changing its name ("dark blue" is blue).
    "dark", "light", "bright", "pale", "deep",
})
# Anchors that are no object of the map: the support everything rests on, and the robot itself.
_SURFACE_WORDS = frozenset({"table", "tabletop", "floor", "ground", "surface", "desk", "counter"})
_ROBOT_WORDS = frozenset({"robot", "me", "you", "us", "camera", "yourself", "myself"})

# Multi-word phrases, longest first at each position. A relation splits target from anchor; a
# "position" is a superlative said as a place ("the cube on the left").
_RELATION_PHRASES: list[tuple[str, str]] = [
    ("to the left of", "left_of"), ("on the left of", "left_of"), ("on the left side of", "left_of"),
    ("to the left side of", "left_of"), ("left of", "left_of"),
    ("to the right of", "right_of"), ("on the right of", "right_of"),
    ("on the right side of", "right_of"), ("to the right side of", "right_of"), ("right of", "right_of"),
    ("in front of", "in_front_of"), ("before", "in_front_of"),
    ("behind", "behind"), ("in back of", "behind"), ("at the back of", "behind"),
    ("next to", "near"), ("near to", "near"), ("close to", "near"), ("near", "near"),
    ("beside", "near"), ("besides", "near"), ("by", "near"), ("adjacent to", "near"),
    ("alongside", "near"), ("far from", "far"), ("away from", "far"),
    ("on top of", "on"), ("on", "on"), ("atop", "on"), ("upon", "on"), ("onto", "on"),
    ("inside of", "in"), ("inside", "in"), ("in", "in"), ("within", "in"), ("into", "in"),
]
_POSITION_PHRASES: list[tuple[str, str]] = [
    ("on the left", "leftmost"), ("to the left", "leftmost"), ("on the right", "rightmost"),
    ("to the right", "rightmost"), ("in front", "frontmost"), ("at the front", "frontmost"),
    ("at the back", "backmost"), ("in the back", "backmost"), ("in the rear", "backmost"),
]
# Rewritten to one word before parsing, so that "furthest to the left" is not read as a distance
# from an anchor called "the left".
_CANONICAL_PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:furthest|farthest|most) to the (left|right)\b"), r"\1most"),
    (re.compile(r"\b(?:furthest|farthest|far) (left|right)\b"), r"\1most"),
    (re.compile(r"\b(?:on|at|to) the far (left|right)\b"), r"\1most"),
    (re.compile(r"\b(left|right|front|back) most\b"), r"\1most"),
    (re.compile(r"\b(?:furthest|farthest) back\b"), "backmost"),
    (re.compile(r"\b(?:furthest|farthest) away\b"), "farthest"),
    # "right next to" is "next to", not "the rightmost ... next to".
    (re.compile(r"\bright (next to|beside|by|near|behind|in front of|on|in)\b"), r"\1"),
]
RELATIONS = ("left_of", "right_of", "in_front_of", "behind", "near", "far", "on", "in")
SUPERLATIVES = ("largest", "smallest", "tallest", "shortest", "leftmost", "rightmost",
                "frontmost", "backmost", "closest", "farthest")

DEFAULT_MIN_SCORE = 0.35
# Cosine below this says nothing about MiniLM nouns (unrelated words reach 0.45); at the top end
# it means a synonym ("mug"/"cup" 0.71, "rubber duck"/"duck" 0.84).
_COSINE_FLOOR = 0.5
_COSINE_FULL = 0.75
# Lateral or depth separation (m) at which "left of" and the like hold fully.
_RELATION_SEPARATION_M = 0.04
# Horizontal gap (m) between footprints at which "near" scores one half.
_NEAR_GAP_M = 0.10
# Score of non-extreme candidates of a superlative, at most; the extreme one keeps its full score.
_SUPERLATIVE_RUNNER_UP = 0.6
# Objects fitting a description at least this fraction as well as the best one are what it names:
# they compete for a superlative, and serve as a relation's anchor.
_BEST_FIT_RATIO = 0.8


@dataclass(frozen=True)
class ObjectDescription:
    """What a phrase says about one object.

    Attributes:
        noun: The noun phrase ("rubber duck"), or None for "the red one" / "the object".
        colors: Canonical colour names the phrase asks for (any of them).
        size: "small", "medium" or "large", or None.
        superlative: One of SUPERLATIVES, or None.
    """

    noun: str | None = None
    colors: tuple[str, ...] = ()
    size: str | None = None
    superlative: str | None = None


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into its target, and an optional relation to an anchor object.

    Attributes:
        target: The object asked for.
        relation: One of RELATIONS, or None.
        anchor: The object the relation refers to, or what a "closest to" / "farthest from"
            superlative measures from (then with no relation); None when there is none.
        anchor_is_robot: The anchor is the robot ("closest to you", "left of me").
    """

    target: ObjectDescription
    relation: str | None = None
    anchor: ObjectDescription | None = None
    anchor_is_robot: bool = False


def parse_query(text: str) -> ParsedQuery:
    """Parse a referring expression such as "the biggest navy block to the left of the bowl"."""
    words = _tokens(text)
    target_words, relation, anchor_words = _split_relation(words)
    target = _describe(target_words)
    # "The cube closest to the tray" asks for a ranking by distance to the tray, not for cubes
    # near it: the anchor serves the superlative only.
    measured = relation is None and target.superlative in ("closest", "farthest") and bool(anchor_words)
    if relation is None and not measured:
        return ParsedQuery(target)
    content = {word for word in anchor_words if word not in _FILLER_WORDS}
    if relation in ("on", "in") and content <= _SURFACE_WORDS:
        # "the cube on the table": every object rests on it, so the relation selects nothing.
        return ParsedQuery(target)
    if content <= _ROBOT_WORDS:
        # In front of an object means nearer the robot than it; in front of the robot itself
        # means ahead of it, which is "behind" measured from the robot (and the other way round).
        relation = {"in_front_of": "behind", "behind": "in_front_of"}.get(relation, relation)
        return ParsedQuery(target, relation, ObjectDescription(), anchor_is_robot=True)
    return ParsedQuery(target, relation, _describe(anchor_words))


def known_nouns() -> list[str]:
    """Return the nouns a query compares by embedding most often: the table's words and the shapes.

    Embedding them ahead (`TextEmbedder.embed`) takes the model's first calls off the first command.
    """
    words = set(_NOUN_TABLE) | set(SHAPES) | {"object", "flat object"}
    words |= {sense for entries in _NOUN_TABLE.values() for sense, _, _ in entries}
    return sorted(words)


def query(map_objects: Sequence[MapObject], text: str, max_results: int = 5, *,
          similarity: TextSimilarity | None = None,
          robot_pose: tuple[float, float, float] | None = None,
          min_score: float = DEFAULT_MIN_SCORE) -> list[tuple[MapObject, float]]:
    """Return the map objects that ``text`` refers to, best first, with scores in [0, 1].

    Args:
        map_objects: The objects to search.
        text: A referring expression, e.g. "the small crimson block left of the tray".
        max_results: At most this many results; 0 or less returns every match.
        similarity: Cosine similarity of two texts; None uses the shared MiniLM embedder.
        robot_pose: ``(x, y, yaw)`` of the robot in the world frame, which defines left, right,
            front and behind; None puts the robot at the origin looking along +x.
        min_score: Matches scoring below this are dropped.

    Returns:
        ``(object, score)`` pairs sorted by decreasing score (ties by id); empty when nothing fits.
    """
    objects = list(map_objects)
    if not objects or not text.strip():
        return []
    parsed = parse_query(text)
    similarity = similarity or default_embedder().similarity
    frame = _RobotFrame(robot_pose)
    scores = _description_scores(objects, parsed.target, similarity)
    anchors: list[MapObject] = []
    anchor_scores = np.zeros(0)
    if parsed.anchor_is_robot:
        anchors = [MapObject(id="robot", label="robot", category="robot",
                             position=[*frame.origin, 0.0], size=[0.0, 0.0, 0.0])]
        anchor_scores = np.ones(1)
    elif parsed.anchor is not None:
        anchors = objects
        anchor_scores = _description_scores(objects, parsed.anchor, similarity)
        if float(anchor_scores.max()) < min_score:
            # "Left of the giraffe" with no giraffe: nothing can be left of it.
            return []
        # "The tin" is the object that fits best (an actual can), not every cylinder-like one.
        anchor_scores[anchor_scores < _BEST_FIT_RATIO * float(anchor_scores.max())] = 0.0
    if parsed.relation is not None:
        scores = scores * _relation_factors(objects, parsed.relation, anchors, anchor_scores, frame)
    if parsed.target.superlative is not None:
        reference = None
        if anchors and parsed.target.superlative in ("closest", "farthest"):
            reference = anchors[int(np.argmax(anchor_scores))]
        scores = scores * _superlative_factors(
            objects, scores, parsed.target.superlative, frame, reference, min_score)
    order = sorted(range(len(objects)), key=lambda i: (-scores[i], objects[i].id))
    results = [(objects[i], float(np.clip(scores[i], 0.0, 1.0))) for i in order if scores[i] >= min_score]
    return results[:max_results] if max_results > 0 else results


# Parsing.

def _tokens(text: str) -> list[str]:
    text = " ".join(re.findall(r"[a-z]+", text.lower().replace("'s", "").replace("-", " ")))
    for pattern, replacement in _CANONICAL_PHRASES:
        text = pattern.sub(replacement, text)
    return text.split()


def _match_phrase(words: list[str], start: int, phrases: list[tuple[str, str]]) -> tuple[int, str] | None:
    """Return (length, meaning) of the longest phrase starting at ``words[start]``, if any."""
    best: tuple[int, str] | None = None
    for phrase, meaning in phrases:
        parts = phrase.split()
        if words[start:start + len(parts)] == parts and (best is None or len(parts) > best[0]):
            best = (len(parts), meaning)
    return best


def _split_relation(words: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Split at the first relation phrase that has a target before it and an anchor after it."""
    for start in range(1, len(words)):
        match = _match_phrase(words, start, _RELATION_PHRASES)
        if match is None:
            continue
        length, relation = match
        position = _match_phrase(words, start, _POSITION_PHRASES)
        # "on the left" without "of" is a place, not a relation: it outranks a shorter relation.
        if position is not None and position[0] >= length:
            continue
        rest = words[start + length:]
        if any(word not in _FILLER_WORDS for word in rest):
            return words[:start], relation, rest
    # "the cube closest to the tray", "the ball nearest the bowl": the anchor follows the
    # superlative, after "to" / "from" or, when the target's noun came first, right after it.
    distance_words = [i for i, w in enumerate(words) if SUPERLATIVE_SYNONYMS.get(w) in ("closest", "farthest")]
    if distance_words:
        k = distance_words[0]
        for start in range(k + 1, len(words)):
            if words[start] in ("to", "from"):
                return words[:start], None, words[start + 1:]
        before = [w for w in words[:k] if w not in _FILLER_WORDS]
        after = [w for w in words[k + 1:] if w not in _FILLER_WORDS]
        if before and after:
            return words[:k + 1], None, words[k + 1:]
    return words, None, []


def _describe(words: list[str]) -> ObjectDescription:
    colors: list[str] = []
    size = superlative = None
    noun_words: list[str] = []
    index = 0
    while index < len(words):
        position = _match_phrase(words, index, _POSITION_PHRASES)
        if position is not None:
            superlative = position[1]
            index += position[0]
            continue
        word = words[index]
        index += 1
        if word in COLOR_SYNONYMS:
            colors.append(COLOR_SYNONYMS[word])
        elif word in SIZE_SYNONYMS:
            size = SIZE_SYNONYMS[word]
        elif word in SUPERLATIVE_SYNONYMS:
            superlative = SUPERLATIVE_SYNONYMS[word]
        elif word not in _FILLER_WORDS:
            noun_words.append(word)
    noun_words = [word for word in noun_words if word not in _GENERIC_NOUNS and _singular(word) not in _GENERIC_NOUNS]
    noun = " ".join(noun_words) or None
    return ObjectDescription(noun, tuple(dict.fromkeys(colors)), size, superlative)


def _singular(word: str) -> str:
    if word in _NOUN_TABLE:
        return word
    for ending, replacement in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(ending) and word[: -len(ending)] + replacement in _NOUN_TABLE:
            return word[: -len(ending)] + replacement
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


# Scoring.

class _RobotFrame:
    """Express world positions in the robot's frame (x forward, y left)."""

    def __init__(self, pose: tuple[float, float, float] | None) -> None:
        x, y, yaw = pose if pose is not None else (0.0, 0.0, 0.0)
        self.origin = np.array([x, y], dtype=np.float64)
        c, s = math.cos(yaw), math.sin(yaw)
        self.rotation = np.array([[c, s], [-s, c]])

    def xy(self, obj: MapObject) -> np.ndarray:
        """Return the object's centre (x, y) in the robot's frame."""
        return self.rotation @ (obj.position[:2] - self.origin)


def _description_scores(objects: list[MapObject], description: ObjectDescription,
                        similarity: TextSimilarity) -> np.ndarray:
    """Return how well each object fits a description: noun x colour x size."""
    noun = np.array([_noun_score(obj, description.noun, similarity) for obj in objects])
    color = np.array([_color_score(obj, description.colors) for obj in objects])
    scores = noun * color
    if description.size is not None:
        scores = scores * _size_scores(objects, description.size, scores)
    return scores


def _noun_score(obj: MapObject, noun: str | None, similarity: TextSimilarity) -> float:
    if noun is None:
        return 1.0
    names = {name for name in (obj.category.lower(), _object_noun(obj)) if name}
    if not names:
        return 0.0
    if noun in names:
        return 1.0
    extent = float(np.max(obj.size))
    wanted = _senses(noun, extent)
    explicit = 0.0
    for name in names:
        for sense, weight in _senses(name, extent).items():
            explicit = max(explicit, weight * wanted.get(sense, 0.0))
    if explicit >= 1.0:
        return 1.0
    cosine = max(similarity(noun, name) for name in names)
    learned = float(np.clip((cosine - _COSINE_FLOOR) / (_COSINE_FULL - _COSINE_FLOOR), 0.0, 1.0))
    return max(explicit, learned)


def _senses(phrase: str, extent: float) -> dict[str, float]:
    """Return the senses of a noun phrase for an object of this largest extent, with weights.

    The whole phrase is looked up first, then its head (last) word, then the head's singular.
    """
    head = phrase.split()[-1]
    entries: list[tuple[str, float, str | None]] = []
    for key in (phrase, head, _singular(head)):
        entries = _NOUN_TABLE.get(key, [])
        if entries:
            break
    senses = {phrase: 1.0}
    for sense, weight, condition in entries:
        if (condition == "small" and extent >= _BOX_SPLIT_M) or (condition == "large" and extent < _BOX_SPLIT_M):
            continue
        senses[sense] = max(senses.get(sense, 0.0), weight)
    return senses


def _object_noun(obj: MapObject) -> str:
    """Return the object's label without its colour and size words ("small red cube" -> "cube")."""
    words = [w for w in _tokens(obj.label)
             if w not in COLOR_SYNONYMS and w not in SIZE_SYNONYMS and w not in _FILLER_WORDS]
    return " ".join(words)


def _object_color(obj: MapObject) -> str | None:
    if obj.color is not None:
        return COLOR_SYNONYMS.get(obj.color.lower(), obj.color.lower())
    for word in (*obj.attributes, *_tokens(obj.label)):
        if word.lower() in COLOR_SYNONYMS:
            return COLOR_SYNONYMS[word.lower()]
    return None


def _color_score(obj: MapObject, colors: tuple[str, ...]) -> float:
    if not colors:
        return 1.0
    color = _object_color(obj)
    if color is None:
        # Unknown colour: possible, but an object known to match must rank first.
        return 0.5
    return 1.0 if color in colors else 0.0


def _object_size_class(obj: MapObject) -> str:
    for word in obj.attributes:
        if word in SIZE_CLASSES:
            return word
    return size_class(obj.size)


def _size_scores(objects: list[MapObject], wanted: str, fit: np.ndarray) -> np.ndarray:
    """Score size words by class, and relatively among the objects that otherwise fit.

    "The small cube" among cubes of 6 and 10 cm (both "medium") means the 6 cm one: the extreme
    among the fitting objects scores nearly as well as an exact class match.
    """
    rank = SIZE_CLASSES.index(wanted)
    scores = np.array([(1.0, 0.5, 0.15)[abs(SIZE_CLASSES.index(_object_size_class(obj)) - rank)]
                       for obj in objects])
    peers = np.flatnonzero(fit >= 0.5)
    if wanted != "medium" and len(peers) >= 2:
        volumes = np.array([float(np.prod(objects[i].size)) for i in peers])
        extreme = peers[int(np.argmin(volumes) if wanted == "small" else np.argmax(volumes))]
        scores[extreme] = max(scores[extreme], 0.8)
    return scores


def _relation_factors(objects: list[MapObject], relation: str, anchors: list[MapObject],
                      anchor_scores: np.ndarray, frame: _RobotFrame) -> np.ndarray:
    """Return, per object, the best anchor fit times how well the relation holds to that anchor."""
    factors = np.zeros(len(objects))
    for i, obj in enumerate(objects):
        for j, anchor in enumerate(anchors):
            if anchor is obj or anchor_scores[j] <= 0.0:
                continue
            factors[i] = max(factors[i], anchor_scores[j] * _relation_holds(obj, anchor, relation, frame))
    return factors


def _relation_holds(obj: MapObject, anchor: MapObject, relation: str, frame: _RobotFrame) -> float:
    """Return how well ``obj <relation> anchor`` holds, in [0, 1]."""
    a, b = frame.xy(obj), frame.xy(anchor)
    distance = float(np.linalg.norm(a - b))
    # Among several objects to the left of the tray, prefer the nearer one, gently.
    proximity = 0.85 + 0.15 * math.exp(-distance / 0.3)
    if relation in ("left_of", "right_of", "in_front_of", "behind"):
        axis, sign = {"left_of": (1, 1.0), "right_of": (1, -1.0),
                      "in_front_of": (0, -1.0), "behind": (0, 1.0)}[relation]
        separation = sign * (a[axis] - b[axis])
        return float(np.clip(separation / _RELATION_SEPARATION_M, 0.0, 1.0)) * proximity
    gap = max(distance - _footprint_radius(obj) - _footprint_radius(anchor), 0.0)
    near = 1.0 / (1.0 + (gap / _NEAR_GAP_M) ** 2)
    if relation == "near":
        return near
    if relation == "far":
        return 1.0 - near
    return _over(obj, anchor) * _resting_on_or_in(obj, anchor, relation)


def _footprint_radius(obj: MapObject) -> float:
    return 0.5 * float(np.hypot(obj.size[0], obj.size[1])) * 0.75


def _over(obj: MapObject, support: MapObject) -> float:
    """Return 1 when obj's centre lies over support's footprint, fading over 2 cm outside it."""
    c, s = math.cos(support.yaw), math.sin(support.yaw)
    offset = obj.position[:2] - support.position[:2]
    local = np.array([c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1]])
    outside = np.clip(np.abs(local) - 0.5 * support.size[:2], 0.0, None)
    return float(math.exp(-float(np.linalg.norm(outside)) / 0.02))


def _resting_on_or_in(obj: MapObject, support: MapObject, relation: str) -> float:
    """Return 1 when obj's bottom sits where "on" or "in" puts it, fading over 2 cm."""
    bottom = obj.position[2] - 0.5 * obj.size[2]
    support_bottom = support.position[2] - 0.5 * support.size[2]
    support_top = support.position[2] + 0.5 * support.size[2]
    # On a tray or in a bowl the bottom sits between the support's floor and rim; on a block it
    # sits at the top. Both words accept both: people say "on the tray" and "in the tray".
    low = support_bottom - 0.01 if relation == "in" or support.size[2] < 0.05 else support_top - 0.02
    high = support_top + 0.03
    miss = max(low - bottom, bottom - high, 0.0)
    return math.exp(-miss / 0.02)


def _superlative_factors(objects: list[MapObject], scores: np.ndarray, superlative: str,
                         frame: _RobotFrame, reference: MapObject | None, min_score: float) -> np.ndarray:
    """Return 1 for the extreme candidate and at most _SUPERLATIVE_RUNNER_UP for the others.

    The candidates are the objects that fit the description nearly as well as the best one: in
    "the leftmost mug", a can (a mug only by shape) does not compete with an actual cup.
    ``reference`` is the anchor that "closest to" / "farthest from" measure from; None measures
    from the robot.
    """
    candidates = np.flatnonzero(scores >= max(min_score, _BEST_FIT_RATIO * float(scores.max())))
    factors = np.full(len(objects), _SUPERLATIVE_RUNNER_UP)
    factors[candidates] = 1.0
    if len(candidates) < 2:
        return factors
    if superlative in ("closest", "farthest") and reference is not None:
        origin = frame.xy(reference)
        values = np.array([float(np.linalg.norm(frame.xy(objects[i]) - origin)) for i in candidates])
        larger_wins = superlative == "farthest"
    else:
        values, larger_wins = _superlative_values([objects[i] for i in candidates], superlative, frame)
    if larger_wins:
        values = -values
    spread = float(values.max() - values.min())
    for index, value in zip(candidates, values):
        closeness = 1.0 - (value - values.min()) / spread if spread > 0.0 else 1.0
        factors[index] = 1.0 if value == values.min() else _SUPERLATIVE_RUNNER_UP * closeness
    return factors


def _superlative_values(objects: list[MapObject], superlative: str, frame: _RobotFrame
                        ) -> tuple[np.ndarray, bool]:
    """Return each object's value for a superlative and whether the largest value wins."""
    if superlative in ("largest", "smallest"):
        return np.array([float(np.prod(obj.size)) for obj in objects]), superlative == "largest"
    if superlative in ("tallest", "shortest"):
        return np.array([obj.position[2] + 0.5 * obj.size[2] for obj in objects]), superlative == "tallest"
    xy = np.array([frame.xy(obj) for obj in objects])
    if superlative in ("leftmost", "rightmost"):
        return xy[:, 1], superlative == "leftmost"
    if superlative in ("frontmost", "backmost"):
        return xy[:, 0], superlative == "backmost"
    return np.linalg.norm(xy, axis=1), superlative == "farthest"
