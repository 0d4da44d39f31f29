"""Pages of the docs site generated from the code at build time (docs/gen/hooks.py calls these).

Generated, not written by hand, so that they cannot drift: the API reference comes from the app's
OpenAPI document and the configuration reference from `billplane.settings.ENVIRONMENT`.
"""
