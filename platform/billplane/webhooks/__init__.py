"""Inbound provider webhooks: verified, stored once per event, applied asynchronously."""
