"""What the pub/sub layer raises: one base class, so an app can catch every broker failure."""

from __future__ import annotations

__all__ = ["BrokerError", "PresenceError", "PublishError", "SubscriberOverflow"]


class BrokerError(Exception):
    """The broadcast backend could not do what was asked (unreachable, misconfigured)."""


class PublishError(BrokerError):
    """A message was not handed to the backend: nobody received it from this publish.

    Raised at the call when the backend is known to be down, or set on the returned future when
    the write failed. Never silent: a failed publish is always one of these.
    """


class PresenceError(BrokerError):
    """A presence operation (join, leave, members) could not reach the backend."""


class SubscriberOverflow(BrokerError):
    """A subscription with ``overflow="close"`` fell ``maxsize`` messages behind and was closed."""
