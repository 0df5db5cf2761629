"""AsyncAuthAgent against the real agent binary and the real fake-smartcar."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import EXPIRED, FAR_FUTURE, Fake
from faults import stall

from smartcar_auth_agent import AgentDied, AsyncAuthAgent, ProtocolError, UnknownKey

AsyncFactory = Callable[..., AsyncAuthAgent]


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_100_tasks_share_one_agent_and_one_refresh(make_async_agent: AsyncFactory, fake: Fake) -> None:
    async def main() -> None:
        async with make_async_agent() as agent:
            key = new_key("async-crowd")
            access, refresh = fake.mint(f"user-{key}")
            await agent.store_token(key, access, refresh, EXPIRED)
            pid = agent.pid
            before = fake.count("token")

            tokens = await asyncio.gather(*(agent.get_token(key) for _ in range(100)))

            assert len({t.access_token for t in tokens}) == 1
            assert tokens[0].access_token != access
            assert tokens[0].expires_at.tzinfo is not None
            assert agent.pid == pid
            assert fake.count("token") == before + 1
        assert agent.exit_code == 0

    asyncio.run(main())


def test_methods_and_errors(make_async_agent: AsyncFactory, fake: Fake) -> None:
    async def main() -> None:
        async with make_async_agent() as agent:
            key = new_key("async")
            access, refresh = fake.mint(f"user-{key}")
            stored = await agent.store_token(key, access, refresh, FAR_FUTURE)
            assert stored.key == key
            assert (await agent.get_token(key)).access_token == access
            assert key in {i.key for i in await agent.list_tokens()}
            assert (await agent.app_token()).access_token
            connect = await agent.build_connect_url(["read_odometer"], key=key)
            assert connect.url.startswith(fake.origin)
            assert (await agent.exchange_code(fake.code("user-async"))).key == "user-async"
            assert (await agent.status()).version
            await agent.ping()
            with pytest.raises(UnknownKey) as caught:
                await agent.get_token("no-such-key")
            assert caught.value.connect_url
            with pytest.raises(ProtocolError):
                await agent.request("noSuchMethod")
            assert await agent.forget_token(key) is True

    asyncio.run(main())


def test_a_killed_agent_fails_tasks_in_flight_and_the_next_call_restarts_it(
    make_async_agent: AsyncFactory, fresh_fake: Fake
) -> None:
    async def main() -> None:
        agent = make_async_agent(fake=fresh_fake)
        try:
            key = new_key("async-killed")
            access, refresh = fresh_fake.mint(f"user-{key}")
            await agent.store_token(key, access, refresh, EXPIRED)
            fresh_fake.fault(stall(), endpoint="token", times=1)
            before = fresh_fake.count("token")
            pid = agent.pid
            assert pid is not None

            calls = [asyncio.ensure_future(agent.get_token(key)) for _ in range(5)]
            await asyncio.get_running_loop().run_in_executor(None, fresh_fake.wait_for_count, "token", before + 1)
            os.kill(pid, signal.SIGKILL)
            outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)

            assert all(isinstance(o, AgentDied) for o in outcomes), outcomes
            assert all(o.exit_code == -signal.SIGKILL for o in outcomes if isinstance(o, AgentDied))
            await agent.ping()
            assert agent.pid is not None and agent.pid != pid
        finally:
            await agent.aclose()

    asyncio.run(main())


def test_cancelling_a_task_cancels_its_request(make_async_agent: AsyncFactory, fresh_fake: Fake) -> None:
    async def main() -> None:
        async with make_async_agent(fake=fresh_fake, args=["--request-timeout", "3"]) as agent:
            key = new_key("async-cancel")
            access, refresh = fresh_fake.mint(f"user-{key}")
            await agent.store_token(key, access, refresh, EXPIRED)
            fresh_fake.fault(stall(), endpoint="token", times=1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(agent.get_token(key), 1)
            await agent.ping()

    asyncio.run(main())


def test_notifications(make_async_agent: AsyncFactory, fake: Fake, agent_binary: str, store_args: List[str]) -> None:
    async def main() -> None:
        received: "asyncio.Queue[Tuple[str, Dict[str, Any]]]" = asyncio.Queue()

        async def on_notification(method: str, params: Dict[str, Any]) -> None:
            await received.put((method, params))

        async with AsyncAuthAgent(agent_binary, store_args, fake.env(), on_notification=on_notification) as agent:
            key = new_key("async-notified")
            access, refresh = fake.mint(f"user-{key}")
            await agent.store_token(key, access, refresh, FAR_FUTURE)
            method, params = await asyncio.wait_for(received.get(), 10)
            assert (method, params["key"], params["reason"]) == ("tokenChanged", key, "stored")

    asyncio.run(main())
