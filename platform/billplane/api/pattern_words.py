"""Words for the regular expressions request fields must match.

msgspec refuses a value with "Expected `str` matching regex '<the pattern>'": exact, but a regex
with doubled backslashes tells a client little. A pattern declared through ``worded`` is refused
with its words instead (``in_words``, applied to every field error).
"""

from __future__ import annotations

import re

_WORDS: dict[str, str] = {}
_REFUSED = re.compile(r"Expected `str` matching regex ('(?:[^'\\]|\\.)*')")


def worded(pattern: str, words: str) -> str:
    """``pattern``, for a ``msgspec.Meta``; a value it refuses is told ``words`` ("must be ...")."""
    _WORDS[repr(pattern)] = words
    return pattern


def in_words(message: str) -> str:
    """``message`` with a known pattern's refusal replaced by its words; anything else as it is."""
    return _REFUSED.sub(lambda found: _WORDS.get(found.group(1), found.group(0)), message)
