"""Python client of smartcar-auth-agent, the sidecar that owns Smartcar OAuth tokens.

``AuthAgent`` (threads) and ``AsyncAuthAgent`` (asyncio) spawn the agent and speak its JSON-RPC
protocol; every error the agent answers raises a subclass of ``AgentError``.
"""

from .aio import AsyncAuthAgent
from .auth import BearerAuth
from .client import AuthAgent
from .errors import (
    AgentDied,
    AgentError,
    AgentNotFound,
    ConfigurationError,
    ConnectError,
    ConnectTimeout,
    InvalidClient,
    InvalidGrant,
    PortUnavailable,
    ProtocolError,
    RateLimited,
    ReauthRequired,
    StateMismatch,
    StorageError,
    UnknownKey,
    UpstreamError,
    UpstreamUnavailable,
)
from .types import AgentStatus, AppToken, ConnectURL, Token, TokenInfo

__version__ = "0.1.0"

__all__ = [
    "AgentDied",
    "AgentError",
    "AgentNotFound",
    "AgentStatus",
    "AppToken",
    "AsyncAuthAgent",
    "AuthAgent",
    "BearerAuth",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectURL",
    "InvalidClient",
    "InvalidGrant",
    "PortUnavailable",
    "ProtocolError",
    "RateLimited",
    "ReauthRequired",
    "StateMismatch",
    "StorageError",
    "Token",
    "TokenInfo",
    "UnknownKey",
    "UpstreamError",
    "UpstreamUnavailable",
]
