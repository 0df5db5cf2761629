"""Exceptions: one class per ``error.data.kind`` of the agent's protocol, under :class:`AgentError`."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type


class AgentError(Exception):
    """An error answered by the agent, or a failure to talk to it.

    ``code`` is the JSON-RPC error code, ``kind`` the protocol's ``error.data.kind`` string and ``data``
    the whole ``error.data`` object (for errors from Smartcar: ``status``, ``error``, ``description``,
    ``requestId``, ...). Never holds a secret, token or code: the agent never puts one in an error.
    """

    def __init__(
        self,
        message: str,
        code: Optional[int] = None,
        kind: Optional[str] = None,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.data: Dict[str, Any] = dict(data or {})

    @property
    def status(self) -> Optional[int]:
        """The HTTP status Smartcar answered, when the error came from Smartcar."""
        value = self.data.get("status")
        return value if isinstance(value, int) else None

    @property
    def request_id(self) -> Optional[str]:
        """Smartcar's request id (quote it to Smartcar's support), when it sent one."""
        value = self.data.get("requestId")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, kind={self.kind!r})"


class ConfigurationError(AgentError):
    """The agent is missing configuration; the message names the variable to set."""


class InvalidClient(AgentError):
    """Smartcar refused the client id / secret."""


class InvalidGrant(AgentError):
    """The authorization code is bad, used or expired, or the redirect URI does not match."""


class ReauthRequired(AgentError):
    """Smartcar rejected the key's refresh token: the vehicle owner must go through Connect again."""

    @property
    def connect_url(self) -> Optional[str]:
        """A Connect URL whose state remembers the key: send the owner there."""
        value = self.data.get("connectURL")
        return value if isinstance(value, str) else None


class RateLimited(AgentError):
    """Smartcar answered 429."""

    @property
    def retry_after(self) -> Optional[float]:
        """Seconds to wait before asking again, when Smartcar said."""
        value = self.data.get("retryAfter")
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None


class UpstreamUnavailable(AgentError):
    """Network failure, timeout or 5xx from Smartcar, after the agent's retries."""

    @property
    def may_have_reached_server(self) -> bool:
        """For a code exchange: whether the request may have reached Smartcar (the code may be spent)."""
        return self.data.get("mayHaveReachedServer") is True


class UpstreamError(AgentError):
    """Anything else Smartcar answered."""


class StateMismatch(AgentError):
    """The redirect's ``state`` is missing, unknown to this agent, already used or expired."""


class ConnectError(AgentError):
    """Connect redirected with ``error=...`` (``access_denied``, ``no_vehicles``, ...)."""

    @property
    def error(self) -> Optional[str]:
        """Connect's ``error`` parameter."""
        value = self.data.get("error")
        return value if isinstance(value, str) else None

    @property
    def description(self) -> Optional[str]:
        """Connect's ``error_description`` parameter."""
        value = self.data.get("description")
        return value if isinstance(value, str) else None


class UnknownKey(AgentError):
    """No tokens are stored for the key."""

    @property
    def connect_url(self) -> Optional[str]:
        """A Connect URL to send the vehicle owner to (its state remembers the key)."""
        value = self.data.get("connectURL")
        return value if isinstance(value, str) else None


class StorageError(AgentError):
    """The agent's token store failed (tokens are kept in memory and written again)."""


class PortUnavailable(AgentError):
    """``connect`` could not listen on the redirect URI's port (another program holds it)."""

    @property
    def redirect_uri(self) -> Optional[str]:
        value = self.data.get("redirectURI")
        return value if isinstance(value, str) else None


class ConnectTimeout(AgentError):
    """``connect``'s redirect did not come within its timeout."""

    @property
    def redirect_uri(self) -> Optional[str]:
        value = self.data.get("redirectURI")
        return value if isinstance(value, str) else None


class ProtocolError(AgentError):
    """A JSON-RPC level error (-32700 parse, -32600 invalid request, -32601 unknown method,
    -32602 invalid params, -32603 internal, -32800 cancelled), or an answer this client cannot read."""


class AgentNotFound(AgentError, FileNotFoundError):
    """The agent executable is not where the client was told to look."""


class AgentDied(AgentError):
    """The agent exited (or could not be started) before answering.

    ``exit_code`` is its exit status (negative: killed by that signal), ``stderr_tail`` its last lines of
    standard error. The next call starts a new agent.
    """

    def __init__(self, message: str, exit_code: Optional[int] = None, stderr_tail: str = "") -> None:
        super().__init__(message, kind="agentDied")
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


_BY_KIND: Dict[str, Type[AgentError]] = {
    "configurationError": ConfigurationError,
    "invalidClient": InvalidClient,
    "invalidGrant": InvalidGrant,
    "reauthRequired": ReauthRequired,
    "rateLimited": RateLimited,
    "upstreamUnavailable": UpstreamUnavailable,
    "upstreamError": UpstreamError,
    "stateMismatch": StateMismatch,
    "connectError": ConnectError,
    "unknownKey": UnknownKey,
    "storageError": StorageError,
    "portUnavailable": PortUnavailable,
    "connectTimeout": ConnectTimeout,
}


def error_from_response(error: Any) -> AgentError:
    """The exception for a JSON-RPC ``error`` object."""
    if not isinstance(error, dict):
        return ProtocolError(f"the agent answered an unreadable error: {error!r}")
    code = error.get("code")
    message = error.get("message")
    data = error.get("data")
    if not isinstance(message, str):
        message = "the agent answered an error without a message"
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    data_map: Dict[str, Any] = data if isinstance(data, dict) else {}
    if data is not None and not isinstance(data, dict):
        data_map = {"value": data}
    kind = data_map.get("kind")
    kind = kind if isinstance(kind, str) else None
    cls = _BY_KIND.get(kind or "")
    if cls is None:
        # -32000 .. -32999 holds JSON-RPC's own codes (-32700, -326xx) and the LSP's -32800 (cancelled).
        cls = ProtocolError if code is not None and -32999 <= code <= -32000 else AgentError
    return cls(message, code, kind, data_map)
