"""The agent's results as small frozen dataclasses, with timezone-aware ``datetime`` fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Mapping, Optional, Union

from .errors import ProtocolError

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (``2026-11-25T10:00:00Z``) as an aware ``datetime`` in UTC.

    Written out rather than ``datetime.fromisoformat`` because that only takes ``Z`` from Python 3.11 on.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    microsecond = int((fraction + "000000")[:6])
    offset = timedelta(0)
    if match.group(9):
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        if match.group(9) == "-":
            offset = -offset
    leap = second == 60  # a leap second: datetime cannot hold it, so take the next instant
    value = datetime(year, month, day, hour, minute, 59 if leap else second, microsecond, tzinfo=timezone(offset))
    if leap:
        value += timedelta(seconds=1)
    return value.astimezone(timezone.utc)


def format_time(value: Union[datetime, str]) -> str:
    """A time for the agent: an aware ``datetime`` in RFC 3339 UTC, or a string passed as it is."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or an RFC 3339 string, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime is ambiguous: give it a timezone (e.g. tzinfo=timezone.utc)")
    utc = value.astimezone(timezone.utc)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(result: Mapping[str, Any], name: str, method: str) -> Any:
    if name not in result:
        raise ProtocolError(f"the agent's {method} result has no {name!r}")
    return result[name]


def _string(result: Mapping[str, Any], name: str, method: str) -> str:
    value = _field(result, name, method)
    if not isinstance(value, str):
        raise ProtocolError(f"the agent's {method} result has a {name!r} that is not a string")
    return value


def _optional_string(result: Mapping[str, Any], name: str, method: str) -> Optional[str]:
    value = result.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"the agent's {method} result has a {name!r} that is not a string")
    return value


def _int(result: Mapping[str, Any], name: str, method: str) -> int:
    value = _field(result, name, method)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"the agent's {method} result has a {name!r} that is not a number")
    return int(value)


def _parse_time(text: str, name: str, method: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise ProtocolError(f"the agent's {method} result has a {name!r} that is not an RFC 3339 time") from None


def _time(result: Mapping[str, Any], name: str, method: str) -> datetime:
    return _parse_time(_string(result, name, method), name, method)


def _optional_time(result: Mapping[str, Any], name: str, method: str) -> Optional[datetime]:
    text = _optional_string(result, name, method)
    return None if text is None else _parse_time(text, name, method)


def _object(result: Any, method: str) -> Mapping[str, Any]:
    if not isinstance(result, dict):
        raise ProtocolError(f"the agent's {method} result is not an object")
    return result


@dataclass(frozen=True)
class Token:
    """A token summary: an access token valid for at least what was asked (never a refresh token)."""

    key: str
    access_token: str = field(repr=False)
    token_type: str
    expires_at: datetime
    expires_in: int
    refresh_expires_at: Optional[datetime]

    @property
    def authorization(self) -> str:
        """The value of an ``Authorization`` header: ``Bearer <access token>``."""
        return f"{self.token_type or 'Bearer'} {self.access_token}"

    @classmethod
    def from_result(cls, result: Any, method: str = "token") -> Token:
        r = _object(result, method)
        return cls(
            key=_string(r, "key", method),
            access_token=_string(r, "accessToken", method),
            token_type=_optional_string(r, "tokenType", method) or "Bearer",
            expires_at=_time(r, "expiresAt", method),
            expires_in=_int(r, "expiresIn", method),
            refresh_expires_at=_optional_time(r, "refreshExpiresAt", method),
        )


@dataclass(frozen=True)
class AppToken:
    """An application token (client-credentials grant)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: datetime
    expires_in: int

    @property
    def authorization(self) -> str:
        """The value of an ``Authorization`` header: ``Bearer <access token>``."""
        return f"{self.token_type or 'Bearer'} {self.access_token}"

    @classmethod
    def from_result(cls, result: Any) -> AppToken:
        r = _object(result, "appToken")
        return cls(
            access_token=_string(r, "accessToken", "appToken"),
            token_type=_optional_string(r, "tokenType", "appToken") or "Bearer",
            expires_at=_time(r, "expiresAt", "appToken"),
            expires_in=_int(r, "expiresIn", "appToken"),
        )


@dataclass(frozen=True)
class TokenInfo:
    """One stored key as ``listTokens`` describes it (tokens themselves are never listed).

    ``state`` is ``valid``, ``expired`` (the next ``get_token`` refreshes it) or ``reauthRequired``.
    """

    key: str
    state: str
    expires_at: Optional[datetime]
    refresh_expires_at: Optional[datetime]
    generation: Optional[int]
    last_refreshed_at: Optional[datetime]

    @classmethod
    def from_result(cls, result: Any) -> TokenInfo:
        r = _object(result, "listTokens")
        generation = r.get("generation")
        return cls(
            key=_string(r, "key", "listTokens"),
            state=_string(r, "state", "listTokens"),
            expires_at=_optional_time(r, "expiresAt", "listTokens"),
            refresh_expires_at=_optional_time(r, "refreshExpiresAt", "listTokens"),
            generation=generation if isinstance(generation, int) and not isinstance(generation, bool) else None,
            last_refreshed_at=_optional_time(r, "lastRefreshedAt", "listTokens"),
        )


@dataclass(frozen=True)
class ConnectURL:
    """A Connect URL and the state the agent remembers for it."""

    url: str
    state: str

    def __str__(self) -> str:
        return self.url

    @classmethod
    def from_result(cls, result: Any) -> ConnectURL:
        r = _object(result, "buildConnectURL")
        return cls(url=_string(r, "url", "buildConnectURL"), state=_string(r, "state", "buildConnectURL"))


@dataclass(frozen=True)
class AgentStatus:
    """What ``status`` says of the agent; ``raw`` is the whole result."""

    version: Optional[str]
    uptime_seconds: Optional[float]
    requests_served: Optional[int]
    in_flight: Optional[int]
    stored_keys: Optional[int]
    peak_upstream_concurrency: Optional[int]
    configuration: Dict[str, Any]
    raw: Dict[str, Any] = field(repr=False)

    @classmethod
    def from_result(cls, result: Any) -> AgentStatus:
        r = dict(_object(result, "status"))

        def number(name: str) -> Optional[int]:
            value = r.get(name)
            return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        uptime = r.get("uptimeSeconds")
        configuration = r.get("configuration")
        version = r.get("version")
        return cls(
            version=version if isinstance(version, str) else None,
            uptime_seconds=float(uptime) if isinstance(uptime, (int, float)) and not isinstance(uptime, bool) else None,
            requests_served=number("requestsServed"),
            in_flight=number("inFlight"),
            stored_keys=number("storedKeys"),
            peak_upstream_concurrency=number("peakUpstreamConcurrency"),
            configuration=dict(configuration) if isinstance(configuration, dict) else {},
            raw=r,
        )
