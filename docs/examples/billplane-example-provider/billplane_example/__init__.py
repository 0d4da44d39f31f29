"""A billplane provider plugin for Example Pay, a fictional payment API: an example to copy."""
