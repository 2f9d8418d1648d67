"""Delivery states of one channel of a record, as stored and reported."""

from __future__ import annotations

import enum


class DeliveryState(enum.StrEnum):
    """What became of an invitation after the relay or provider took it.

    Stored in ``records.email_delivery`` / ``records.sms_delivery``; the contract's
    ``credbatch.batches.v1.DeliveryState`` has the same names with its prefix.
    """

    ACCEPTED = "ACCEPTED"  # the relay or provider took it; nothing heard since
    DELIVERED = "DELIVERED"  # a receipt: the recipient's system has it
    DEFERRED = "DEFERRED"  # a soft bounce (4.x.x): not delivered now, may be later
    BOUNCED = "BOUNCED"  # a hard bounce (5.x.x), or an SMS the carrier could not deliver
    FAILED = "FAILED"  # the SMS provider gave up on the message
