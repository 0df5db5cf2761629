"""``get_token(rejected_token=...)`` and ``BearerAuth``'s one retry after a 401, with requests and httpx.

The API is the fake's ``GET /v2.0/user``: it answers 401 to an access token the fake did not issue. Each key is
stored with such a token and a live refresh token, so its first API call gets 401, and the fake Smartcar counts
the refreshes the retry costs.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable, Tuple

import pytest
from conftest import FAR_FUTURE, Fake

from smartcar_auth_agent import AsyncAuthAgent, AuthAgent, BearerAuth

requests = pytest.importorskip("requests")


def refused_key(agent: AuthAgent, fake: Fake) -> Tuple[str, str]:
    """A key whose current access token the API refuses (valid for years by its expiry); its refresh token works."""
    key = f"refused-{uuid.uuid4().hex[:8]}"
    _, refresh = fake.mint(f"user-{key}")
    refused = f"refused-access-{uuid.uuid4().hex}"
    agent.store_token(key, refused, refresh, FAR_FUTURE)
    return key, refused


async def refused_key_async(agent: AsyncAuthAgent, fake: Fake) -> Tuple[str, str]:
    """``refused_key`` through an AsyncAuthAgent."""
    key = f"refused-{uuid.uuid4().hex[:8]}"
    _, refresh = fake.mint(f"user-{key}")
    refused = f"refused-access-{uuid.uuid4().hex}"
    await agent.store_token(key, refused, refresh, FAR_FUTURE)
    return key, refused


def unauthorized(times: int) -> Callable[[Fake], None]:
    def inject(fake: Fake) -> None:
        fake.fault({"kind": "status", "status": 401, "body": '{"error":"AUTHENTICATION"}'}, "user", times)

    return inject


# -- get_token(rejected_token=...) --------------------------------------------------------------------


def test_rejected_current_token_refreshes_once_and_a_stale_one_costs_nothing(agent: AuthAgent, fake: Fake) -> None:
    key, refused = refused_key(agent, fake)
    before = fake.count("token")

    fresh = agent.get_token(key, rejected_token=refused)
    assert fresh.access_token != refused
    assert fake.count("token") == before + 1

    again = agent.get_token(key, rejected_token=refused)  # a second worker reports the same 401
    assert again.access_token == fresh.access_token
    assert fake.count("token") == before + 1


def test_async_rejected_token(make_async_agent: Callable[..., AsyncAuthAgent], fake: Fake) -> None:
    async def main() -> None:
        async with make_async_agent() as agent:
            key, refused = await refused_key_async(agent, fake)
            before = fake.count("token")

            tokens = await asyncio.gather(*(agent.get_token(key, rejected_token=refused) for _ in range(20)))

            assert len({t.access_token for t in tokens}) == 1
            assert tokens[0].access_token != refused
            assert fake.count("token") == before + 1

    asyncio.run(main())


# -- requests -----------------------------------------------------------------------------------------


def test_requests_retries_once_after_401_with_one_refresh(agent: AuthAgent, fake: Fake) -> None:
    key, refused = refused_key(agent, fake)
    before = fake.counts()

    response = requests.get(f"{fake.origin}/v2.0/user", auth=BearerAuth(agent, key), proxies={"http": ""})

    assert response.status_code == 200
    assert response.json()["id"] == f"user-{key}"
    assert [r.status_code for r in response.history] == [401]
    assert response.request.headers["Authorization"] != f"Bearer {refused}"
    assert fake.count("token") == before.get("token", 0) + 1
    assert fake.count("user") == before.get("user", 0) + 2


def test_requests_gives_back_the_second_401(fresh_fake: Fake, make_agent: Any) -> None:
    own = make_agent(fake=fresh_fake)
    key, _ = refused_key(own, fresh_fake)
    unauthorized(2)(fresh_fake)  # the API refuses the refreshed token too

    response = requests.get(f"{fresh_fake.origin}/v2.0/user", auth=BearerAuth(own, key), proxies={"http": ""})

    assert response.status_code == 401
    assert fresh_fake.count("token") == 1
    assert fresh_fake.count("user") == 2


def test_requests_without_401_costs_no_refresh(agent: AuthAgent, fake: Fake) -> None:
    key = f"accepted-{uuid.uuid4().hex[:8]}"
    access, refresh = fake.mint(f"user-{key}")
    agent.store_token(key, access, refresh, FAR_FUTURE)
    before = fake.count("token")

    response = requests.get(f"{fake.origin}/v2.0/user", auth=BearerAuth(agent, key), proxies={"http": ""})

    assert response.status_code == 200
    assert response.history == []
    assert fake.count("token") == before


# -- httpx --------------------------------------------------------------------------------------------


def test_httpx_retries_once_after_401_with_one_refresh(agent: AuthAgent, fake: Fake) -> None:
    httpx = pytest.importorskip("httpx")
    key, refused = refused_key(agent, fake)
    before = fake.counts()

    with httpx.Client(auth=BearerAuth(agent, key), trust_env=False) as client:
        response = client.get(f"{fake.origin}/v2.0/user")

    assert response.status_code == 200
    assert response.json()["id"] == f"user-{key}"
    assert [r.status_code for r in response.history] == [401]
    assert fake.count("token") == before.get("token", 0) + 1
    assert fake.count("user") == before.get("user", 0) + 2


def test_httpx_gives_back_the_second_401(fresh_fake: Fake, make_agent: Any) -> None:
    httpx = pytest.importorskip("httpx")
    own = make_agent(fake=fresh_fake)
    key, _ = refused_key(own, fresh_fake)
    unauthorized(2)(fresh_fake)

    with httpx.Client(auth=BearerAuth(own, key), trust_env=False) as client:
        response = client.get(f"{fresh_fake.origin}/v2.0/user")

    assert response.status_code == 401
    assert fresh_fake.count("token") == 1
    assert fresh_fake.count("user") == 2


def test_httpx_async_client_with_async_agent(make_async_agent: Callable[..., AsyncAuthAgent], fake: Fake) -> None:
    httpx = pytest.importorskip("httpx")

    async def main() -> None:
        async with make_async_agent() as agent:
            key, _ = await refused_key_async(agent, fake)
            before = fake.count("token")

            async with httpx.AsyncClient(auth=BearerAuth(agent, key), trust_env=False) as client:
                responses = await asyncio.gather(*(client.get(f"{fake.origin}/v2.0/user") for _ in range(10)))

            assert [r.status_code for r in responses] == [200] * 10
            assert fake.count("token") == before + 1  # ten 401s with one token: one refresh

    asyncio.run(main())
