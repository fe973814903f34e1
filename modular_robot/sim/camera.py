"""RGB-D rendering with PyBullet, with intrinsics that match the render projection exactly."""

from __future__ import annotations

import math
import pkgutil

import numpy as np
import pybullet

from modular_robot.core.camera import PinholeIntrinsics

NEAR = 0.05
FAR = 10.0
# OpenGL camera (looks along -z, y up) from the optical frame (looks along +z, y down).
_GL_FROM_OPTICAL = np.diag([1.0, -1.0, -1.0, 1.0])


def load_egl(client: int) -> bool:
    """Load the EGL renderer plugin into a client; return False when EGL is not available."""
    loader = pkgutil.get_loader("eglRenderer")
    if loader is None:
        return False
    plugin = pybullet.loadPlugin(loader.get_filename(), "_eglRendererPlugin", physicsClientId=client)
    return plugin >= 0


def intrinsics_for(width: int, height: int, fov_deg: float) -> PinholeIntrinsics:
    """Return pinhole intrinsics equal to PyBullet's FOV projection (vertical FOV, square pixels).

    Pixel centres sit at integer coordinates (ROS convention), so the principal point is at
    ((w - 1) / 2, (h - 1) / 2).
    """
    f = (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return PinholeIntrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


class RgbdCamera:
    """Renders colour and metric depth from an optical-frame pose."""

    def __init__(self, client: int, width: int, height: int, fov_deg: float, renderer: str) -> None:
        self.client = client
        self.width = width
        self.height = height
        self.intrinsics = intrinsics_for(width, height, fov_deg)
        self.renderer = renderer
        self._projection = pybullet.computeProjectionMatrixFOV(fov_deg, width / height, NEAR, FAR,
                                                                physicsClientId=client)
        self._renderer_flag = pybullet.ER_BULLET_HARDWARE_OPENGL if renderer == "egl" else pybullet.ER_TINY_RENDERER

    def render(self, position, orientation) -> tuple[np.ndarray, np.ndarray]:
        """Render from an optical-frame world pose.

        Returns:
            rgb (H, W, 3) uint8 and depth (H, W) float32 in metres along the optical axis,
            NaN where nothing was hit (REP-118).
        """
        rgb, depth, _ = self._render(position, orientation, pybullet.ER_NO_SEGMENTATION_MASK)
        return rgb, depth

    def render_with_segmentation(self, position, orientation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render as `render`, plus the (H, W) int32 PyBullet body id of every pixel (-1: none)."""
        rgb, depth, segmentation = self._render(position, orientation, 0)
        # Without the object-and-link flag PyBullet's mask holds body ids alone.
        return rgb, depth, np.asarray(segmentation, dtype=np.int32).reshape(self.height, self.width)

    def _render(self, position, orientation, flags: int):
        rotation = np.array(pybullet.getMatrixFromQuaternion(orientation)).reshape(3, 3)
        world_from_optical = np.eye(4)
        world_from_optical[:3, :3] = rotation
        world_from_optical[:3, 3] = position
        view = np.linalg.inv(world_from_optical @ _GL_FROM_OPTICAL)
        _, _, rgba, depth_buffer, segmentation = pybullet.getCameraImage(
            self.width, self.height, viewMatrix=view.T.reshape(-1).tolist(), projectionMatrix=self._projection,
            renderer=self._renderer_flag, flags=flags,
            # EGL casts shadows by default and TinyRenderer does not: keep both images alike.
            shadow=0, physicsClientId=self.client)
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)
        buffer = np.asarray(depth_buffer, dtype=np.float32).reshape(self.height, self.width)
        depth = (FAR * NEAR / (FAR - (FAR - NEAR) * buffer)).astype(np.float32)
        # Nothing hit: EGL leaves 1.0, TinyRenderer 0.99999994; no real surface is that near the far plane.
        depth[buffer >= np.float32(1.0 - 1e-6)] = np.nan
        return np.ascontiguousarray(rgba[:, :, :3]), depth, segmentation
