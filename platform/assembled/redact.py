"""Credentials out of what people and logs see: a URL's password (``postgresql://u:pw@host``,
``http://u:pw@host``) becomes ``***`` in every terminal line, MLflow tag and page link; the
URL itself still goes, whole, to the library that connects with it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; anything not a URL unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
