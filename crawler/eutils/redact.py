"""The one place the NCBI API key is taken out of any text: URLs, log lines, exception messages.

Every secret the client is given is registered here; `redact` replaces each registered value and
any `api_key=…` parameter (in a URL, a form body or a log line) with `<redacted>`, so a key that
reached a message by some path we did not foresee is still removed.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "<redacted>"
_PARAM = re.compile(r"(api[_-]?key[\"']?\s*[=:]\s*[\"']?)([^&\s\"',;)}]+)", re.IGNORECASE)
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a value that must never appear in any text we emit."""
    if secret:
        with _lock:
            _secrets.add(secret)


def redact(text: object) -> str:
    """`text` as a string with every registered secret and every api_key value replaced."""
    out = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, REDACTED)
    return _PARAM.sub(lambda m: m.group(1) + REDACTED, out)


class RedactFilter(logging.Filter):
    """Logging filter: formats the record's message and redacts it before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def install(logger: logging.Logger | str = "crawler") -> None:
    """Attach the filter to a logger (idempotent)."""
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    if not any(isinstance(f, RedactFilter) for f in log.filters):
        log.addFilter(RedactFilter())
