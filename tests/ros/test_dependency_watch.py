"""DependencyWatch: a node the running task depends on that leaves the graph is lost for that task."""

from modular_robot.planning.dependencies import DependencyWatch

NAMES = ("critic", "safety shield")


def test_a_lost_endpoint_is_lost_for_the_task_even_once_the_node_is_back():
    watch = DependencyWatch(NAMES)
    watch.begin({"critic": {b"c1"}, "safety shield": {b"s1"}})
    assert watch.update({"critic": {b"c1"}, "safety shield": {b"s1"}}) == []
    assert watch.update({"critic": set(), "safety shield": {b"s1"}}) == ["critic"]
    # Restarted: still lost for this task, and reported once.
    assert watch.update({"critic": {b"c2"}, "safety shield": {b"s1"}}) == []
    assert watch.lost == ["critic"]
    assert watch.update({"critic": {b"c2"}, "safety shield": set()}) == ["safety shield"]
    assert watch.lost == ["critic", "safety shield"]


def test_a_restart_whose_new_process_appears_as_the_old_one_goes_is_still_seen():
    # A count (1, then 1) would miss it: the killed critic's lease ran out as its successor registered.
    watch = DependencyWatch(NAMES)
    watch.begin({"critic": {b"c1"}, "safety shield": {b"s1"}})
    assert watch.update({"critic": {b"c2"}, "safety shield": {b"s1"}}) == ["critic"]


def test_only_a_lost_endpoint_counts_and_nothing_is_lost_between_tasks():
    watch = DependencyWatch(NAMES)
    # No task: nothing is followed.
    assert watch.update({"critic": set(), "safety shield": set()}) == []
    # Absent from the start (a stack without perception, say): not lost; one that joins then leaves is.
    watch.begin({"critic": set(), "safety shield": {b"s1", b"s2"}})
    assert watch.update({"critic": {b"c1"}, "safety shield": {b"s1", b"s2", b"s3"}}) == []
    assert watch.update({"critic": set(), "safety shield": {b"s1", b"s3"}}) == ["critic", "safety shield"]
    watch.end()
    assert watch.lost == []
    watch.begin({"critic": {b"c1"}, "safety shield": {b"s1"}})
    assert watch.lost == []
