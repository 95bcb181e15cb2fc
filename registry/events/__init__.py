"""Webhooks (distribution's `notifications`), durable: every event is written to a queue in the
storage backend before the request that caused it is answered, and delivered from there."""
