"""Navigation for a differential-drive base on a 2D occupancy grid: costmap, planner, approach, follower.

Modules: ``geometry`` (the grid, footprints, boxes, gaps), ``path_planning`` (costmap, A*, approach
poses), ``following`` (pure pursuit and the obstacle stop).
"""
