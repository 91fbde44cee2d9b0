"""Outbound webhooks: audit records become signed events in a durable outbox, delivered with retries."""
