"""Encryption at rest for secrets billplane must read back (tenants' provider credentials).

``keys``: the key ring from ``BILLPLANE_ENCRYPTION_KEYS`` (or one key derived from
``BILLPLANE_SECRET_KEY``); ``box``: AES-GCM sealing under the ring's current key, opened under
whichever key sealed it, so keys can be rotated without downtime.
"""
