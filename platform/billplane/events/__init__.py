"""Events: every state change of a tenant's objects, listed at /v1/events and sent to webhook endpoints."""
