"""DependencyWatch: a node the running task depends on that leaves the graph is lost for that task."""

from modular_robot.core.planning.dependencies import DependencyWatch

NAMES = ("critic", "safety shield")


def test_a_dropped_count_is_lost_for_the_task_even_once_the_node_is_back():
    watch = DependencyWatch(NAMES)
    watch.begin({"critic": 1, "safety shield": 1})
    assert watch.update({"critic": 1, "safety shield": 1}) == []
    assert watch.update({"critic": 0, "safety shield": 1}) == ["critic"]
    # Restarted: still lost for this task, and reported once.
    assert watch.update({"critic": 1, "safety shield": 1}) == []
    assert watch.lost == ["critic"]
    assert watch.update({"critic": 1, "safety shield": 0}) == ["safety shield"]
    assert watch.lost == ["critic", "safety shield"]


def test_only_a_drop_counts_and_nothing_is_lost_between_tasks():
    watch = DependencyWatch(NAMES)
    # No task: nothing is followed.
    assert watch.update({"critic": 0, "safety shield": 0}) == []
    # Absent from the start (a stack without perception, say): not lost; one that joins then leaves is.
    watch.begin({"critic": 0, "safety shield": 2})
    assert watch.update({"critic": 1, "safety shield": 3}) == []
    assert watch.update({"critic": 0, "safety shield": 2}) == ["critic", "safety shield"]
    watch.end()
    assert watch.lost == []
    watch.begin({"critic": 1, "safety shield": 1})
    assert watch.lost == []
