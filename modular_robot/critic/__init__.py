"""Critic rules: whether a step's preconditions hold (pre) and whether its effects happened (post).

The critic judges from the world, never from a skill's word: object boxes observed by perception in
fresh camera frames (world frame), the semantic map, and proprioception (finger joints, the grasp
point and base pose from TF, arm joints). It never confirms an effect it has not observed: without
fresh evidence a post verdict is "not ok".

Post verdicts that rest on perception are judged frame by frame; the confidence is the fraction of
frames that support the effect (a frame that supports it only with the map's word for a target it
cannot see counts `MAP_FALLBACK_WEIGHT`), and "ok" needs a majority of supporting frames and at
least one. Relations are judged as `scenarios.predicates` judges them on ground truth, with the
tolerances of `core.relations` (centre over the
target's footprint, bottom against its top, robot-frame separations with the same margins), but on
observed boxes.

What perception reports of an object is not its ground-truth box, so the rules read boxes
defensively:

- identity is colour (where both sides name one) and category, where the geometric detector's coarse
  shapes may stand for each other (it flips between them on partial views and merged clusters); an
  observation at the last known place of another object of the same kind is that other object's;
- a box may reach down to the support below it (the geometric detector extends boxes to the plane an
  object stands on, also when the object floats above it, or two stacked objects merge into one
  cluster), so an object's bottom is read as its observed top minus its known height when the box
  is taller than the object;
- a held object is partly hidden by the fingers and the self-filter, so "at the gripper" means
  the grasp point lies within a few centimetres of the observed box, not of its centre.

Pure: no rclpy, no simulator. Reachability, which needs the arm's kinematics, comes in as a callable.

Modules: `evidence` (what the critic judges from, verdicts, who is who), `pre` (pre verdicts),
`post` (post verdicts).
"""

