"""connect: a vehicle connected from this machine, against the real agent in --sandbox (its fake Connect
approves at once); the "browser" follows the fake's redirect to the agent's loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.error
import urllib.request
from typing import Iterator, List, Tuple

import pytest

from smartcar_auth_agent import AsyncAuthAgent, AuthAgent, ConnectError, ConnectTimeout, PortUnavailable

FREE_PORT = "http://127.0.0.1:0/callback"
SANDBOX_ENV = {"SMARTCAR_AUTH_AGENT_ARGS": None, "SMARTCAR_AUTH_STORE": None}


class Browser:
    """Opens a URL as a browser would, following redirects; keeps each page it ended on."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.pages: List[Tuple[int, str]] = []
        self.done = threading.Event()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(self, url: str) -> None:
        try:
            with self._opener.open(url + self.suffix, timeout=60) as response:
                self.pages.append((response.status, response.read().decode()))
        except urllib.error.HTTPError as error:
            self.pages.append((error.code, error.read().decode()))
        self.done.set()

    def page(self) -> Tuple[int, str]:
        """The page the browser ended on (the hook runs on a thread of its own: waits for it)."""
        assert self.done.wait(60), "the browser was never opened"
        return self.pages[0]


@pytest.fixture
def sandbox(agent_binary: str) -> Iterator[AuthAgent]:
    with AuthAgent(agent_binary, ["--sandbox"], SANDBOX_ENV) as agent:
        yield agent


def test_connect_follows_the_redirect_and_stores_the_key(sandbox: AuthAgent) -> None:
    browser = Browser()
    token = sandbox.connect("py-car", ["read_odometer"], redirect_uri=FREE_PORT, on_url=browser)
    assert token.key == "py-car"
    assert sandbox.get_token("py-car").access_token == token.access_token
    status, page = browser.page()
    assert status == 200
    assert "stored under the key &#39;py-car&#39;. You may close this tab." in page


def test_a_connect_error_raises_connect_error(sandbox: AuthAgent) -> None:
    browser = Browser("&fake_error=access_denied")
    with pytest.raises(ConnectError) as caught:
        sandbox.connect("denied-car", redirect_uri=FREE_PORT, on_url=browser)
    assert caught.value.error == "access_denied"
    status, page = browser.page()
    assert status == 400
    assert "Not connected: Smartcar Connect returned access_denied" in page


def test_the_default_hook_prints_the_url_and_a_missing_redirect_times_out(
    sandbox: AuthAgent, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConnectTimeout) as caught:
        sandbox.connect("late-car", redirect_uri=FREE_PORT, timeout=1)
    assert caught.value.redirect_uri is not None and caught.value.redirect_uri.startswith("http://127.0.0.1:")
    printed = capsys.readouterr().err
    assert "Open this URL in a browser to connect the vehicle:\n  http://127.0.0.1:" in printed
    assert "/oauth/authorize?" in printed


def test_a_port_in_use_raises_port_unavailable(sandbox: AuthAgent) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortUnavailable) as caught:
            sandbox.connect("busy-car", redirect_uri=f"http://localhost:{port}/callback", on_url=Browser())
    assert f"127.0.0.1:{port}" in caught.value.message


def test_async_connect_with_a_coroutine_hook(agent_binary: str) -> None:
    browser = Browser()

    async def open_url(url: str) -> None:
        await asyncio.get_running_loop().run_in_executor(None, browser, url)

    async def main() -> None:
        async with AsyncAuthAgent(agent_binary, ["--sandbox"], SANDBOX_ENV) as agent:
            token = await agent.connect("async-car", "read_odometer", redirect_uri=FREE_PORT, on_url=open_url)
            assert token.key == "async-car"
            assert (await agent.get_token("async-car")).access_token == token.access_token
            with pytest.raises(ConnectTimeout):
                await agent.connect("late-car", redirect_uri=FREE_PORT, timeout=1, on_url=lambda url: None)
        assert agent.exit_code == 0

    asyncio.run(main())
    assert browser.page()[0] == 200
