"""The wire grammar several layers check, defined once: RFC 9110 tokens, field values and
quoted strings, RFC 3986 hosts, and the RFC 6455 close codes a close frame may carry.

A leaf module (the standard library only), so the sans-I/O core, the HTTP layer, the client and
the krandog layer can all share it without depending on each other.
"""

from __future__ import annotations

import re

__all__ = [
    "FIELD_VALUE_FORBIDDEN",
    "FIELD_VALUE_FORBIDDEN_TEXT",
    "HOST",
    "QUOTED_STRING",
    "TOKEN_BYTES",
    "TOKEN_PATTERN",
    "TOKEN_TEXT",
    "close_code_is_sendable",
]

# RFC 9110 §5.6.2: token = 1*tchar.
TOKEN_PATTERN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN_TEXT = re.compile(TOKEN_PATTERN)
TOKEN_BYTES = re.compile(TOKEN_PATTERN.encode("ascii"))

# RFC 9110 §5.6.4: quoted-string, with quoted-pair escapes.
QUOTED_STRING = r'"(?:[^"\\]|\\.)*"'

# RFC 9110 §5.5: a field value holds VCHAR, obs-text, SP and HTAB; any other control byte (CR
# and LF above all) would let a sender split a message.
FIELD_VALUE_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
FIELD_VALUE_FORBIDDEN_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ], as in Host and absolute-form targets.
HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
    rb"|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)

# RFC 6455 §7.4.1/§7.4.2 plus the IANA-registered 1012-1014 may be sent; 1004-1006 and 1015 are
# reserved or mean "nothing was sent"; 3000-4999 belong to libraries and applications.
_SENDABLE_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def close_code_is_sendable(code: int) -> bool:
    """True for a code that may appear in a close frame on the wire."""
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999
