"""Fixtures: the real agent binary and the real fake-smartcar process.

The binaries come from ``.build/debug`` of the repository (run ``swift build`` first), or from
``SMARTCAR_AUTH_AGENT`` and ``FAKE_SMARTCAR``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent / "src"))  # test the source tree, installed or not

from smartcar_auth_agent import AsyncAuthAgent, AuthAgent  # noqa: E402

REDIRECT_URI = "http://localhost:8000/callback"
EXPIRED = "2020-01-01T00:00:00Z"
FAR_FUTURE = "2099-01-01T00:00:00Z"

os.environ["no_proxy"] = "127.0.0.1,localhost" + ("," + os.environ["no_proxy"] if os.environ.get("no_proxy") else "")
os.environ["NO_PROXY"] = os.environ["no_proxy"]


def _binary(variable: str, name: str) -> str:
    path = os.environ.get(variable) or str(REPO / ".build" / "debug" / name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(f"{path} is missing: run 'swift build' in {REPO} first (or set {variable})", returncode=1)
    return path


@pytest.fixture(scope="session")
def agent_binary() -> str:
    return _binary("SMARTCAR_AUTH_AGENT", "smartcar-auth-agent")


@pytest.fixture(scope="session")
def fake_binary() -> str:
    return _binary("FAKE_SMARTCAR", "fake-smartcar")


class Fake:
    """A fake-smartcar process and its control endpoints."""

    def __init__(self, binary: str) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=30):
                self.close()
                raise RuntimeError("fake-smartcar printed nothing within 30 s")
        line = self.proc.stdout.readline()
        try:
            info = json.loads(line)
        except ValueError:
            self.close()
            raise RuntimeError(f"fake-smartcar printed {line!r}") from None
        self.origin: str = info["origin"]
        self.client_id: str = info["clientID"]
        self.client_secret: str = info["clientSecret"]
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def env(self, **overrides: Optional[str]) -> Dict[str, Optional[str]]:
        """The environment that points an agent at this fake."""
        env: Dict[str, Optional[str]] = {
            "SMARTCAR_CLIENT_ID": self.client_id,
            "SMARTCAR_CLIENT_SECRET": self.client_secret,
            "SMARTCAR_REDIRECT_URI": REDIRECT_URI,
            "SMARTCAR_CONNECT_ORIGIN": self.origin,
            "SMARTCAR_AUTH_ORIGIN": self.origin,
            "SMARTCAR_IAM_ORIGIN": self.origin,
            "SMARTCAR_API_ORIGIN": self.origin,
            "SMARTCAR_MODE": None,
            "SMARTCAR_AUTH_STORE": None,
            "SMARTCAR_AUTH_AGENT_ARGS": None,
        }
        env.update(overrides)
        return env

    def _send(self, path: str, body: Optional[Any] = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.origin + path, data=data, headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str, headers: Optional[Mapping[str, str]] = None) -> Any:
        return self._send(path, headers=headers)

    def post(self, path: str, body: Any) -> Any:
        return self._send(path, body)

    def counts(self) -> Dict[str, int]:
        return dict(self.get("/_fake/counts"))

    def count(self, endpoint: str) -> int:
        return int(self.counts().get(endpoint, 0))

    def mint(self, user_id: str) -> Tuple[str, str]:
        answer = self.post("/_fake/mint", {"userID": user_id})
        return answer["accessToken"], answer["refreshToken"]

    def code(self, user_id: str, redirect_uri: str = REDIRECT_URI) -> str:
        return str(self.post("/_fake/code", {"redirectURI": redirect_uri, "userID": user_id})["code"])

    def fault(self, fault: Dict[str, Any], endpoint: Optional[str] = None, times: int = 1) -> None:
        body: Dict[str, Any] = {"fault": fault, "times": times}
        if endpoint is not None:
            body["endpoint"] = endpoint
        self.post("/_fake/fault", body)

    def user_id(self, access_token: str) -> str:
        return str(self.get("/v2.0/user", {"Authorization": f"Bearer {access_token}"})["id"])

    def wait_for_count(self, endpoint: str, at_least: int, timeout: float = 10) -> None:
        """Waits until the fake has seen ``at_least`` requests on ``endpoint``."""
        deadline = time.monotonic() + timeout
        while self.count(endpoint) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake saw fewer than {at_least} {endpoint} requests in {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="session")
def fake(fake_binary: str) -> Iterator[Fake]:
    """One fake for the session: tests use keys of their own and count deltas."""
    f = Fake(fake_binary)
    yield f
    f.close()


@pytest.fixture
def fresh_fake(fake_binary: str) -> Iterator[Fake]:
    """A fake of the test's own, for faults and stalls that must not leak into other tests."""
    f = Fake(fake_binary)
    yield f
    f.close()


@pytest.fixture
def store_args(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[List[str]]:
    yield ["--store", str(tmp_path / "tokens.sqlite3")]
    keep_store_files(tmp_path, request.node.name)


def keep_store_files(folder: Path, test_name: str) -> None:
    """Copies the test's store files into the run's evidence folder, when ``SMARTCAR_AUTH_TEST_EVIDENCE`` names one
    (``Tests/all.sh`` does): the scan that ends the run fails on any token value the fake issued found in them."""
    evidence = os.environ.get("SMARTCAR_AUTH_TEST_EVIDENCE")
    if not evidence:
        return
    target = Path(evidence) / "stores" / ("python-client-" + "".join(c if c.isalnum() else "-" for c in test_name))
    for path in folder.glob("tokens.sqlite3*"):
        if path.name.endswith(".lock"):
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)


AgentFactory = Callable[..., AuthAgent]


@pytest.fixture
def make_agent(agent_binary: str, fake: Fake, store_args: List[str]) -> Iterator[AgentFactory]:
    """``make_agent(fake=..., args=..., **env_overrides)``: an AuthAgent, closed at the end of the test."""
    made: List[AuthAgent] = []

    def make(
        fake: Fake = fake, args: Optional[List[str]] = None, client_kwargs: Optional[Dict[str, Any]] = None,
        **env: Optional[str],
    ) -> AuthAgent:
        agent = AuthAgent(agent_binary, store_args + (args or []), fake.env(**env), **(client_kwargs or {}))
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


@pytest.fixture
def agent(make_agent: AgentFactory) -> Iterator[AuthAgent]:
    with make_agent() as a:
        yield a


@pytest.fixture
def make_async_agent(agent_binary: str, fake: Fake, store_args: List[str]) -> Callable[..., AsyncAuthAgent]:
    def make(fake: Fake = fake, args: Optional[List[str]] = None, **env: Optional[str]) -> AsyncAuthAgent:
        return AsyncAuthAgent(agent_binary, store_args + (args or []), fake.env(**env))

    return make
