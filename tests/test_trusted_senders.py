"""Which publishers' messages pass: the owner's, in order; others' and unnamed ones' past the wait are rejected."""

from modular_robot.core.trusted_senders import UNKNOWN_NODE_NAME, Endpoint, TrustedSenders

SHIELD = Endpoint(b"s" * 16, "safety_shield", "/robot1")
IMPOSTOR = Endpoint(b"i" * 16, "impostor", "/robot1")
OTHER_ROBOTS_SHIELD = Endpoint(b"o" * 16, "safety_shield", "/robot2")


def _senders(**kwargs) -> TrustedSenders:
    senders = TrustedSenders("safety_shield", "/robot1", **kwargs)
    senders.learn([SHIELD, IMPOSTOR, OTHER_ROBOTS_SHIELD])
    return senders


def test_only_the_owner_in_its_own_namespace_is_trusted():
    senders = _senders()
    assert senders.trusted(SHIELD.gid) is True
    assert senders.trusted(IMPOSTOR.gid) is False
    assert senders.trusted(OTHER_ROBOTS_SHIELD.gid) is False
    assert senders.trusted(b"n" * 16) is None
    assert senders.owner_node == "/robot1/safety_shield"


def test_the_owners_messages_pass_in_order_and_others_are_rejected_with_their_sender():
    senders = _senders()
    for gid, item in ((SHIELD.gid, "a"), (IMPOSTOR.gid, "forged"), (SHIELD.gid, "b"), (OTHER_ROBOTS_SHIELD.gid, "c")):
        assert senders.admit(gid, item, 0.0) is None
    passed, rejected = senders.release(0.0)
    assert passed == ["a", "b"]
    assert [(r.sender, r.item) for r in rejected] == [("/robot1/impostor", "forged"), ("/robot2/safety_shield", "c")]
    assert senders.held == 0


def test_a_publisher_the_graph_names_late_is_waited_for_within_the_bound():
    senders = _senders(max_wait_s=1.0)
    late = Endpoint(b"l" * 16, UNKNOWN_NODE_NAME, "_NODE_NAMESPACE_UNKNOWN_")
    senders.learn([late])
    senders.admit(late.gid, "first", 0.0)
    senders.admit(late.gid, "second", 0.5)
    assert senders.unnamed()
    assert senders.release(0.9) == ([], [])
    senders.learn([Endpoint(late.gid, "safety_shield", "/robot1")])
    assert not senders.unnamed()
    assert senders.release(0.95) == (["first", "second"], [])


def test_a_publisher_never_named_is_rejected_after_the_bound():
    senders = _senders(max_wait_s=1.0)
    senders.admit(b"n" * 16, "early", 0.0)
    senders.admit(b"n" * 16, "later", 0.8)
    passed, rejected = senders.release(1.01)
    assert passed == [] and [r.item for r in rejected] == ["early"]
    assert rejected[0].sender == "a publisher the graph does not name"
    assert senders.held == 1
    passed, rejected = senders.release(1.9)
    assert [r.item for r in rejected] == ["later"] and senders.held == 0


def test_memory_is_bounded_under_a_flood():
    senders = TrustedSenders("safety_shield", "/", max_held=3, max_known=5)
    results = [senders.admit(bytes([k]) * 16, k, 0.0) for k in range(5)]
    assert results[:3] == [None] * 3 and [r.item for r in results[3:]] == [3, 4]
    assert senders.held == 3
    senders.learn([Endpoint(bytes([k]) * 16, f"node{k}", "/") for k in range(20)])
    assert senders.trusted(bytes([0]) * 16) is None and senders.trusted(bytes([19]) * 16) is False
