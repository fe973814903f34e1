"""The base class of the stack's nodes: an rclpy Node that can leave out what only outside tools use."""

from __future__ import annotations

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.type_description_service import START_TYPE_DESCRIPTION_SERVICE_PARAM


class StackNode(Node):
    """An rclpy Node that, with ``introspection=False``, leaves out the entities only outside tools use.

    Those are the parameter services and the type description service (what ``ros2 param`` and
    ``ros2 topic`` call) and the default QoS-event handlers of publishers and subscriptions (which
    log "incompatible QoS" warnings); event callbacks a caller passes are kept. rclpy's executors
    walk every entity in Python at every wake-up. With a whole stack on one executor (lockstep: the
    evaluator, tests, benchmarks) these were 206 of its 250 entities and cost a quarter of a
    scenario's CPU time, while nothing outside the process can call them there. Nodes launched on
    a robot keep them (the default): they are how people inspect and tune a live graph.

    Args:
        node_name: As for `rclpy.node.Node`.
        introspection: False leaves the entities above out.
        **kwargs: Passed to `rclpy.node.Node` (context, cli_args, parameter_overrides, ...).
    """

    def __init__(self, node_name: str, *, introspection: bool = True, **kwargs) -> None:
        # Set before Node.__init__, which creates the parameter-event publisher and the clock subscription.
        self._introspection = introspection
        if not introspection:
            kwargs["start_parameter_services"] = False
            kwargs["parameter_overrides"] = [*(kwargs.get("parameter_overrides") or []),
                                             Parameter(START_TYPE_DESCRIPTION_SERVICE_PARAM, value=False)]
        super().__init__(node_name, **kwargs)

    @property
    def introspection(self) -> bool:
        """Whether this node has parameter services and default QoS-event handlers."""
        return self._introspection

    def create_publisher(self, *args, event_callbacks: PublisherEventCallbacks | None = None, **kwargs):
        if event_callbacks is None and not self._introspection:
            event_callbacks = PublisherEventCallbacks(use_default_callbacks=False)
        return super().create_publisher(*args, event_callbacks=event_callbacks, **kwargs)

    def create_subscription(self, *args, event_callbacks: SubscriptionEventCallbacks | None = None, **kwargs):
        if event_callbacks is None and not self._introspection:
            event_callbacks = SubscriptionEventCallbacks(use_default_callbacks=False)
        return super().create_subscription(*args, event_callbacks=event_callbacks, **kwargs)
