"""``BearerAuth``: puts a fresh access token on each request of ``requests`` or ``httpx``, no dependency."""

from __future__ import annotations

from typing import Any, Optional


class BearerAuth:
    """``requests.get(url, auth=BearerAuth(agent, "my-car"))``: asks the agent for the key's token on
    every request (the agent answers from memory and refreshes when needed), so it never goes stale.

    Works with anything that calls ``auth(request)`` and sets ``request.headers`` (``requests``, and
    ``httpx``'s sync client). ``agent`` is an :class:`~smartcar_auth_agent.AuthAgent`.
    """

    def __init__(self, agent: Any, key: str, min_validity: Optional[int] = None) -> None:
        self.agent = agent
        self.key = key
        self.min_validity = min_validity

    def __call__(self, request: Any) -> Any:
        token = self.agent.get_token(self.key, self.min_validity)
        request.headers["Authorization"] = token.authorization
        return request
