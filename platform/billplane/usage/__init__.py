"""Metered usage: batched ingestion of usage records, their listing and per-period summaries."""
