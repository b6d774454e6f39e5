"""What both terminals share: configuration, event envelope, durable outbox, MQTT link, lifecycle."""

__version__ = "0.1.0"
