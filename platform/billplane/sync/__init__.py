"""Crash-safe provider sync: an outbox written with each local change, performed by job-queue workers."""
