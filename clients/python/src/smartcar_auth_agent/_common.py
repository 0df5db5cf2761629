"""What the sync and async clients share: finding the agent, framing, request params, exit descriptions."""

from __future__ import annotations

import collections
import json
import os
import shlex
import shutil
import signal
import sys
import webbrowser
from datetime import datetime
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import AgentNotFound, ProtocolError, error_from_response
from .types import format_time

AGENT_NAME = "smartcar-auth-agent"
CLIENT_NAME = "smartcar-auth-agent-python"
CLIENT_VERSION = "0.1.0"
STDERR_TAIL_LINES = 20

FlagValue = Union[str, bool, int, float]
Time = Union[datetime, str]
#: ``connect``'s hook for the Connect URL, called once the agent listens for the redirect.
UrlHook = Callable[[str], Any]

#: The notification that hands ``connect``'s caller the Connect URL to open.
CONNECT_URL_NOTIFICATION = "connectURL"
#: How long ``connect`` waits for the redirect unless told (the agent's default).
CONNECT_TIMEOUT = 300.0


def find_agent(path: Optional[str]) -> str:
    """The agent's path: ``path``, else ``$SMARTCAR_AUTH_AGENT``, else ``smartcar-auth-agent`` on ``PATH``."""
    if path is None:
        path = os.environ.get("SMARTCAR_AUTH_AGENT") or None
    if path is not None:
        path = os.fspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise AgentNotFound(f"the agent {path!r} is not an executable file")
        return path
    found = shutil.which(AGENT_NAME)
    if found is None:
        raise AgentNotFound(f"{AGENT_NAME} is not on PATH; install it, or pass its path or set SMARTCAR_AUTH_AGENT")
    return found


def agent_command(path: Optional[str], args: Optional[Sequence[str]]) -> List[str]:
    """The command line: the agent and ``args``, else the words of ``$SMARTCAR_AUTH_AGENT_ARGS``."""
    if args is None:
        args = shlex.split(os.environ.get("SMARTCAR_AUTH_AGENT_ARGS", ""))
    return [find_agent(path), *(os.fspath(a) for a in args)]


def agent_environment(env: Optional[Mapping[str, Optional[str]]]) -> Dict[str, str]:
    """This process's environment with ``env`` laid over it (a None value removes the variable)."""
    merged = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def encode_message(message: Mapping[str, Any]) -> bytes:
    """One message in Content-Length framing."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def content_length(header_lines: Sequence[bytes]) -> Optional[int]:
    """The ``Content-Length`` of a header block (names are case-insensitive)."""
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def describe_exit(code: Optional[int]) -> str:
    """How a process ended, for a person: "exited with code 1", "was killed by SIGKILL"."""
    if code is None:
        return "is gone"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class StderrTail:
    """The last lines the agent wrote to stderr, for error messages."""

    def __init__(self) -> None:
        self._lines: Deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def add(self, raw: bytes) -> str:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        self._lines.append(line)
        return line

    def text(self) -> str:
        return "\n".join(self._lines)


def died_message(pid: Optional[int], code: Optional[int], tail: str, when: str) -> str:
    """Why a call failed with AgentDied: which agent, how it ended, and what it said last."""
    message = f"{AGENT_NAME} (pid {pid}) {describe_exit(code)} {when}"
    if tail:
        message += "; the end of its stderr:\n" + tail
    return message


def _drop_none(params: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v is not False}


def initialize_params(notifications: bool) -> Dict[str, Any]:
    return {
        "processId": os.getpid(),
        "clientInfo": {"name": CLIENT_NAME, "version": CLIENT_VERSION},
        "notifications": notifications,
    }


def get_token_params(
    key: str, min_validity: Optional[int], force_refresh: bool, rejected_token: Optional[str] = None
) -> Dict[str, Any]:
    return _drop_none(
        {"key": key, "minValidity": min_validity, "forceRefresh": force_refresh, "rejectedToken": rejected_token}
    )


def exchange_code_params(
    code: str, key: Optional[str], redirect_uri: Optional[str], flags: Optional[Mapping[str, FlagValue]]
) -> Dict[str, Any]:
    return _drop_none({"code": code, "key": key, "redirectURI": redirect_uri, "flags": dict(flags) if flags else None})


def handle_redirect_params(url: str, key: Optional[str]) -> Dict[str, Any]:
    return _drop_none({"url": url, "key": key})


def connect_url_params(
    scope: Union[str, Sequence[str], None],
    redirect_uri: Optional[str],
    mode: Optional[str],
    force_prompt: bool,
    state: Optional[str],
    make: Optional[str],
    single_select: bool,
    single_select_vin: Optional[str],
    flags: Optional[Mapping[str, FlagValue]],
    user: Optional[str],
    key: Optional[str],
) -> Dict[str, Any]:
    scopes = scope.split() if isinstance(scope, str) else (list(scope) if scope is not None else None)
    return _drop_none(
        {
            "scope": scopes,
            "redirectURI": redirect_uri,
            "mode": mode,
            "forcePrompt": force_prompt,
            "state": state,
            "make": make,
            "singleSelect": single_select,
            "singleSelectVIN": single_select_vin,
            "flags": dict(flags) if flags else None,
            "user": user,
            "key": key,
        }
    )


def connect_params(
    key: str,
    scope: Union[str, Sequence[str], None],
    redirect_uri: Optional[str],
    mode: Optional[str],
    force_prompt: bool,
    make: Optional[str],
    single_select: bool,
    single_select_vin: Optional[str],
    flags: Optional[Mapping[str, FlagValue]],
    user: Optional[str],
    timeout: Optional[float],
) -> Dict[str, Any]:
    params = connect_url_params(
        scope, redirect_uri, mode, force_prompt, None, make, single_select, single_select_vin, flags, user, key
    )
    return _drop_none({**params, "timeout": timeout})


def connect_call_timeout(call_timeout: Optional[float], wait: Optional[float]) -> Optional[float]:
    """The bound of a ``connect`` call: the client's per-call timeout, but never shorter than the wait."""
    if call_timeout is None:
        return None
    return max(call_timeout, (wait or CONNECT_TIMEOUT) + 30)


def show_connect_url(url: str) -> None:
    """``connect``'s default hook: prints the URL on stderr, and opens it in a browser when one can show it
    (``$BROWSER`` is set, a display is there, or on macOS and Windows), never a text browser in this terminal."""
    print(f"Open this URL in a browser to connect the vehicle:\n  {url}", file=sys.stderr, flush=True)
    graphical = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32")
    if os.environ.get("BROWSER") or graphical:
        try:
            webbrowser.open(url)
        except webbrowser.Error:
            pass


def app_token_params(force_refresh: bool) -> Dict[str, Any]:
    return _drop_none({"forceRefresh": force_refresh})


def store_token_params(
    key: str,
    access_token: str,
    refresh_token: str,
    expires_at: Time,
    refresh_expires_at: Optional[Time],
    scope: Optional[str],
) -> Dict[str, Any]:
    return _drop_none(
        {
            "key": key,
            "accessToken": access_token,
            "refreshToken": refresh_token,
            "expiresAt": format_time(expires_at),
            "refreshExpiresAt": None if refresh_expires_at is None else format_time(refresh_expires_at),
            "scope": scope,
        }
    )


def forgot(result: Any) -> bool:
    return isinstance(result, dict) and result.get("existed") is True


def token_list(result: Any) -> List[Any]:
    tokens = result.get("tokens") if isinstance(result, dict) else None
    if not isinstance(tokens, list):
        raise ProtocolError("the agent's listTokens result has no 'tokens' list")
    return tokens


def split_response(message: Any) -> Tuple[Optional[Any], bool]:
    """``(id, is_response)`` of a decoded message."""
    if isinstance(message, dict) and ("result" in message or "error" in message) and "method" not in message:
        return message.get("id"), True
    return None, False


def result_of(response: Mapping[str, Any]) -> Any:
    """A response's ``result``, or its ``error`` raised as the matching exception."""
    if response.get("error") is not None:
        raise error_from_response(response["error"])
    return response.get("result")


def decode_message(body: bytes) -> Any:
    """A message's JSON, or None when it is not JSON (logged by the caller)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
