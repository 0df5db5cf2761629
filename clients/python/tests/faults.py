"""The fake's fault encodings (``POST /_fake/fault`` bodies; see Sources/FakeSmartcar/Fault.swift)."""

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


def teapot() -> Dict[str, Any]:
    """An answer the agent has no special meaning for (418, OAuth-shaped)."""
    return {"kind": "status", "status": 418, "body": '{"error":"teapot","error_description":"I am a teapot"}'}


def drop_after_handling() -> Dict[str, Any]:
    """Handle the request (a code is spent), then hang up without answering."""
    return {"kind": "dropAfterHandling"}
