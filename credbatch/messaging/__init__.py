"""Messaging kernel: RabbitMQ topology, confirming publisher and trace headers."""

from credbatch.messaging.publisher import (
    CONTENT_TYPE,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishError,
)
from credbatch.messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_QUEUE,
    DEAD_ROUTING_KEY,
    DELIVERY_LIMIT,
    EXCHANGE,
    PARKED_QUEUE,
    RETRY_EXCHANGE,
    RETRY_QUEUE_PREFIX,
    WORK_QUEUE,
    WORK_ROUTING_KEY,
    Topology,
    TopologyMismatchError,
    connect,
    declare_topology,
    retry_queue_for,
    retry_queue_names,
)

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_QUEUE",
    "DEAD_ROUTING_KEY",
    "DELIVERY_LIMIT",
    "EXCHANGE",
    "PARKED_QUEUE",
    "RETRY_EXCHANGE",
    "RETRY_QUEUE_PREFIX",
    "WORK_QUEUE",
    "WORK_ROUTING_KEY",
    "ConfirmingPublisher",
    "OutgoingMessage",
    "PublishError",
    "Topology",
    "TopologyMismatchError",
    "connect",
    "declare_topology",
    "retry_queue_for",
    "retry_queue_names",
]
