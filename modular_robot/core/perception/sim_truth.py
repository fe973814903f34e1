"""The sim_truth detector: objects from the simulator's segmentation, for ablations only.

It answers "how good would the stack be with perfect segmentation?"; its labels come from ground
truth. The perception node logs and reports on diagnostics whenever it is in use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modular_robot.core.camera import depth_to_points
from modular_robot.core.perception.geometry import box_from_points, size_class
from modular_robot.core.perception.types import CameraFrame, Detection

_MIN_PIXELS = 20


class SimTruthDetector:
    """Detects every labelled simulator segment with enough valid depth."""

    name = "sim_truth"

    def detect(self, frame: CameraFrame, prompts: Sequence[str] = ()) -> list[Detection]:
        """Return one detection per labelled segment in view (prompts are ignored)."""
        if frame.segmentation is None:
            raise ValueError("sim_truth needs the simulator's segmentation (sim_bridge publish_segmentation:=true)")
        if frame.segmentation.shape != frame.depth.shape:
            raise ValueError(f"segmentation {frame.segmentation.shape} and depth {frame.depth.shape} differ in size")
        points, index = depth_to_points(frame.depth, frame.intrinsics, return_index=True)
        if len(points) == 0:
            return []
        world = frame.world_from_camera.apply(points)
        segment_of_point = frame.segmentation.reshape(-1)[index]
        detections = []
        for segment, labels in frame.segment_labels.items():
            selected = segment_of_point == segment
            if selected.sum() < _MIN_PIXELS:
                continue
            centre, size, yaw = box_from_points(world[selected])
            rows, cols = np.divmod(index[selected], frame.intrinsics.width)
            attributes = tuple(a for a in (labels.get("color"), size_class(size)) if a)
            kind = labels["type"]
            detections.append(Detection(
                label=" ".join((*attributes[::-1], kind)), category=kind, attributes=attributes, score=1.0,
                bbox=(int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                      int(rows.max() - rows.min() + 1)),
                position=centre, size=size, yaw=yaw, color=labels.get("color")))
        return detections
