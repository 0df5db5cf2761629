"""The fake's fault encodings (``POST /_fake/fault`` bodies), in one place."""

from __future__ import annotations

from typing import Any, Dict


def stall() -> Dict[str, Any]:
    """Read the request, never answer."""
    return {"kind": "stall"}


def server_error(status: int) -> Dict[str, Any]:
    """Answer ``status`` with a Smartcar-shaped body."""
    return {"kind": "status", "status": status, "body": '{"error":"server_error"}'}


def rate_limited(retry_after: str) -> Dict[str, Any]:
    """429 with ``Retry-After``."""
    return {"kind": "rateLimited", "retryAfter": retry_after}
