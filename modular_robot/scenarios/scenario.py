"""Load and validate scenario files (``sim/scenarios/*.yaml``).

The format is described in ARCHITECTURE.md, section "Scenario format". Loading is strict: every
problem raises :class:`ScenarioError` with a ``file:line: reason`` message, so that a typo in a
scenario fails at load time instead of silently producing a scenario that tests something else.
Predicates in ``expect`` are normalised to the form :mod:`modular_robot.scenarios.predicates` evaluates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import yaml

from modular_robot.core.colors import NAMED_COLORS
from modular_robot.core.robot_model import ROBOT_KINDS
from modular_robot.scenarios.predicates import PREDICATE_NAMES, ROBOT_ID

Size3 = tuple[float, float, float]

OBJECT_TYPES: tuple[str, ...] = ("cube", "cylinder", "sphere", "duck", "tray", "bowl", "table")
CAMERAS: tuple[str, ...] = ("fixed", "wrist")
DISTURBANCE_TRIGGERS: tuple[str, ...] = ("after_step", "time")
DISTURBANCE_ACTIONS: tuple[str, ...] = ("move", "remove")

_DEFAULT_SIZES: dict[str, float | Size3] = {
    "cube": 0.04,
    "cylinder": 0.04,
    "sphere": 0.04,
    "duck": 0.06,
    "tray": (0.24, 0.24, 0.05),
    "bowl": (0.16, 0.16, 0.06),
    "table": (0.6, 0.6, 0.4),
}
# A URDF's true extent is only known once loaded; this nominal size is what placement checks assume.
_URDF_DEFAULT_SIZE = 0.1
# Length : width : height of pybullet_data's duck_vhacd.obj standing upright, so that a duck of size s
# (its length) has a realistic box.
_DUCK_PROPORTIONS: Size3 = (1.0, 0.70, 0.94)
# Types whose size is one number: a box size would be a different shape.
_SCALAR_SIZE_TYPES = frozenset({"cylinder", "sphere", "duck"})

_TOP_LEVEL_KEYS = (
    "name", "category", "robot", "robots", "seed", "objects", "commands", "disturbances", "expect",
    "timeout_s", "camera",
)
_OBJECT_KEYS = ("id", "type", "color", "size", "height", "pose", "mass", "static")
_ROBOT_KEYS = ("name", "type", "pose")
_DISTURBANCE_KEYS = ("at", "step", "action", "object", "pose", "time_s")
_COUNT_KEYS = ("in", "type", "color", "n")
_REPLY_KEYS = ("contains_any", "command")
# A robot name becomes a ROS namespace, so it must be a valid ROS name token.
_ROS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DEFAULT_TIMEOUT_S = 120.0
# Sane bounds: no object of a scene is larger than this in any dimension (m), and everything is
# placed within the world's extent: x and y within +-WORLD_HALF_EXTENT_M of the robot's start (the
# mobile stacks map a 20 m square around it), bottoms from the floor up to MAX_ELEVATION_M.
MAX_OBJECT_SIZE_M = 2.0
WORLD_HALF_EXTENT_M = 10.0
MAX_ELEVATION_M = 2.0
_DEFAULT_CATEGORY = "uncategorized"


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why.

    Attributes:
        source: The file (or ``<string>``) the scenario came from.
        line: The 1-based line of the problem, or None when it concerns the whole file.
        reason: What is wrong and, where it helps, how to fix it.
    """

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {reason}")


class ObjectPose(NamedTuple):
    """World-frame placement of an object: z is the height of its bottom, yaw in radians."""

    x: float
    y: float
    z: float
    yaw: float


class BasePose(NamedTuple):
    """World-frame placement of a robot base, yaw in radians."""

    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scenario.

    Attributes:
        id: Unique id, used by predicates and disturbances.
        type: One of OBJECT_TYPES, or a pybullet_data URDF path (ending in ``.urdf``).
        color: One of the twelve named colours, or None to keep the model's own colours.
        size: Edge, diameter or duck length (m) when a number; full extent ``(x, y, z)`` otherwise.
        height: Height of a cylinder (m); None makes it as tall as wide.
        pose: Where the object starts.
        mass: Mass (kg), or None for the simulator's default for the type.
        static: Whether the object is fixed in place (tables are by default).
    """

    id: str
    type: str
    color: str | None
    size: float | Size3
    height: float | None
    pose: ObjectPose
    mass: float | None = None
    static: bool = False


@dataclass(frozen=True)
class RobotSpec:
    """One robot of a scenario.

    Attributes:
        name: ROS namespace of the robot; empty for the single robot of a ``robot:`` scenario.
        type: One of robot_model.ROBOT_KINDS.
        pose: Where the base starts.
    """

    name: str
    type: str
    pose: BasePose


@dataclass(frozen=True)
class Disturbance:
    """A change the simulator applies to the world during execution.

    Attributes:
        at: ``after_step`` (after the given plan step finishes) or ``time`` (at a sim time).
        step: 1-based plan step for ``after_step``, else None.
        action: ``move`` or ``remove``.
        object: Id of the object affected.
        pose: New pose for ``move``, else None.
        time_s: Sim time (s) for ``time``, else None.
    """

    at: str
    step: int | None
    action: str
    object: str
    pose: ObjectPose | None
    time_s: float | None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    Attributes:
        name: Scenario name.
        category: Free-text group for reports.
        robot: Robot type of the (first) robot.
        robots: Every robot; one unnamed robot at the origin for a ``robot:`` scenario.
        seed: Random seed of the episode.
        objects: Objects, in file order.
        commands: Chat commands, sent in order without reset.
        disturbances: Changes applied during execution.
        expect: Normalised predicates that must all hold at the end.
        timeout_s: Episode time limit (s).
        camera: ``fixed`` or ``wrist``.
        source: The file the scenario came from.
    """

    name: str
    category: str
    robot: str
    robots: list[RobotSpec]
    seed: int
    objects: list[ObjectSpec]
    commands: list[str]
    disturbances: list[Disturbance]
    expect: list[dict[str, Any]]
    timeout_s: float
    camera: str
    source: str


def is_urdf(object_type: str) -> bool:
    """Tell whether an object type names a URDF file rather than a built-in shape."""
    return object_type.endswith(".urdf")


def default_size(object_type: str) -> float | Size3:
    """Return the size an object of this type gets when its scenario gives none.

    Raises:
        ValueError: if the type is neither a built-in type nor a URDF path.
    """
    if is_urdf(object_type):
        return _URDF_DEFAULT_SIZE
    if object_type not in _DEFAULT_SIZES:
        raise ValueError(f"unknown object type {object_type!r}")
    return _DEFAULT_SIZES[object_type]


def object_extent(spec: ObjectSpec) -> Size3:
    """Return the full box extent ``(x, y, z)`` (m) of an object in its own frame.

    A number size means: cube edge; cylinder or sphere diameter (a cylinder is ``height`` tall, or as
    tall as wide); duck length, with the proportions of pybullet_data's duck; for trays, bowls and
    tables the footprint side, keeping the default height; for URDFs a nominal cube.
    """
    if not isinstance(spec.size, (int, float)):
        return spec.size
    size = float(spec.size)
    if spec.type == "cylinder":
        return (size, size, size if spec.height is None else spec.height)
    if spec.type == "duck":
        return tuple(size * ratio for ratio in _DUCK_PROPORTIONS)  # type: ignore[return-value]
    default = default_size(spec.type)
    if isinstance(default, tuple):
        return (size, size, default[2])
    return (size, size, size)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: if the file cannot be read or is not a valid scenario.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(source, None, f"cannot read the file: {error}") from error
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Validate a scenario given as YAML text.

    Args:
        text: The YAML document.
        source: Name used in error messages and kept in ``Scenario.source``.

    Raises:
        ScenarioError: if the text is not a valid scenario.
    """
    loader = _LineLoader(text)
    loader.source = source
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        raise ScenarioError(source, line, f"invalid YAML: {error.problem or error.context}") from error
    except yaml.YAMLError as error:
        raise ScenarioError(source, None, f"invalid YAML: {error}") from error
    finally:
        loader.dispose()
    return _Parser(source).scenario(document)


class _Map(dict):
    """A YAML mapping that remembers the lines of itself and of its keys."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Return the line of a key, or of the mapping when the key is absent."""
        return self.key_lines.get(key, self.line)


class _Seq(list):
    """A YAML sequence that remembers the lines of itself and of its items."""

    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records line numbers and rejects keys YAML reads as non-strings."""

    source: str = "<string>"


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_Map]:
    """Construct a _Map, refusing boolean, non-string and duplicate keys."""
    mapping = _Map()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    # Yield before filling, as SafeLoader does, so that recursive structures resolve.
    yield mapping
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node)
        if isinstance(key, bool):
            # YAML 1.1 reads on/off/yes/no as booleans; `on:` is a predicate name, so this bites.
            raise ScenarioError(
                loader.source, line,
                f"key {key_node.value} is read by YAML as the boolean {str(key).lower()}; "
                f"quote it: write '{key_node.value}':",
            )
        if not isinstance(key, str):
            raise ScenarioError(loader.source, line, f"keys must be strings, got {key!r}")
        if key in mapping:
            raise ScenarioError(loader.source, line, f"duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node)
        mapping.key_lines[key] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    """Construct a _Seq with the line of every item."""
    sequence = _Seq()
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield sequence
    sequence.extend(loader.construct_object(item) for item in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


class _Parser:
    """Turns a loaded YAML document into a Scenario, failing with file and line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.object_ids: set[str] = set()
        self.command_count = 0

    def fail(self, line: int | None, reason: str) -> NoReturn:
        """Raise a ScenarioError for this file."""
        raise ScenarioError(self.source, line, reason)

    def scenario(self, document: Any) -> Scenario:
        """Validate a whole document."""
        if document is None:
            self.fail(None, "the file is empty")
        if not isinstance(document, _Map):
            self.fail(
                getattr(document, "line", 1),
                "a scenario is a mapping of keys (name, robot, objects, commands, expect, ...)",
            )
        self.check_keys(document, _TOP_LEVEL_KEYS, "top-level key")
        name = self.text(document, "name")
        category = _DEFAULT_CATEGORY
        if "category" in document:
            category = self.text(document, "category")
        robots = self.robots(document)
        seed = 0
        if "seed" in document:
            seed = self.integer(document["seed"], document.line_of("seed"), "seed", minimum=0)
        objects = [self.object(item, line) for item, line in self.items(document, "objects")]
        commands = self.commands_of(document)
        self.command_count = len(commands)
        disturbances = [self.disturbance(item, line) for item, line in self.items(document, "disturbances")]
        expect = [self.predicate(item, line) for item, line in self.items(document, "expect")]
        if not expect:
            self.fail(document.line_of("expect"), "expect must list at least one predicate")
        timeout_s = _DEFAULT_TIMEOUT_S
        if "timeout_s" in document:
            timeout_s = self.number(
                document["timeout_s"], document.line_of("timeout_s"), "timeout_s", positive=True
            )
        camera = document.get("camera", "fixed")
        if camera not in CAMERAS:
            self.fail(document.line_of("camera"), f"unknown camera {camera!r} (known: {', '.join(CAMERAS)})")
        return Scenario(
            name=name, category=category, robot=robots[0].type, robots=robots, seed=seed,
            objects=objects, commands=commands, disturbances=disturbances, expect=expect,
            timeout_s=timeout_s, camera=camera, source=self.source,
        )

    def check_keys(self, mapping: _Map, allowed: tuple[str, ...], what: str) -> None:
        """Reject keys outside ``allowed``."""
        for key in mapping:
            if key not in allowed:
                self.fail(mapping.line_of(key), f"unknown {what} {key!r} (known: {', '.join(allowed)})")

    def items(self, document: _Map, key: str) -> list[tuple[Any, int]]:
        """Return the items of an optional list-valued key with their lines."""
        value = document.get(key)
        if value is None:
            return []
        if not isinstance(value, _Seq):
            self.fail(document.line_of(key), f"{key} must be a list")
        return list(zip(value, value.item_lines))

    def text(self, mapping: _Map, key: str) -> str:
        """Return a required non-empty string value."""
        value = mapping.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(mapping.line_of(key), f"{key} must be a non-empty string, got {value!r}")
        return value

    def number(
        self, value: Any, line: int, what: str, *, positive: bool = False, non_negative: bool = False
    ) -> float:
        """Return a finite number, optionally > 0 or >= 0."""
        if isinstance(value, str) and _is_float_text(value):
            # YAML 1.1 reads 1e308 (no dot, no sign in the exponent) as text, not as a number.
            self.fail(line, f"{what} must be a number, got the text {value!r}: YAML reads an exponent "
                            f"without a dot as text; write {float(value):.1e}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(line, f"{what} must be a number, got {value!r}")
        if not math.isfinite(value):
            self.fail(line, f"{what} must be finite, got {value}")
        if positive and value <= 0:
            self.fail(line, f"{what} must be positive, got {value}")
        if non_negative and value < 0:
            self.fail(line, f"{what} must not be negative, got {value}")
        return float(value)

    def bounded(self, value: Any, line: int, what: str, low: float, high: float, *, open_low: bool = False) -> float:
        """Return a number within [low, high] (or (low, high] with ``open_low``)."""
        number = self.number(value, line, what)
        if number > high or number < low or (open_low and number == low):
            interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
            self.fail(line, f"{what} must be within {interval} m, got {number:g}")
        return number

    def pose(self, value: Any, line: int, what: str) -> ObjectPose:
        """Return an object pose [x, y, z, yaw] placed within the world's extent."""
        x, y, z, yaw = self.numbers(value, line, what, "x, y, z, yaw")
        for name, coordinate in (("x", x), ("y", y)):
            self.bounded(coordinate, line, f"{what} {name}", -WORLD_HALF_EXTENT_M, WORLD_HALF_EXTENT_M)
        self.bounded(z, line, f"{what} z (the height of its bottom)", 0.0, MAX_ELEVATION_M)
        return ObjectPose(x, y, z, yaw)

    def integer(self, value: Any, line: int, what: str, *, minimum: int) -> int:
        """Return an integer no less than ``minimum``."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(line, f"{what} must be an integer, got {value!r}")
        if value < minimum:
            self.fail(line, f"{what} must be at least {minimum}, got {value}")
        return value

    def numbers(self, value: Any, line: int, what: str, names: str) -> list[float]:
        """Return a list of finite numbers with one entry per comma-separated name in ``names``."""
        count = len(names.split(","))
        if not isinstance(value, list) or len(value) != count:
            self.fail(line, f"{what} must be [{names}], got {value!r}")
        return [self.number(item, line, what) for item in value]

    def mapping(self, value: Any, line: int, what: str) -> _Map:
        """Return a mapping or fail."""
        if not isinstance(value, _Map):
            self.fail(line, f"{what} must be a mapping, got {value!r}")
        return value

    def robots(self, document: _Map) -> list[RobotSpec]:
        """Return the robots of ``robot:`` or ``robots:``."""
        if "robot" in document and "robots" in document:
            self.fail(document.line_of("robots"), "give either robot: or robots:, not both")
        if "robot" in document:
            robot_type = self.robot_type(document.get("robot"), document.line_of("robot"))
            return [RobotSpec(name="", type=robot_type, pose=BasePose(0.0, 0.0, 0.0))]
        if "robots" not in document:
            self.fail(document.line, f"missing robot: (one of {', '.join(ROBOT_KINDS)}) or robots:")
        items = self.items(document, "robots")
        if not items:
            self.fail(document.line_of("robots"), "robots must list at least one robot")
        robots: list[RobotSpec] = []
        for item, item_line in items:
            entry = self.mapping(item, item_line, "a robot")
            self.check_keys(entry, _ROBOT_KEYS, "robot key")
            name = self.text(entry, "name")
            if not _ROS_NAME.fullmatch(name):
                self.fail(entry.line_of("name"), f"robot name {name!r} is not a valid ROS namespace token")
            if any(robot.name == name for robot in robots):
                self.fail(entry.line_of("name"), f"duplicate robot name {name!r}")
            robot_type = self.robot_type(entry.get("type"), entry.line_of("type"))
            pose = BasePose(0.0, 0.0, 0.0)
            if "pose" in entry:
                values = self.numbers(entry["pose"], entry.line_of("pose"), "robot pose", "x, y, yaw")
                for axis, coordinate in zip("xy", values):
                    self.bounded(coordinate, entry.line_of("pose"), f"robot pose {axis}",
                                 -WORLD_HALF_EXTENT_M, WORLD_HALF_EXTENT_M)
                pose = BasePose(*values)
            robots.append(RobotSpec(name=name, type=robot_type, pose=pose))
        return robots

    def robot_type(self, value: Any, line: int) -> str:
        """Return a known robot type."""
        if value not in ROBOT_KINDS:
            self.fail(line, f"unknown robot type {value!r} (known: {', '.join(ROBOT_KINDS)})")
        return value

    def object(self, item: Any, line: int) -> ObjectSpec:
        """Return one validated object."""
        entry = self.mapping(item, line, "an object")
        self.check_keys(entry, _OBJECT_KEYS, "object key")
        object_id = self.text(entry, "id")
        if object_id == ROBOT_ID:
            self.fail(entry.line_of("id"), f"the id {ROBOT_ID!r} is reserved for the robot's base")
        if object_id in self.object_ids:
            self.fail(entry.line_of("id"), f"duplicate object id {object_id!r}")
        self.object_ids.add(object_id)
        object_type = entry.get("type")
        if not isinstance(object_type, str) or not (object_type in OBJECT_TYPES or is_urdf(object_type)):
            self.fail(
                entry.line_of("type"),
                f"unknown object type {object_type!r} (known: {', '.join(OBJECT_TYPES)}, or a .urdf path)",
            )
        color = entry.get("color")
        if color is not None:
            self.color(color, entry.line_of("color"))
        size = self.size(entry, object_type)
        height = None
        if "height" in entry:
            if object_type != "cylinder":
                self.fail(entry.line_of("height"), f"height applies to cylinders only, not to {object_type}")
            height = self.bounded(entry["height"], entry.line_of("height"), "height", 0.0, MAX_OBJECT_SIZE_M,
                                  open_low=True)
        if "pose" not in entry:
            self.fail(entry.line, f"object {object_id!r} needs a pose: [x, y, z, yaw]")
        pose = self.pose(entry["pose"], entry.line_of("pose"), "pose")
        mass = None
        if "mass" in entry:
            mass = self.number(entry["mass"], entry.line_of("mass"), "mass", positive=True)
        static = entry.get("static", object_type == "table")
        if not isinstance(static, bool):
            self.fail(entry.line_of("static"), f"static must be true or false, got {static!r}")
        return ObjectSpec(
            id=object_id, type=object_type, color=color, size=size, height=height, pose=pose,
            mass=mass, static=static,
        )

    def color(self, value: Any, line: int) -> str:
        """Return a named colour."""
        if value not in NAMED_COLORS:
            self.fail(line, f"unknown colour {value!r} (known: {', '.join(NAMED_COLORS)})")
        return value

    def size(self, entry: _Map, object_type: str) -> float | Size3:
        """Return the object's size, or the type's default."""
        if "size" not in entry:
            return default_size(object_type)
        value, line = entry["size"], entry.line_of("size")
        if isinstance(value, list):
            if object_type in _SCALAR_SIZE_TYPES:
                self.fail(line, f"the size of a {object_type} is one number, got {value!r}")
            if len(value) != 3:
                self.fail(line, f"size must be a number or [x, y, z], got {value!r}")
            x, y, z = (self.bounded(item, line, "size", 0.0, MAX_OBJECT_SIZE_M, open_low=True) for item in value)
            return (x, y, z)
        return self.bounded(value, line, "size", 0.0, MAX_OBJECT_SIZE_M, open_low=True)

    def commands_of(self, document: _Map) -> list[str]:
        """Return the command strings; none for scenarios that check the world alone."""
        items = self.items(document, "commands")
        for command, line in items:
            if not isinstance(command, str) or not command.strip():
                self.fail(line, f"a command must be a non-empty string, got {command!r}")
        return [command for command, _ in items]

    def object_id(self, value: Any, line: int, what: str, *, allow_robot: bool = False) -> str:
        """Return the id of a scenario object (or ``robot`` when allowed)."""
        if allow_robot and value == ROBOT_ID:
            return value
        if not isinstance(value, str) or value not in self.object_ids:
            self.fail(line, f"{what} names unknown object {value!r}")
        return value

    def disturbance(self, item: Any, line: int) -> Disturbance:
        """Return one validated disturbance."""
        entry = self.mapping(item, line, "a disturbance")
        self.check_keys(entry, _DISTURBANCE_KEYS, "disturbance key")
        at = entry.get("at")
        if at not in DISTURBANCE_TRIGGERS:
            self.fail(
                entry.line_of("at"),
                f"disturbance at must be one of {', '.join(DISTURBANCE_TRIGGERS)}, got {at!r}",
            )
        # Each trigger takes exactly its own parameter, so a stray one is a mistake, not a no-op.
        needed, unwanted = ("step", "time_s") if at == "after_step" else ("time_s", "step")
        if needed not in entry:
            self.fail(entry.line, f"a disturbance at {at} needs {needed}")
        if unwanted in entry:
            self.fail(entry.line_of(unwanted), f"a disturbance at {at} takes {needed}, not {unwanted}")
        step = time_s = None
        if at == "after_step":
            step = self.integer(entry["step"], entry.line_of("step"), "step", minimum=1)
        else:
            time_s = self.number(entry["time_s"], entry.line_of("time_s"), "time_s", non_negative=True)
        action = entry.get("action")
        if action not in DISTURBANCE_ACTIONS:
            self.fail(
                entry.line_of("action"),
                f"disturbance action must be one of {', '.join(DISTURBANCE_ACTIONS)}, got {action!r}",
            )
        target = self.object_id(entry.get("object"), entry.line_of("object"), "disturbance")
        pose = None
        if action == "move":
            if "pose" not in entry:
                self.fail(entry.line, "a move disturbance needs pose: [x, y, z, yaw]")
            pose = self.pose(entry["pose"], entry.line_of("pose"), "pose")
        elif "pose" in entry:
            self.fail(entry.line_of("pose"), "a remove disturbance takes no pose")
        return Disturbance(at=at, step=step, action=action, object=target, pose=pose, time_s=time_s)

    def predicate(self, item: Any, line: int) -> dict[str, Any]:
        """Return a predicate in normalised form."""
        entry = self.mapping(item, line, "a predicate")
        if len(entry) != 1:
            self.fail(entry.line, f"a predicate has exactly one key, got {sorted(entry) or 'none'}")
        ((name, args),) = entry.items()
        line = entry.line_of(name)
        if name not in PREDICATE_NAMES:
            self.fail(line, f"unknown predicate {name!r} (known: {', '.join(sorted(PREDICATE_NAMES))})")
        if name == "not":
            return {"not": self.predicate(args, line)}
        if name in ("in", "on", "left_of", "right_of", "in_front_of", "behind"):
            a, b = self.arguments(args, line, name, "obj", "obj")
            return {name: [self.object_id(a, line, name), self.object_id(b, line, name)]}
        if name == "near":
            a, b, distance = self.arguments(args, line, name, "a", "b", "dist_m")
            return {name: [
                self.object_id(a, line, name, allow_robot=True),
                self.object_id(b, line, name, allow_robot=True),
                self.number(distance, line, "near distance", positive=True),
            ]}
        if name == "at":
            entity, target, tolerance = self.arguments(args, line, name, "robot", "[x, y]", "tol_m")
            return {name: [
                self.object_id(entity, line, name, allow_robot=True),
                self.numbers(target, line, "at target", "x, y"),
                self.number(tolerance, line, "at tolerance", positive=True),
            ]}
        if name in ("holding", "upright"):
            (target,) = [args] if isinstance(args, str) else self.arguments(args, line, name, "obj")
            return {name: self.object_id(target, line, name)}
        if name == "unmoved":
            targets = [args] if isinstance(args, str) else args
            if not isinstance(targets, list) or not targets:
                self.fail(line, f"unmoved takes [obj, ...], got {args!r}")
            return {name: [self.object_id(target, line, name) for target in targets]}
        if name == "count":
            return {name: self.count(args, line)}
        return {name: self.reply(args, line)}

    def arguments(self, args: Any, line: int, name: str, *parameters: str) -> list[Any]:
        """Return a predicate's argument list after checking it has one entry per parameter."""
        if not isinstance(args, list) or len(args) != len(parameters):
            got = f"{len(args)} arguments" if isinstance(args, list) else repr(args)
            self.fail(
                line, f"{name} takes [{', '.join(parameters)}] ({len(parameters)} arguments), got {got}"
            )
        return args

    def count(self, args: Any, line: int) -> dict[str, Any]:
        """Return a normalised ``count`` argument mapping."""
        entry = self.mapping(args, line, "count")
        self.check_keys(entry, _COUNT_KEYS, "count key")
        if "in" not in entry or "n" not in entry:
            self.fail(line, "count needs in: container and n: number")
        object_type = entry.get("type")
        if object_type is not None and not (
            isinstance(object_type, str) and (object_type in OBJECT_TYPES or is_urdf(object_type))
        ):
            self.fail(entry.line_of("type"), f"count names unknown object type {object_type!r}")
        color = entry.get("color")
        if color is not None:
            self.color(color, entry.line_of("color"))
        return {
            "in": self.object_id(entry["in"], entry.line_of("in"), "count"),
            "type": object_type,
            "color": color,
            "n": self.integer(entry["n"], entry.line_of("n"), "count n", minimum=0),
        }

    def reply(self, args: Any, line: int) -> dict[str, Any]:
        """Return a normalised ``reply`` argument mapping, with the command index made explicit."""
        entry = self.mapping(args, line, "reply")
        self.check_keys(entry, _REPLY_KEYS, "reply key")
        words = entry.get("contains_any")
        words = [words] if isinstance(words, (str, bool)) else words
        if isinstance(words, list) and any(isinstance(word, bool) for word in words):
            # Reply words are often yes/no, which YAML 1.1 reads as booleans unless quoted.
            self.fail(
                entry.line_of("contains_any"),
                "reply contains_any holds a boolean: YAML reads unquoted yes/no/on/off as booleans; "
                "quote the words, e.g. ['yes', 'no']",
            )
        if not isinstance(words, list) or not words or not all(
            isinstance(word, str) and word.strip() for word in words
        ):
            self.fail(entry.line_of("contains_any"), f"reply contains_any must list words, got {words!r}")
        command = self.command_count
        if command == 0:
            self.fail(entry.line_of("contains_any"), "a reply predicate needs at least one command")
        if "command" in entry:
            command = self.integer(entry["command"], entry.line_of("command"), "reply command", minimum=1)
            if command > self.command_count:
                self.fail(
                    entry.line_of("command"),
                    f"reply command {command} is past the last of {self.command_count} commands",
                )
        return {"contains_any": list(words), "command": command}
