"""AuthAgent against the real agent binary and the real fake-smartcar."""

from __future__ import annotations

import os
import queue
import signal
import threading
import types
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from conftest import EXPIRED, FAR_FUTURE, REDIRECT_URI, AgentFactory, Fake
from faults import drop_after_handling, rate_limited, server_error, stall, teapot

from smartcar_auth_agent import (
    AgentDied,
    AgentError,
    AgentNotFound,
    AuthAgent,
    BearerAuth,
    ConfigurationError,
    ConnectError,
    InvalidClient,
    InvalidGrant,
    ProtocolError,
    RateLimited,
    ReauthRequired,
    StateMismatch,
    UnknownKey,
    UpstreamError,
    UpstreamUnavailable,
)


def new_key(prefix: str = "key") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def store_minted(agent: AuthAgent, fake: Fake, key: str, expires_at: str = FAR_FUTURE) -> Tuple[str, str]:
    access, refresh = fake.mint(f"user-{key}")
    agent.store_token(key, access, refresh, expires_at)
    return access, refresh


# -- tokens ------------------------------------------------------------------------------------------


def test_get_token_of_a_stored_key(agent: AuthAgent, fake: Fake) -> None:
    key = new_key()
    access, _ = store_minted(agent, fake, key)
    before = fake.count("token")

    token = agent.get_token(key)

    assert token.key == key
    assert token.access_token == access
    assert token.token_type == "Bearer"
    assert token.expires_at == datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert token.expires_at.tzinfo is not None
    assert token.expires_in > 0
    assert token.refresh_expires_at is None or token.refresh_expires_at.tzinfo is not None
    assert token.authorization == f"Bearer {access}"
    assert access not in repr(token)
    assert fake.count("token") == before
    assert fake.user_id(token.access_token) == f"user-{key}"


def test_store_token_takes_aware_datetimes(agent: AuthAgent, fake: Fake) -> None:
    key = new_key()
    access, refresh = fake.mint("user-dt")
    expires = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(hours=1)
    token = agent.store_token(key, access, refresh, expires)
    assert token.expires_at == expires
    with pytest.raises(ValueError):
        agent.store_token(key, access, refresh, datetime(2099, 1, 1))  # naive: ambiguous


def test_an_expired_key_is_refreshed_once(agent: AuthAgent, fake: Fake) -> None:
    key = new_key("expired")
    access, _ = store_minted(agent, fake, key, EXPIRED)
    before = fake.count("token")

    token = agent.get_token(key)

    assert token.access_token != access
    assert token.expires_at > datetime.now(timezone.utc) + timedelta(minutes=5)
    assert fake.count("token") == before + 1
    assert agent.get_token(key).access_token == token.access_token
    assert fake.count("token") == before + 1
    assert fake.user_id(token.access_token) == f"user-{key}"


def test_force_refresh_and_min_validity(agent: AuthAgent, fake: Fake) -> None:
    key = new_key()
    access, _ = store_minted(agent, fake, key)
    before = fake.count("token")
    assert agent.get_token(key, min_validity=3600).access_token == access
    refreshed = agent.get_token(key, force_refresh=True)
    assert refreshed.access_token != access
    assert fake.count("token") == before + 1


def test_100_threads_share_one_agent_and_one_refresh(agent: AuthAgent, fake: Fake) -> None:
    key = new_key("crowd")
    store_minted(agent, fake, key, EXPIRED)
    pid = agent.pid
    before = fake.count("token")
    barrier = threading.Barrier(100)
    tokens: List[str] = []
    errors: List[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        try:
            token = agent.get_token(key)
            with lock:
                tokens.append(token.access_token)
        except BaseException as error:  # noqa: B036 - collected and asserted below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(tokens) == 100
    assert len(set(tokens)) == 1
    assert agent.pid == pid
    assert fake.count("token") == before + 1


def test_app_token(agent: AuthAgent) -> None:
    token = agent.app_token()
    assert token.access_token
    assert token.token_type == "Bearer"
    assert token.expires_at.tzinfo is not None
    assert 0 < token.expires_in <= 3600
    assert agent.app_token().access_token == token.access_token  # cached by the agent
    assert token.access_token not in repr(token)


def test_list_and_forget(agent: AuthAgent, fake: Fake) -> None:
    fresh, stale = new_key("fresh"), new_key("stale")
    store_minted(agent, fake, fresh)
    store_minted(agent, fake, stale, EXPIRED)

    listed = {info.key: info for info in agent.list_tokens()}

    assert listed[fresh].state == "valid"
    assert listed[fresh].expires_at == datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert listed[stale].state == "expired"
    assert agent.forget_token(fresh) is True
    assert agent.forget_token(fresh) is False
    assert fresh not in {info.key for info in agent.list_tokens()}


def test_status_and_server_info(agent: AuthAgent, fake: Fake) -> None:
    assert agent.server_info is not None
    assert agent.server_info["serverInfo"]["name"] == "smartcar-auth-agent"
    status = agent.status()
    assert status.version
    assert status.configuration.get("clientID") == fake.client_id
    agent.ping()


# -- Connect -----------------------------------------------------------------------------------------


def test_build_connect_url_encodes_options(agent: AuthAgent, fake: Fake) -> None:
    connect = agent.build_connect_url(
        ["read_odometer", "required:read_vin"],
        mode="test",
        force_prompt=True,
        state="a b&c",
        make="TESLA",
        single_select_vin="5YJSA1E14FF101307",
        flags={"country": "DE", "b": True},
        user="u-1",
    )
    assert connect.state == "a b&c"
    assert connect.url.startswith(f"{fake.origin}/oauth/authorize?response_type=code&client_id={fake.client_id}&")
    for part in [
        "approval_prompt=force",
        "mode=test",
        "scope=read_odometer+required%3Aread_vin",
        "state=a+b%26c",
        "make=TESLA",
        "single_select_vin=5YJSA1E14FF101307",
        "user=u-1",
    ]:
        assert part in connect.url
    # A JSON object has no order: the agent may emit the flags in any.
    flags = urllib.parse.parse_qs(urllib.parse.urlsplit(connect.url).query)["flags"]
    assert sorted(flags[0].split(" ")) == ["b:true", "country:DE"]
    assert str(connect) == connect.url
    assert len(agent.build_connect_url().state) >= 16  # the agent's own random state


def test_connect_redirect_and_get_token(agent: AuthAgent, fake: Fake) -> None:
    import urllib.error
    import urllib.request

    key = new_key("connected")
    connect = agent.build_connect_url(scope="read_odometer", key=key)

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(Stop, urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(connect.url)
    location = redirect.value.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")

    token = agent.handle_redirect(location)

    assert token.key == key
    assert agent.get_token(key).access_token == token.access_token
    with pytest.raises(StateMismatch):
        agent.handle_redirect(location)  # each state is accepted once


def test_exchange_code(agent: AuthAgent, fake: Fake) -> None:
    token = agent.exchange_code(fake.code("user-exchange"))
    assert token.key == "user-exchange"
    key = new_key("exchanged")
    assert agent.exchange_code(fake.code("user-x"), key=key, redirect_uri=REDIRECT_URI).key == key


# -- errors ------------------------------------------------------------------------------------------


def test_unknown_key(agent: AuthAgent, fake: Fake) -> None:
    with pytest.raises(UnknownKey) as caught:
        agent.get_token("no-such-key")
    error = caught.value
    assert error.code == -32010
    assert error.kind == "unknownKey"
    assert error.connect_url is not None and error.connect_url.startswith(fake.origin)
    assert isinstance(error, AgentError)


def test_reauth_required_after_a_rejected_refresh(agent: AuthAgent, fake: Fake) -> None:
    key = new_key("reauth")
    agent.store_token(key, "never-issued-access", "never-issued-refresh", EXPIRED)

    with pytest.raises(ReauthRequired) as caught:
        agent.get_token(key)

    assert caught.value.code == -32004
    assert caught.value.connect_url is not None and caught.value.connect_url.startswith(fake.origin)
    with pytest.raises(ReauthRequired):
        agent.get_token(key)
    assert {i.key: i.state for i in agent.list_tokens()}[key] == "reauthRequired"


def test_invalid_code(agent: AuthAgent) -> None:
    with pytest.raises(InvalidGrant) as caught:
        agent.exchange_code("not-a-code")
    assert caught.value.code == -32003


def test_state_mismatch_and_connect_error(agent: AuthAgent) -> None:
    with pytest.raises(StateMismatch) as mismatch:
        agent.handle_redirect(f"{REDIRECT_URI}?code=abc&state=never-issued")
    assert mismatch.value.code == -32008

    state = agent.build_connect_url(state=new_key("state")).state
    with pytest.raises(ConnectError) as caught:
        agent.handle_redirect(f"{REDIRECT_URI}?error=access_denied&error_description=User+denied&state={state}")
    assert caught.value.code == -32009
    assert caught.value.error == "access_denied"
    assert caught.value.description == "User denied"


def test_configuration_error(make_agent: AgentFactory) -> None:
    with make_agent(SMARTCAR_CLIENT_ID=None) as agent:
        with pytest.raises(ConfigurationError) as caught:
            agent.build_connect_url()
    assert caught.value.code == -32001


def test_invalid_client(make_agent: AgentFactory) -> None:
    with make_agent(SMARTCAR_CLIENT_SECRET="wrong-secret") as agent:
        with pytest.raises(InvalidClient) as caught:
            agent.app_token()
    assert caught.value.code == -32002
    assert caught.value.status == 401


def test_upstream_unavailable(make_agent: AgentFactory, fresh_fake: Fake) -> None:
    with make_agent(fake=fresh_fake, args=["--request-timeout", "5"]) as agent:
        key = new_key("down")
        store_minted(agent, fresh_fake, key, EXPIRED)
        fresh_fake.fault(server_error(503), endpoint="token", times=100)
        with pytest.raises(UpstreamUnavailable) as caught:
            agent.get_token(key)
    assert caught.value.code == -32006


def test_rate_limited(make_agent: AgentFactory, fresh_fake: Fake) -> None:
    with make_agent(fake=fresh_fake, args=["--request-timeout", "5"]) as agent:
        key = new_key("limited")
        store_minted(agent, fresh_fake, key, EXPIRED)
        fresh_fake.fault(rate_limited("7"), endpoint="token", times=100)
        with pytest.raises(RateLimited) as caught:
            agent.get_token(key)
    assert caught.value.code == -32005
    assert caught.value.retry_after == 7


def test_upstream_error(make_agent: AgentFactory, fresh_fake: Fake) -> None:
    with make_agent(fake=fresh_fake) as agent:
        fresh_fake.fault(teapot(), endpoint="appToken", times=1)
        with pytest.raises(UpstreamError) as caught:
            agent.app_token()
    assert caught.value.code == -32007
    assert caught.value.status == 418
    assert caught.value.data.get("error") == "teapot"
    assert caught.value.request_id


def test_a_code_exchange_cut_off_may_have_reached_smartcar(make_agent: AgentFactory, fresh_fake: Fake) -> None:
    with make_agent(fake=fresh_fake, args=["--request-timeout", "5"]) as agent:
        fresh_fake.fault(drop_after_handling(), endpoint="token", times=1)
        with pytest.raises(UpstreamUnavailable) as caught:
            agent.exchange_code(fresh_fake.code("user-cut-off"))
    assert caught.value.may_have_reached_server is True


def test_protocol_errors(agent: AuthAgent) -> None:
    with pytest.raises(ProtocolError) as unknown:
        agent.request("noSuchMethod")
    assert unknown.value.code == -32601
    with pytest.raises(ProtocolError) as invalid:
        agent.get_token("k", min_validity=99999)
    assert invalid.value.code == -32602


# -- the agent process -------------------------------------------------------------------------------


def test_context_manager_exits_cleanly(make_agent: AgentFactory) -> None:
    agent = make_agent()
    with agent:
        pid = agent.pid
        assert pid is not None
        agent.ping()
    assert agent.exit_code == 0
    assert agent.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_killed_agent_fails_calls_in_flight_and_the_next_call_restarts_it(
    make_agent: AgentFactory, fresh_fake: Fake
) -> None:
    agent = make_agent(fake=fresh_fake)
    key = new_key("killed")
    store_minted(agent, fresh_fake, key, EXPIRED)
    fresh_fake.fault(stall(), endpoint="token", times=1)
    before = fresh_fake.count("token")
    pid = agent.pid
    assert pid is not None
    outcome: "queue.Queue[BaseException]" = queue.Queue()

    def call() -> None:
        try:
            agent.get_token(key)
        except BaseException as error:  # noqa: B036 - handed to the test
            outcome.put(error)
        else:
            outcome.put(AssertionError("get_token succeeded under a stalled Smartcar"))

    thread = threading.Thread(target=call)
    thread.start()
    fresh_fake.wait_for_count("token", before + 1)  # the refresh is in flight
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=30)

    error = outcome.get(timeout=1)
    assert isinstance(error, AgentDied), error
    assert error.exit_code == -signal.SIGKILL
    assert "SIGKILL" in str(error) and str(pid) in str(error)

    agent.ping()  # a new agent
    assert agent.pid is not None and agent.pid != pid
    assert agent.exit_code == -signal.SIGKILL


def test_an_agent_that_cannot_start(tmp_path: Path) -> None:
    script = tmp_path / "broken-agent"
    script.write_text("#!/bin/sh\necho 'broken-agent: no configuration at all' >&2\nexit 3\n")
    script.chmod(0o755)
    agent = AuthAgent(str(script), [])
    with pytest.raises(AgentDied) as caught:
        agent.ping()
    assert caught.value.exit_code == 3
    assert "exited with code 3" in str(caught.value)
    assert "no configuration at all" in caught.value.stderr_tail
    with pytest.raises(AgentDied):  # each call tries once more, and fails the same
        agent.ping()


def test_agent_not_found(tmp_path: Path) -> None:
    with pytest.raises(AgentNotFound):
        AuthAgent(str(tmp_path / "nowhere"), []).start()


def test_agent_found_through_the_environment(
    agent_binary: str, fake: Fake, store_args: List[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCAR_AUTH_AGENT", agent_binary)
    monkeypatch.setenv("SMARTCAR_AUTH_AGENT_ARGS", " ".join(store_args))
    with AuthAgent(env=fake.env()) as agent:
        assert agent.status().configuration.get("store") == store_args[1]


def test_timeout_cancels_the_call(make_agent: AgentFactory, fresh_fake: Fake) -> None:
    agent = make_agent(fake=fresh_fake, args=["--request-timeout", "3"], client_kwargs={"timeout": 1.0})
    key = new_key("slow")
    store_minted(agent, fresh_fake, key, EXPIRED)
    fresh_fake.fault(stall(), endpoint="token", times=1)
    with pytest.raises(TimeoutError):
        agent.get_token(key)
    agent.ping()  # the agent is still there


def test_notifications(make_agent: AgentFactory, fake: Fake) -> None:
    received: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
    agent = make_agent(client_kwargs={"on_notification": lambda method, params: received.put((method, params))})
    key = new_key("notified")
    store_minted(agent, fake, key)
    method, params = received.get(timeout=10)
    assert method == "tokenChanged"
    assert params["key"] == key
    assert params["reason"] == "stored"


def test_bearer_auth(agent: AuthAgent, fake: Fake) -> None:
    key = new_key("bearer")
    access, _ = store_minted(agent, fake, key)
    request = types.SimpleNamespace(headers={})
    auth = BearerAuth(agent, key)
    assert auth(request) is request
    assert request.headers["Authorization"] == f"Bearer {access}"
    assert fake.user_id(request.headers["Authorization"].split(" ", 1)[1]) == f"user-{key}"
