"""Webhooks to the client system: endpoints, fan-out of events, signed deliveries with retries."""
