"""The rules planner's grammar: from an instruction's words to clauses, with no map involved.

An instruction is cut into sentences and then into clauses at sequence words ("then", "and
then", "after that", a comma or "and" before a verb). Each clause is matched against a small
grammar of commands (pick, place, push, navigate, search, home, gripper, say, undo, put back,
follow-up, put down). Object phrases stay text here: `Ref` carries the words, and the planner
resolves them against the map with `modular_robot.core.mapping.query`. Quantifiers ("all", "both",
"two of"), exceptions ("except the blue one"), pronouns ("it", "them") and phrases naming the held
object ("what you are holding", "the cube in your hand") are recognised here too, so that they
compose with every verb and destination of the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

# Phrases said only to be polite or to address the robot; they carry no command.
_POLITE = re.compile(
    r"^(?:(?:ok(?:ay)?|hey|hi|so|robot|please|kindly|well|alright)\b[\s,]*)*"
    r"(?:(?:could|can|would|will) you(?: please)?(?: kindly)?|would you mind|"
    r"i (?:want|need|would like|'d like|d like) you to|i'd like you to|go ahead and|try to|"
    r"be so kind as to|i want to)?\s*(?:please\s+)?", re.IGNORECASE)
_TRAILING = re.compile(r"[\s,]*(?:please|for me|thanks|thank you|now|if you can|if possible|robot)\s*$", re.IGNORECASE)

# Words that start a command: a clause begins at one of these after "and" or a comma.
COMMAND_VERBS = (
    "pick", "grab", "take", "lift", "get", "grasp", "fetch", "collect", "retrieve", "hold", "put", "place",
    "move", "drop", "set", "stack", "lay", "bring", "transfer", "carry", "deposit", "insert", "toss",
    "push", "slide", "nudge", "shove", "shift", "go", "drive", "navigate", "head", "travel", "approach",
    "find", "locate", "search", "look", "return", "open", "close", "shut", "say", "tell", "announce",
    "undo", "revert", "reverse", "release", "come", "do", "repeat", "home", "reset", "let", "lower",
)
_VERB_ALTERNATION = "|".join(COMMAND_VERBS)
# "next" is a sequence word unless it is "next to".
_SEQUENCE = re.compile(
    r"\s*,?\s*\b(?:and then|and after that|and afterwards|and finally|and next|after that|afterwards|"
    r"then|finally|next(?! to\b))\b\s*,?\s*", re.IGNORECASE)
_AND_VERB = re.compile(rf"\s*(?:,\s*and|,|\band)\s+(?=(?:{_VERB_ALTERNATION})\b)", re.IGNORECASE)
_EXCEPT = re.compile(r"\s*,?\s*\b(?:except(?: for)?|but not|other than|apart from|excluding|not including|"
                     r"save for|with the exception of|leaving out|aside from)\s+(.+)$", re.IGNORECASE)
_SENTENCE = re.compile(r"[;!?]+|\.(?!\d)")
_LEADING = re.compile(r"^(?:first(?: of all)?|firstly|to start|and|also|lastly|second(?:ly)?|then)\b[\s,]*",
                      re.IGNORECASE)

# Place relations, longest first where one is the start of another.
PLACE_RELATIONS: tuple[tuple[str, str], ...] = (
    ("to the left side of", "left_of"), ("on the left side of", "left_of"), ("to the left of", "left_of"),
    ("on the left of", "left_of"), ("at the left of", "left_of"), ("left of", "left_of"),
    ("to the right side of", "right_of"), ("on the right side of", "right_of"),
    ("to the right of", "right_of"), ("on the right of", "right_of"), ("at the right of", "right_of"),
    ("right of", "right_of"),
    ("in front of", "in_front_of"), ("at the front of", "in_front_of"),
    ("behind", "behind"), ("in back of", "behind"), ("at the back of", "behind"),
    ("next to", "near"), ("beside", "near"), ("near to", "near"), ("near", "near"), ("close to", "near"),
    ("by the side of", "near"), ("alongside", "near"), ("by", "near"),
    ("on top of", "on"), ("onto", "on"), ("on to", "on"), ("on", "on"), ("atop", "on"), ("upon", "on"),
    ("inside of", "in"), ("inside", "in"), ("into", "in"), ("in", "in"), ("within", "in"),
    ("over to", "to"), ("to", "to"), ("towards", "to"), ("toward", "to"),
)
_DISTANCE_SUPERLATIVES = frozenset({"closest", "nearest", "farthest", "furthest", "close", "far", "away"})
_ROBOT_WORDS = frozenset({"you", "me", "us", "the robot", "yourself", "myself"})
# Relations said as a movement: after "take", "get", "bring" or "fetch" only these name a destination.
_DIRECTED_RELATIONS = frozenset({"to", "towards", "toward", "over to", "into", "onto", "on to"})
_CARRY_VERBS = frozenset({"take", "get", "bring", "carry", "transfer", "fetch"})
_POSITION_ANCHORS = frozenset({"the left", "the right", "the front", "the back", "left", "right"})
SURFACE_WORDS = frozenset({"table", "tabletop", "floor", "ground", "surface", "desk", "counter"})

PRONOUNS = frozenset({"it", "that", "that one", "this", "this one", "them", "those", "these", "they",
                      "the same one", "the same object", "the same thing", "both of them", "all of them",
                      "those ones", "these ones", "that thing", "this thing", "the object", "it again"})
# Phrases naming the object in the gripper: "what you are holding", "the cube (that) you're holding",
# "the thing in your hand", "the held object". The words before the holding clause, if any,
# describe the object ("the red cube"); generic heads ("the thing", "what") describe nothing.
_HOLDING = (r"(?:that |which )?you(?:'re| are)?\s*(?:currently |now |still |already )?"
            r"(?:holding|hold|carrying|carry|gripping|grasping|have|'ve got|have got)"
            r"(?: (?:in|between) (?:your|the) (?:hand|gripper|fingers|claw|grip|grasp))?"
            r"(?: (?:right )?now| currently)?")
_IN_HAND = (r"(?:that is |which is )?(?:currently |now |still )?(?:in|between) (?:your|the robot's|the) "
            r"(?:hand|gripper|fingers|claw|grip|grasp)")
_HELD = re.compile(
    rf"^(?:what(?:ever)?(?:'s| is)? (?:{_IN_HAND}|{_HOLDING})|"
    rf"(?P<described>.+?) (?:{_HOLDING}|{_IN_HAND}|(?:currently )?held)|"
    r"(?:the |your )?(?:currently )?held (?P<noun>.+))$", re.IGNORECASE)
_GENERIC_HEAD = re.compile(r"^(?:(?:the |that |this )?(?:thing|object|item|one|stuff)|what(?:ever)?|it|that|this)?$")
_PLURAL_PRONOUNS = frozenset({"them", "those", "these", "they", "both of them", "all of them", "those ones",
                              "these ones"})

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
                "twenty five": 25, "thirty": 30, "forty": 40, "fifty": 50, "a couple of": 2, "a pair of": 2}
_NUMBER = r"(\d+(?:\.\d+)?|" + "|".join(sorted((w for w in NUMBER_WORDS if w not in ("a", "an")),
                                               key=len, reverse=True)) + ")"
_UNITS = {"cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
          "mm": 0.001, "millimeter": 0.001, "millimeters": 0.001, "millimetre": 0.001, "millimetres": 0.001,
          "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
          "inch": 0.0254, "inches": 0.0254, "in": 0.0254}
_UNIT = "(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b"
_DISTANCE = re.compile(rf"\s*(?:by |about |around |roughly |approximately |some |for )?{_NUMBER}\s*{_UNIT}",
                       re.IGNORECASE)
_DIRECTIONS: tuple[tuple[str, str], ...] = (
    (r"(?:to the |towards the |toward the |to your |to my |)left(?:wards)?(?: side)?", "left"),
    (r"(?:to the |towards the |toward the |to your |to my |)right(?:wards)?(?: side)?", "right"),
    (r"forwards?|ahead|away(?: from (?:me|you|the robot))?|further away|farther away|back away", "forward"),
    (r"backwards?|back|closer(?: to (?:me|you|the robot))?|towards? (?:me|you|the robot)", "backward"),
)
_DIRECTION = re.compile(
    r"\s+(?:" + "|".join(f"(?P<d{i}>{pattern})" for i, (pattern, _) in enumerate(_DIRECTIONS)) +
    r")(?: a (?:bit|little)| slightly| a little bit)?$", re.IGNORECASE)
DEFAULT_PUSH_M = 0.10
# Verbs that put an object down with the particle "down" ("put it down", "set down the cube"); "drop"
# puts it down even without one ("drop what you are holding").
_DOWN_VERBS = r"put|place|set|lay|drop|lower"
_DOWN_PARTICLE = re.compile(
    r"\s+down(?=$|\s+(?:on|onto|upon|in|into|inside|next|near|beside|by|to|left|right|in front|behind)\b)",
    re.IGNORECASE)

# Verbs by command: the verb's words, as a regex alternation.
_PICK = r"pick up|pick|grab|take|lift up|lift|get|grasp|fetch|collect|retrieve|hold|raise"
_PLACE = (r"put|place|move|drop|set|stack|lay|bring|transfer|carry|take|deposit|insert|toss|throw|"
          r"relocate|shift|get|fetch")
_PUSH = r"push|slide|nudge|shove|move|shift|scoot|bump"
_NAVIGATE = re.compile(
    r"^(?:go|drive|navigate|head|travel|move|come|roll|walk|get)(?: yourself)?\s+(?:over |up |back |on )?"
    r"(?:to|towards|toward|up to|next to|near)\s+(.+)$|^approach\s+(.+)$", re.IGNORECASE)
_POSE = re.compile(r"^(?:the )?(?:position|point|coordinates?|pose|location)?\s*\(?\s*(?:x\s*=?\s*)?"
                   r"(-?\d+(?:\.\d+)?)\s*(?:m\b)?\s*,?\s*(?:y\s*=?\s*)?(-?\d+(?:\.\d+)?)\s*(?:m\b)?\s*\)?$",
                   re.IGNORECASE)
_SEARCH = re.compile(r"^(?:find|locate|search for|search|look for|look around for|hunt for|seek)\s+(.+)$",
                     re.IGNORECASE)
_HOME = re.compile(
    r"^(?:(?:go|move|return|come|head|get|send|bring|put|take)\b)?(?:\s+(?:your|the|my|its))?(?:\s+arm)?"
    r"(?:\s+back)?(?:\s+to)?(?:\s+(?:the|its|your))?\s*(?:home|rest|ready|initial|starting)"
    r"(?:\s+(?:position|pose|configuration|posture))?$|^(?:reset|home)(?: your| the)? arm$", re.IGNORECASE)
_GRIPPER = re.compile(
    r"^(open|close|shut)(?: up)?\s+(?:your |the |my )?(?:gripper|hand|fingers|claw|grip)"
    r"(?:\s+(?:to|by)\s+" + _NUMBER + r"\s*" + _UNIT + r")?(?: fully| all the way| completely)?$", re.IGNORECASE)
_RELEASE = re.compile(r"^(?:let go|release)(?: of)?(?: it| that| the object)?$", re.IGNORECASE)
_SAY = re.compile(r"^(?:say|speak|announce|read out)\s+(?P<text>.+)$|"
                  r"^tell (?:me|us|the user|everyone|them|him|her)\s+(?:that\s+)?(?P<told>.+)$", re.IGNORECASE)
_UNDO = re.compile(r"^(?:undo|revert|reverse|take back|cancel)(?: (?:that|it|this|what you did|the last "
                   r"(?:move|action|step|thing|command|task)|your last (?:move|action)))?(?: please)?$|"
                   r"^take that back$", re.IGNORECASE)
_PUT_BACK = re.compile(
    r"^(?:put|place|move|bring|return|set)\s+(?P<object>.+?)\s+back(?:\s+(?:where (?:it|they|that|this) "
    r"(?:was|were|came from)|to where (?:it|they) (?:was|were)|in (?:its|their) (?:place|spot)|to its place|"
    r"again))?$|^(?:put|place|move|bring|return)\s+back\s+(?P<object2>.+)$|^return\s+(?P<object3>.+?)"
    r"(?:\s+to (?:its|their) (?:place|spot|original (?:place|position|spot)))$", re.IGNORECASE)
_FOLLOW_UP = re.compile(
    r"^(?:(?:now )?(?:do|repeat) (?:the same|that|this|it)(?: thing)?(?: again)?|(?:and )?(?:the )?same"
    r"(?: thing)?(?: again)?|again|repeat)\s+(?:with|for|to|on)\s+(?P<object>.+)$|"
    r"^(?:now|and now|next|and|also|then)\s+(?P<object2>.+?)(?:\s+too|\s+as well)?$|"
    r"^(?P<object3>.+?)\s+(?:too|as well)$", re.IGNORECASE)
_CANCEL = re.compile(r"^(?:cancel|never ?mind|forget (?:it|that|about it)|stop|no|none|neither|"
                     r"nothing|abort)$", re.IGNORECASE)
_COURTESY = re.compile(r"^(?:hello|hi|hey|good (?:morning|afternoon|evening)|thanks|thank you|"
                       r"(?:good|nice|great) (?:job|work)|well done|ok|okay|cool)$", re.IGNORECASE)

# Requests to change the rules the robot moves by: refused whatever else they say.
_UNSAFE = re.compile(
    r"\b(?:ignore|disregard|forget|bypass|override|overrule|disable|deactivate|circumvent|skip|suspend|"
    r"remove|turn off|switch off|shut off|shut down|get rid of|break|violate|lift|raise|increase|exceed)\b"
    r"[\w\s']{0,30}\b(?:rules?|safety|limits?|limitations?|restrictions?|constraints?|checks?|checking|"
    r"collision|shield|guard|guardrails?|speed limit|protection|instructions|programming|failsafe|"
    r"e-?stop|emergency stop|watchdog)\b|"
    r"\b(?:as fast as (?:possible|you can)|at (?:full|maximum|max|top) speed|full speed|max(?:imum)? speed|"
    r"top speed|go faster|move faster|drive faster|faster|speed up|no (?:limits|safety|rules)|"
    r"without (?:any )?(?:safety|limits|checks|collision)|unsafe|dangerous(?:ly)?|recklessly|"
    r"jailbreak|developer mode|god mode|unlimited)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Ref:
    """An object phrase of a command, or ids already resolved.

    Attributes:
        text: The phrase as said, lower case ("the red cube left of the tray"); "" when `ids` holds it.
        ids: Map ids already known (a follow-up's destination, the objects "it" named).
    """

    text: str = ""
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clause:
    """One command of an instruction.

    Attributes:
        action: "pick", "place", "push", "navigate", "search", "home", "open", "close", "say",
            "undo", "put_back", "put_down" (release the held object onto the surface below it) or
            "follow_up".
        obj: The object acted on (pick, place, push, navigate, search, put_back, put_down, follow_up).
        relation: A place relation of the skill library, or "to" (in a container, else near).
        target: The reference object of a place.
        direction: Push direction: "forward", "backward", "left" or "right".
        distance: Push distance (m), or the gripper opening (m) for "open"; None for the default.
        text: What `say` says; the pose "x,y" of a navigation to a position; the words of a put down.
    """

    action: str
    obj: Ref | None = None
    relation: str | None = None
    target: Ref | None = None
    direction: str | None = None
    distance: float | None = None
    text: str = ""

    def with_object(self, obj: Ref) -> Clause:
        """Return the same command applied to another object."""
        return replace(self, obj=obj)


@dataclass(frozen=True)
class Quantity:
    """What an object phrase asks for: one object, or a set.

    Attributes:
        mode: "one" (the definite "the cube": several fits are ambiguous), "any" ("a cube": the best
            fit), "all" ("all the cubes", "the cubes"), "both", or "count" ("two of the cubes").
        count: How many for "count", 2 for "both", 1 for "one"/"any", 0 for "all".
        description: The phrase without its quantifier ("cubes", "red things left of the tray").
        exceptions: Phrases of objects left out ("the blue one" of "except the blue one").
        pronoun: The phrase is a pronoun ("it", "them") naming the dialogue's referents.
        held: The phrase names the object in the gripper ("what you are holding", "the cube in your
            hand"); `description` then holds only the words that describe it ("cube"), if any.
    """

    mode: str
    count: int
    description: str
    exceptions: tuple[str, ...] = ()
    pronoun: bool = False
    held: bool = False


def is_unsafe(text: str) -> bool:
    """Return whether the text asks to change or ignore the safety rules."""
    return _UNSAFE.search(text) is not None


def strip_polite(text: str) -> str:
    """Return a command without politeness and address ("could you please ... for me")."""
    text = " ".join(text.replace("\u2019", "'").split())
    previous = None
    while previous != text:
        previous = text
        text = _POLITE.sub("", text, count=1).strip(" ,")
        text = _TRAILING.sub("", text).strip(" ,")
        text = re.sub(r"^(?:please|now)\b[\s,]*(?=\w+\s)", "", text, flags=re.IGNORECASE) \
            if re.match(rf"^(?:please|now)\b[\s,]*(?:{_VERB_ALTERNATION})\b", text, re.IGNORECASE) else text
    return text


def sentences(text: str) -> list[str]:
    """Return the text's sentences (split at ".", ";", "!", "?" but not inside a number)."""
    return [s.strip(" ,") for s in _SENTENCE.split(text) if s.strip(" ,")]


def split_clauses(text: str) -> list[str]:
    """Return the instruction's clauses in order: "A then B", "first A, then B", "A and B", "A. B"."""
    clauses: list[str] = []
    for sentence in sentences(text):
        for part in _SEQUENCE.split(sentence):
            for piece in _AND_VERB.split(part):
                piece = _LEADING.sub("", piece.strip(" ,")).strip(" ,")
                piece = strip_polite(piece)
                if piece:
                    clauses.append(piece)
    return clauses


def parse_clause(clause: str) -> Clause | None:
    """Return the command a clause says, or None when it matches no command of the grammar."""
    text = clause.strip(" ,.")
    low = text.lower()
    if _UNDO.match(low):
        return Clause("undo")
    match = _PUT_BACK.match(low)
    if match:
        return Clause("put_back", obj=Ref(match.group("object") or match.group("object2")
                                          or match.group("object3")))
    if _HOME.match(low):
        return Clause("home")
    match = _GRIPPER.match(low)
    if match:
        opening = None
        if match.group(2):
            opening = _number(match.group(2)) * _UNITS[match.group(3).lower()]
        return Clause("open" if match.group(1) == "open" else "close", distance=opening)
    if _RELEASE.match(low):
        return Clause("open")
    match = _SAY.match(text)
    if match and not re.match(r"^(?:me |us )?(?:what|where|how|which|whether|if|about)\b",
                              (match.group("told") or "").lower()):
        return Clause("say", text=(match.group("text") or match.group("told")).strip(" '\""))
    match = _NAVIGATE.match(low)
    if match:
        goal = (match.group(1) or match.group(2)).strip()
        pose = _POSE.match(goal)
        if pose:
            return Clause("navigate", text=f"{float(pose.group(1))},{float(pose.group(2))}")
        return Clause("navigate", obj=Ref(goal))
    match = _SEARCH.match(low)
    if match:
        return Clause("search", obj=Ref(match.group(1).strip()))
    return _parse_manipulation(low) or _parse_follow_up(low)


def _parse_manipulation(low: str) -> Clause | None:
    """Parse push (a direction ends it), place (a destination ends it), put down and pick commands, in that order."""
    down = _parse_down(low)
    if down is not None:
        return down
    match = re.match(rf"^(?:{_PUSH})\s+(.+)$", low)
    if match:
        rest, distance = _take_distance(match.group(1))
        direction = _DIRECTION.search(rest)
        obj = rest[:direction.start()].strip() if direction is not None else ""
        if direction is not None and obj:
            name = next(_DIRECTIONS[int(key[1:])][1] for key, value in direction.groupdict().items() if value)
            return Clause("push", obj=Ref(obj), direction=name,
                          distance=DEFAULT_PUSH_M if distance is None else distance)
    match = re.match(rf"^({_PLACE})\s+(.+)$", low)
    if match:
        split = split_destination(match.group(2))
        # "Take the cube in the tray" picks the cube that is in the tray; "take it to the tray" moves it.
        if split is not None and (match.group(1) not in _CARRY_VERBS or split[3]):
            obj, relation, target, _ = split
            # "all the cubes in the tray except the blue one": the exception belongs to the objects.
            exception = _EXCEPT.search(target)
            if exception is not None:
                obj, target = f"{obj}{target[exception.start():]}", target[:exception.start()]
            return Clause("place", obj=Ref(obj), relation="on" if low.startswith("stack ") else relation,
                          target=Ref(target))
    match = re.match(r"^(?:push|slide|nudge|shove|scoot|bump)\s+(.+)$", low)
    if match:
        # A push with no direction: the planner asks which way.
        return Clause("push", obj=Ref(_take_distance(match.group(1))[0]))
    match = re.match(rf"^(?:{_PICK})\s+(.+?)(?:\s+up)?$", low)
    if match and not re.match(r"^(?:get|take|hold)\s+(?:back|out|off|away|over|on)\b", low):
        return Clause("pick", obj=Ref(match.group(1).strip()))
    return None


def _parse_down(low: str) -> Clause | None:
    """Parse a command with the particle "down": "put X down", "set down X", "drop X".

    "Down" only says the object goes lower: with a destination ("put it down in the tray") the
    command is the place it names; without one the object is put down on the surface below it.
    """
    match = re.match(rf"^({_DOWN_VERBS})\s+(down\s+)?(.+)$", low)
    if match is None:
        return None
    verb, before, rest = match.groups()
    stripped = _DOWN_PARTICLE.sub("", rest).strip()
    said_down = before is not None or stripped != rest.strip()
    if not stripped or not (said_down or verb == "drop"):
        return None
    if split_destination(stripped) is not None:
        placed = _parse_manipulation(f"{verb} {stripped}") if said_down else None
        return placed if placed is not None and placed.action == "place" else None
    return Clause("put_down", obj=Ref(stripped), text=low)


def _parse_follow_up(low: str) -> Clause | None:
    match = _FOLLOW_UP.match(low)
    if not match:
        return None
    phrase = (match.group("object") or match.group("object2") or match.group("object3")).strip()
    if re.match(rf"^(?:{_VERB_ALTERNATION})\b", phrase):
        return None
    return Clause("follow_up", obj=Ref(phrase))


def split_destination(rest: str) -> tuple[str, str, str, bool] | None:
    """Split "X <relation> Y" at its last place relation whose Y is an object phrase.

    "the cube left of the tray in the bowl" splits at "in" ("the cube left of the tray", "in",
    "the bowl"); "the cube in the tray on the left" at "in", since "the left" is a place, not an
    object; "the ball closest to you" not at all, since "to" there measures a distance.

    Returns:
        (X, relation, Y, whether the relation was said as a direction: "to", "into", "onto"), or None.
    """
    words = rest.split()
    matches: list[tuple[int, int, str]] = []
    index = 1
    while index < len(words):
        best = None
        for phrase, relation in PLACE_RELATIONS:
            parts = phrase.split()
            if words[index:index + len(parts)] == parts and (best is None or len(parts) > best[1]):
                best = (index, len(parts), relation)
        if best is None or words[index - 1] in _DISTANCE_SUPERLATIVES:
            index += 1 if best is None else best[1]
            continue
        matches.append(best)
        index += best[1]
    for start, length, relation in reversed(matches):
        target = " ".join(words[start + length:])
        # "In your hand" says which object is meant (the held one), not where it goes.
        in_hand = _HELD.match(f"what is {' '.join(words[start:])}") is not None
        if target and target not in _POSITION_ANCHORS and target not in _ROBOT_WORDS and not in_hand and not re.match(
                r"^(?:the )?(?:left|right|front|back)(?: side)?$", target):
            directed = " ".join(words[start:start + length]) in _DIRECTED_RELATIONS
            return " ".join(words[:start]), relation, target, directed
    return None


def _take_distance(text: str) -> tuple[str, float | None]:
    """Remove a distance ("by 5 cm", "ten centimetres") from a push phrase; return it in metres."""
    match = _DISTANCE.search(text)
    if match is None:
        return text, None
    value = _number(match.group(1)) * _UNITS[match.group(2).lower()]
    return (text[:match.start()] + text[match.end():]).strip(), value


def _number(word: str) -> float:
    word = word.lower()
    return float(NUMBER_WORDS[word]) if word in NUMBER_WORDS else float(word)


def parse_quantity(phrase: str) -> Quantity:
    """Split an object phrase into its quantifier, description and exceptions."""
    text = " ".join(phrase.lower().split())
    exceptions: tuple[str, ...] = ()
    match = _EXCEPT.search(text)
    if match:
        exceptions = tuple(p.strip() for p in re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|nor)\s+",
                                                         match.group(1)) if p.strip())
        text = text[:match.start()].strip(" ,")
    held = held_description(text)
    if held is not None:
        return Quantity("one", 1, held, exceptions, held=True)
    if text in PRONOUNS:
        mode = "all" if text in _PLURAL_PRONOUNS else "one"
        if text == "both of them":
            mode = "both"
        return Quantity(mode, {"one": 1, "both": 2}.get(mode, 0), text, exceptions, pronoun=True)
    if text in ("everything", "all", "all things", "every thing", "all objects", "all of it", "anything"):
        return Quantity("all", 0, "things", exceptions)
    match = re.match(r"^(?:all|every|each|any and all)(?: one| single one)?(?: of)?(?: the| these| those)?\s+(.+)$",
                     text)
    if match:
        return Quantity("all", 0, match.group(1), exceptions)
    match = re.match(r"^both(?: of)?(?: the| these| those)?\s+(.+)$", text)
    if match:
        return Quantity("both", 2, match.group(1), exceptions)
    match = re.match(rf"^(?:the |any )?{_NUMBER}(?: of)?(?: the| these| those)?\s+(.+)$", text)
    if match and match.group(1) not in ("one",) and float(_number(match.group(1))).is_integer():
        return Quantity("count", int(_number(match.group(1))), match.group(2), exceptions)
    match = re.match(r"^(?:one|any one|a single|any)(?: of)?(?: the| these| those)?\s+(.+)$", text)
    if match:
        return Quantity("any", 1, match.group(1), exceptions)
    match = re.match(r"^(?:a|an|some)\s+(.+)$", text)
    if match and not is_plural(match.group(1)):
        return Quantity("any", 1, match.group(1), exceptions)
    if is_plural(text):
        return Quantity("all", 0, text, exceptions)
    return Quantity("one", 1, text, exceptions)


def held_description(phrase: str) -> str | None:
    """Return what a phrase naming the held object says of it, or None when it names no held object.

    "what you are holding" and "the thing in your hand" say nothing of it (""); "the red cube you
    are holding" says "the red cube".
    """
    text = " ".join(phrase.lower().replace("\u2019", "'").split())
    match = _HELD.match(text)
    if match is None:
        return None
    words = (match.group("described") or match.group("noun") or "").strip()
    return "" if _GENERIC_HEAD.match(words) else words


def is_plural(description: str) -> bool:
    """Return whether the object described is plural ("the red cubes", "things left of the tray")."""
    words = re.findall(r"[a-z]+", description.lower())
    head = []
    for word in words:
        if word in {"in", "on", "left", "right", "behind", "near", "next", "beside", "inside", "that", "which",
                    "closest", "nearest", "farthest", "furthest", "except", "from", "to", "by", "of"}:
            break
        head.append(word)
    return any(w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3 and w not in
               {"this", "glass", "plus", "grass", "chess", "dice", "its", "yes"} for w in head[-2:]) \
        or (bool(head) and head[-1] in ("dice", "ones"))


def surface_only(description: str) -> bool:
    """Return whether a phrase names only the table or floor ("the table", "the desk")."""
    words = [w for w in re.findall(r"[a-z]+", description.lower()) if w not in ("the", "a", "an", "this", "that")]
    return bool(words) and all(w in SURFACE_WORDS for w in words)


def is_cancel(text: str) -> bool:
    """Return whether the text calls off a pending question ("never mind", "cancel")."""
    return _CANCEL.match(text.strip(" .!").lower()) is not None


def is_courtesy(text: str) -> bool:
    """Return whether the text is a greeting or a thank-you."""
    return _COURTESY.match(text.strip(" .!").lower()) is not None
