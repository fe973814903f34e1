"""What the spatial relations mean geometrically: the tolerances of "in", "on" and "left of".

The critic judges relations in the map with these, and the scenarios' ground-truth checks judge the
simulated world with the same ones, so the robot never calls done what the evaluation calls failed
for a difference of margins.
"""

from __future__ import annotations

# An object counts as inside a container only if its centre is this far within the container's rim,
# so that an object balanced on the rim does not pass.
IN_XY_MARGIN_M = 0.005
# An object in a container may stick out of it (a cube leaning on the wall) by this much.
IN_TOP_SLACK_M = 0.02
# Resting contact leaves a small gap or overlap between AABBs (collision margins, settling).
ON_Z_TOL_M = 0.015
# Spatial relations need a clear separation so that side-by-side objects are not both left and right.
RELATION_MARGIN_M = 0.02
