"""How the semantic map associates, confirms and forgets objects: its parameters."""

from __future__ import annotations

from dataclasses import dataclass

from modular_robot.core.gripper import HOLD_DISTANCE_M


@dataclass
class SemanticMapConfig:
    """Tuning of association, confirmation, removal and change reporting.

    Attributes:
        gate_distance_m: Centre distance always accepted for association, plus half the larger
            horizontal extent of the two boxes (a partly seen tray's centre wanders more).
        min_iou: Box overlap (axis-aligned IoU) that associates whatever the centre distance.
        jump_distance_m: A match farther than this (or a quarter of the object's extent) from the
            estimate is a possible move rather than noise: it does not enter the average.
        jump_frames: Consecutive such jumps after which the pose snaps to the new detection.
        min_alpha: Floor of the running-average weight, so that slow drift is still followed.
        min_observations: Detections before a tentative object is confirmed (published).
        tentative_ttl_s: A tentative object not detected for this long is dropped.
        tentative_max_misses: In-view misses that drop a tentative object.
        max_misses: Consecutive in-view misses that remove a confirmed object (10 at 15 Hz: 0.7 s).
        move_frames: Detections of a new candidate, and in-view misses of a compatible confirmed
            object, after which the object is moved to the candidate (keeping its id).
        hit_gain: Fraction of the remaining doubt a detection (scaled by its score) removes.
        miss_decay: Factor applied to confidence on each in-view miss.
        label_merge_similarity: Text similarity above which different categories may associate.
        shape_flip_iou: Box overlap above which two different coarse shapes (SHAPES) associate.
        merge_distance_m: Compatible objects whose centres come closer than this become one.
        merge_iou: Compatible objects whose boxes overlap more than this become one.
        image_margin_px: An object's box must project this far inside the image to count as visible.
        min_range_m: Nearer than this along the optical axis, an object does not count as visible.
        max_range_m: Farther than this, an object does not count as visible (detectors fade).
        occlusion_margin_m: The depth image must be nearer than the object's front by more than
            this for the object to count as hidden.
        change_position_m: Position change that makes an update worth publishing.
        change_size_m: Extent change that makes an update worth publishing.
        change_yaw_rad: Yaw change that makes an update worth publishing.
        held_distance_m: An object whose box comes this close to a grasp point while the fingers
            are closed on it is held.
        grasp_closing_m: Fingers that closed by at least this much over the last second grasp
            what they are closed on; fingers that stay or open grasp nothing (opening them off
            one cube stacked on another does not grasp the one below).
    """

    gate_distance_m: float = 0.06
    min_iou: float = 0.2
    jump_distance_m: float = 0.03
    jump_frames: int = 2
    min_alpha: float = 0.2
    min_observations: int = 3
    tentative_ttl_s: float = 2.0
    tentative_max_misses: int = 2
    max_misses: int = 10
    move_frames: int = 2
    hit_gain: float = 0.3
    miss_decay: float = 0.85
    label_merge_similarity: float = 0.6
    # From the side, the geometric detector may call a sphere or a duck by another shape; those
    # boxes overlap by 0.35 (median) between viewpoints, while different objects of one colour in
    # one frame never overlapped (benchmarks/perception_merge_eval.py).
    shape_flip_iou: float = 0.2
    merge_distance_m: float = 0.02
    merge_iou: float = 0.5
    image_margin_px: int = 10
    min_range_m: float = 0.1
    max_range_m: float = 3.0
    occlusion_margin_m: float = 0.05
    change_position_m: float = 0.005
    change_size_m: float = 0.005
    change_yaw_rad: float = 0.05
    held_distance_m: float = HOLD_DISTANCE_M
    grasp_closing_m: float = 0.005

    def __post_init__(self) -> None:
        for name in ("jump_frames", "min_observations", "tentative_max_misses", "max_misses", "move_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.min_alpha <= 1.0:
            raise ValueError(f"min_alpha must be in (0, 1], got {self.min_alpha}")
        if not 0.0 < self.hit_gain <= 1.0 or not 0.0 <= self.miss_decay <= 1.0:
            raise ValueError("hit_gain must be in (0, 1] and miss_decay in [0, 1]")
