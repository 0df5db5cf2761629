"""``BearerAuth``: puts a fresh access token on each request of ``requests`` or ``httpx`` and, after a 401,
retries once with the token the agent's compare-and-refresh gives. Neither library is a dependency."""

from __future__ import annotations

import inspect
from typing import Any, AsyncGenerator, Generator, Optional

try:  # httpx is optional: without it BearerAuth is a plain callable, which is all requests needs
    import httpx

    _AuthBase: Any = httpx.Auth
except ImportError:  # pragma: no cover - exercised where httpx is not installed
    _AuthBase = object

#: The status an API answers to an access token it no longer accepts.
UNAUTHORIZED = 401


class BearerAuth(_AuthBase):  # type: ignore[misc]
    """``requests.get(url, auth=BearerAuth(agent, "my-car"))`` or ``httpx.Client(auth=BearerAuth(agent, "my-car"))``.

    Asks the agent for the key's token on every request (the agent answers from memory and refreshes when
    needed). When the API answers 401, the request is sent once more with the token the agent gives for
    ``get_token(key, rejected_token=...)``: a refresh if the rejected token is still the key's (once however
    many requests report it), else the newer token. If the agent still has the rejected token, or the retry
    gets 401 too, that answer is returned as it is.

    ``agent`` is an :class:`~smartcar_auth_agent.AuthAgent` for ``requests`` and ``httpx.Client``, an
    :class:`~smartcar_auth_agent.AsyncAuthAgent` (or an ``AuthAgent``, which blocks the loop) for
    ``httpx.AsyncClient``.
    """

    # httpx: read a streamed request body first, so the retry can send it again.
    requires_request_body = True

    def __init__(self, agent: Any, key: str, min_validity: Optional[int] = None) -> None:
        self.agent = agent
        self.key = key
        self.min_validity = min_validity

    # -- requests -----------------------------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        token = self.agent.get_token(self.key, self.min_validity)
        request.headers["Authorization"] = token.authorization
        if hasattr(request, "register_hook"):
            request.register_hook("response", self._retry_after_401)
        return request

    def _retry_after_401(self, response: Any, **send_options: Any) -> Any:
        """A ``requests`` response hook: re-sends the prepared request once with the replacing token."""
        if response.status_code != UNAUTHORIZED:
            return response
        rejected = _bearer(response.request.headers.get("Authorization"))
        if rejected is None:
            return response
        token = self.agent.get_token(self.key, self.min_validity, rejected_token=rejected)
        if token.access_token == rejected:
            return response
        retry = response.request.copy()
        if retry.body is not None and not isinstance(retry.body, (bytes, str)):
            from requests.utils import rewind_body  # requests is there: it called this hook

            rewind_body(retry)
        # Once: the retry's own 401 goes back to the caller (copy() shares the hooks, so copy them first).
        retry.hooks = {name: list(hooks) for name, hooks in retry.hooks.items()}
        retry.hooks["response"] = [hook for hook in retry.hooks["response"] if hook != self._retry_after_401]
        retry.headers["Authorization"] = token.authorization
        response.content  # read the 401's body, so its connection goes back to the pool
        response.close()
        again = response.connection.send(retry, **send_options)
        again.history.append(response)
        again.request = retry
        return again

    # -- httpx --------------------------------------------------------------------------------------

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        token = self.agent.get_token(self.key, self.min_validity)
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == UNAUTHORIZED:
            fresh = self.agent.get_token(self.key, self.min_validity, rejected_token=token.access_token)
            if fresh.access_token != token.access_token:
                request.headers["Authorization"] = fresh.authorization
                yield request

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        token = await _result(self.agent.get_token(self.key, self.min_validity))
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == UNAUTHORIZED:
            fresh = await _result(
                self.agent.get_token(self.key, self.min_validity, rejected_token=token.access_token)
            )
            if fresh.access_token != token.access_token:
                request.headers["Authorization"] = fresh.authorization
                yield request


def _bearer(authorization: Optional[str]) -> Optional[str]:
    """The token of a ``Bearer`` Authorization header."""
    if authorization is None or not authorization.startswith("Bearer "):
        return None
    return authorization[len("Bearer ") :]


async def _result(value: Any) -> Any:
    """``value``, awaited if it is a coroutine (an AsyncAuthAgent's answer; an AuthAgent answers directly)."""
    return await value if inspect.isawaitable(value) else value
