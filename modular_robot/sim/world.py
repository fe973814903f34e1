"""A simulated world built from a scenario: objects, robots, cameras and ground truth."""

from __future__ import annotations

import functools

import pybullet

from modular_robot.scenarios.scenario import Disturbance, Scenario
from modular_robot.scenarios.world_state import ObjectState, RobotState, WorldState
from modular_robot.sim.bodies import create_object, place_body
from modular_robot.sim.camera import RgbdCamera, load_egl
from modular_robot.sim.robots import SimRobot

TIME_STEP = 1.0 / 240.0
_TABLETOP = (1.6, 1.8, 0.05)


class SimWorld:
    """PyBullet world in DIRECT mode; every call names its client.

    The stack reaches it only through the bridge node's hardware topics. `ground_truth()` is for
    the evaluator.
    """

    def __init__(self, scenario: Scenario, *, width: int = 640, height: int = 480, renderer: str = "auto",
                 time_step: float = TIME_STEP, solver_iterations: int = 50, mesh_detail: str = "low") -> None:
        self.scenario = scenario
        self.time_step = time_step
        self.steps = 0
        if renderer not in ("auto", "egl", "tiny"):
            raise ValueError(f"renderer must be auto, egl or tiny, got {renderer!r}")
        if renderer == "auto":
            renderer = auto_renderer()
        self.renderer = renderer
        self.client = pybullet.connect(pybullet.DIRECT)
        # The EGL plugin only draws bodies created after it is loaded: load it before building.
        if renderer == "egl" and not load_egl(self.client):
            pybullet.disconnect(self.client)
            raise RuntimeError("the EGL renderer plugin could not be loaded")
        pybullet.setGravity(0, 0, -9.81, physicsClientId=self.client)
        pybullet.setPhysicsEngineParameter(
            fixedTimeStep=time_step, numSolverIterations=solver_iterations, physicsClientId=self.client)
        self._build_support(scenario.robots[0].type)
        self.robots = [SimRobot(self.client, r.type, r.name, r.pose, scenario.camera, mesh_detail)
                       for r in scenario.robots]
        self.bodies: dict[str, int] = {}
        for spec in scenario.objects:
            self.bodies[spec.id] = create_object(self.client, spec)
        self.specs = {spec.id: spec for spec in scenario.objects}
        self.cameras = [RgbdCamera(self.client, width, height, r.camera.fov_deg, renderer) for r in self.robots]
        self.settle()

    def _build_support(self, robot_type: str) -> None:
        """Create what z = 0 rests on: a table top for the tabletop arm, a floor for mobile robots."""
        if robot_type == "panda_tabletop":
            half = [e / 2 for e in _TABLETOP]
            col = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
            vis = pybullet.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=(0.76, 0.6, 0.42, 1),
                                             physicsClientId=self.client)
            self.support = pybullet.createMultiBody(0, col, vis, [0.4, 0.0, -half[2]], physicsClientId=self.client)
        else:
            col = pybullet.createCollisionShape(pybullet.GEOM_PLANE, physicsClientId=self.client)
            # Renderers draw no planes: the floor is seen as a thin slab just under z = 0.
            vis = pybullet.createVisualShape(pybullet.GEOM_BOX, halfExtents=[15, 15, 0.005],
                                             visualFramePosition=[0, 0, -0.005], rgbaColor=(0.55, 0.55, 0.5, 1),
                                             physicsClientId=self.client)
            self.support = pybullet.createMultiBody(0, col, vis, physicsClientId=self.client)

    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since the world was built."""
        return self.steps * self.time_step

    @property
    def sim_time_ns(self) -> int:
        """Simulated time in integer nanoseconds, for message stamps."""
        return round(self.steps * self.time_step * 1e9)

    def settle(self, seconds: float = 0.5) -> None:
        """Let objects come to rest before the episode starts; sim time restarts at zero."""
        for _ in range(int(seconds / self.time_step)):
            self.step()
        self.steps = 0

    def step(self) -> None:
        """Advance physics by one time step, with every robot's controllers."""
        now = self.sim_time
        for robot in self.robots:
            robot.control(now, self.time_step)
        pybullet.stepSimulation(physicsClientId=self.client)
        self.steps += 1
        for robot in self.robots:
            robot.integrate_odometry(self.time_step)

    def render(self, index: int = 0):
        """Render robot `index`'s RGB-D camera: (rgb, depth) arrays."""
        return self.cameras[index].render(*self.robots[index].camera_optical_pose())

    def render_with_segmentation(self, index: int = 0):
        """Render robot `index`'s camera with the PyBullet body id of every pixel: (rgb, depth, ids)."""
        return self.cameras[index].render_with_segmentation(*self.robots[index].camera_optical_pose())

    def segment_labels(self) -> dict[int, dict[str, str | None]]:
        """Return scenario id, type and colour of every object by body id (ground truth: ablations only)."""
        return {body: {"id": object_id, "type": self.specs[object_id].type, "color": self.specs[object_id].color}
                for object_id, body in self.bodies.items()}

    def apply_disturbance(self, disturbance: Disturbance) -> None:
        """Move or remove an object as a scenario disturbance says."""
        body = self.bodies.get(disturbance.object)
        if body is None:
            return
        if disturbance.action == "remove":
            pybullet.removeBody(body, physicsClientId=self.client)
            del self.bodies[disturbance.object]
        else:
            place_body(self.client, body, disturbance.pose)

    def ground_truth(self, replies: list[list[str]] | None = None) -> WorldState:
        """Return the true state of every object and of the first robot (evaluator only)."""
        objects = {}
        for object_id, body in self.bodies.items():
            position, orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=self.client)
            lo, hi = pybullet.getAABB(body, physicsClientId=self.client)
            for link in range(pybullet.getNumJoints(body, physicsClientId=self.client)):
                llo, lhi = pybullet.getAABB(body, link, physicsClientId=self.client)
                lo = tuple(map(min, lo, llo))
                hi = tuple(map(max, hi, lhi))
            spec = self.specs[object_id]
            objects[object_id] = ObjectState(object_id, spec.type, spec.color, tuple(position), tuple(orientation),
                                             tuple(lo), tuple(hi))
        robot = self.robots[0]
        position, yaw = robot.ground_truth_base()
        return WorldState(objects, RobotState(position, yaw, robot.held_object(self.bodies)), replies or [])

    def close(self) -> None:
        """Disconnect the physics client."""
        if pybullet.isConnected(self.client):
            pybullet.disconnect(self.client)


def auto_renderer() -> str:
    """Return the renderer that "auto" stands for: "egl" where its plugin loads, else "tiny".

    A fixed rule, not a race: the two renderers draw different images (lighting, background), so a
    choice by which one drew a test frame faster made the same seed see different objects on a
    loaded machine, where TinyRenderer sometimes won. EGL is the faster one wherever it loads: on a
    GPU, and with Mesa's llvmpipe on 2 cores (640x480: about 30 against 80 ms a frame on the
    tabletop, 68 against 108 on the mobile manipulator's scene).

    The plugin is tried in a throwaway client, once per process and before any world holds it:
    closing an EGL client while another holds the plugin breaks the other's context.
    """
    return "egl" if _egl_loads() else "tiny"


@functools.cache
def _egl_loads() -> bool:
    client = pybullet.connect(pybullet.DIRECT)
    try:
        return load_egl(client)
    finally:
        pybullet.disconnect(client)
