"""Subscriptions of customers to plans, and the usage reported against them."""
