"""Delivery: messages rendered per channel, the outbox, apprise plugins."""
