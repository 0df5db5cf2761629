"""The asyncio client: one agent process shared by every task that calls it."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Type, Union

from . import _common as common
from .errors import AgentDied, AgentError
from .types import AgentStatus, AppToken, ConnectURL, Token, TokenInfo

logger = logging.getLogger("smartcar_auth_agent")

#: ``on_notification(method, params)``: a function, or a coroutine function (run as a task).
AsyncNotificationCallback = Callable[[str, Dict[str, Any]], Any]

#: How long a new agent has to answer ``initialize``.
START_TIMEOUT = 30.0
#: Largest line the agent may send (only JSON-lines framing uses lines for bodies).
STREAM_LIMIT = 8 << 20


class _AsyncSession:
    """One agent process: a reader task demultiplexes its responses by id to the waiting callers."""

    def __init__(
        self, proc: asyncio.subprocess.Process, on_notification: Callable[[str, Dict[str, Any]], None]
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._on_notification = on_notification
        self._pending: Dict[int, Tuple[asyncio.Future[Dict[str, Any]], str]] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self.dead = False
        self.exit_code: Optional[int] = None
        self._ended = asyncio.Event()
        self._stderr = common.StderrTail()
        self._stderr_task = asyncio.ensure_future(self._read_stderr())
        self._reader = asyncio.ensure_future(self._read_stdout())

    @classmethod
    async def spawn(
        cls, command: List[str], env: Dict[str, str], on_notification: Callable[[str, Dict[str, Any]], None]
    ) -> _AsyncSession:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=STREAM_LIMIT,
        )
        return cls(proc, on_notification)

    # -- calls -----------------------------------------------------------------------------------

    async def request(self, method: str, params: Optional[Mapping[str, Any]], timeout: Optional[float]) -> Any:
        if self.dead:
            raise self._died(f"before {method} could be sent")
        future: asyncio.Future[Dict[str, Any]] = asyncio.get_running_loop().create_future()
        request_id = next(self._ids)
        self._pending[request_id] = (future, method)
        message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            await self._write(message)
        except (OSError, RuntimeError):  # broken pipe, or a transport closed under us
            self._pending.pop(request_id, None)
            try:
                await asyncio.wait_for(self._ended.wait(), 5)  # the reader reaps the process, for its exit code
            except asyncio.TimeoutError:
                pass
            raise self._died(f"before {method} could be sent") from None
        try:
            response = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(request_id, None)
            self.notify("$/cancelRequest", {"id": request_id})
            raise TimeoutError(f"the agent did not answer {method} within {timeout} s (request cancelled)") from None
        except asyncio.CancelledError:
            # The caller gave up: tell the agent, so it does not work for nobody.
            if self._pending.pop(request_id, None) is not None:
                self.notify("$/cancelRequest", {"id": request_id})
            raise
        return common.result_of(response)

    def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        """Queues a notification without waiting (a whole frame goes into the transport's buffer at once)."""
        message: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(common.encode_message(message))
        except (OSError, RuntimeError):
            pass

    async def _write(self, message: Mapping[str, Any]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        if stdin.is_closing():
            raise BrokenPipeError("the agent's stdin is closed")
        frame = common.encode_message(message)
        async with self._write_lock:  # concurrent drain() calls are not safe before Python 3.10
            stdin.write(frame)
            await stdin.drain()

    def _died(self, when: str) -> AgentDied:
        return AgentDied(
            common.died_message(self.pid, self.exit_code, self._stderr.text(), when),
            self.exit_code,
            self._stderr.text(),
        )

    # -- reading ---------------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        try:
            while True:
                body = await self._read_frame()
                if body is None:
                    break
                self._dispatch(body)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken stream ends the session like end of file does
            logger.exception("reading the agent's output failed")
        finally:
            await self._end()

    async def _read_frame(self) -> Optional[bytes]:
        """The next message body: Content-Length framed, or a JSON line; None at end of file."""
        stdout = self.proc.stdout
        assert stdout is not None
        headers: List[bytes] = []
        while True:
            line = await stdout.readline()
            if not line:
                return None
            stripped = line.strip()
            if not headers and stripped[:1] in (b"{", b"["):
                return stripped
            if stripped:
                headers.append(stripped)
                continue
            if not headers:
                continue
            length = common.content_length(headers)
            if length is None or length < 0:
                logger.warning("skipping a header block without a valid Content-Length from the agent")
                headers = []
                continue
            try:
                return await stdout.readexactly(length)
            except asyncio.IncompleteReadError:
                return None

    def _dispatch(self, body: bytes) -> None:
        message = common.decode_message(body)
        for element in message if isinstance(message, list) else [message]:
            request_id, is_response = common.split_response(element)
            if is_response:
                entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
                if entry is not None and not entry[0].done():
                    entry[0].set_result(element)
                elif request_id is None and isinstance(element, dict):
                    logger.warning("the agent answered an error to no request: %s", element.get("error"))
            elif isinstance(element, dict) and isinstance(element.get("method"), str) and "id" not in element:
                params = element.get("params")
                self._on_notification(element["method"], params if isinstance(params, dict) else {})
            else:
                logger.warning("ignoring an unreadable message from the agent")

    async def _read_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while True:
            try:
                raw = await stderr.readline()
            except ValueError:  # a line over the limit: keep its start
                raw = b"(an overlong line)\n"
            if not raw:
                return
            line = self._stderr.add(raw)
            logger.debug("agent %d: %s", self.pid, line)

    async def _end(self) -> None:
        """End of the agent's output: reap it and fail every call still waiting."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), 5)
        except asyncio.TimeoutError:  # it closed stdout but lives on: it cannot answer any more
            self.proc.kill()
            code = await self.proc.wait()
        try:
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
        except (asyncio.TimeoutError, Exception):
            pass
        self.exit_code = code
        self.dead = True
        pending = list(self._pending.values())
        self._pending.clear()
        self._ended.set()
        for future, method in pending:
            if not future.done():
                future.set_exception(self._died(f"before answering {method}"))

    # -- stopping --------------------------------------------------------------------------------

    async def close(self, timeout: float) -> Optional[int]:
        """``shutdown``, ``exit``, end of input; kills the agent if it is not gone after ``timeout``."""
        if not self.dead:
            try:
                await self.request("shutdown", None, timeout)
            except (AgentError, TimeoutError):
                pass
            self.notify("exit")
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("the agent (pid %d) did not exit within %s s; killing it", self.pid, timeout)
            self.proc.kill()
        await self._reader
        return self.exit_code


class AsyncAuthAgent:
    """The asyncio twin of :class:`~smartcar_auth_agent.AuthAgent`: same arguments, same methods, awaited.

    One agent process is shared by every task; use ``async with`` or ``await aclose()`` to stop it.
    ``on_notification`` may be a plain function or a coroutine function.
    """

    def __init__(
        self,
        agent: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        *,
        on_notification: Optional[AsyncNotificationCallback] = None,
        timeout: Optional[float] = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._agent = agent
        self._args = None if args is None else list(args)
        self._env = None if env is None else dict(env)
        self._on_notification = on_notification
        self._timeout = timeout
        self._shutdown_timeout = shutdown_timeout
        # Made on first use, inside the running loop (before 3.10 a Lock binds to a loop when created).
        self._lock: Optional[asyncio.Lock] = None
        self._session: Optional[_AsyncSession] = None
        self._callbacks: Set[asyncio.Future[Any]] = set()
        self._url_hooks: Dict[str, common.UrlHook] = {}  # connect's on_url by key
        #: The ``initialize`` result of the current agent (server info, capabilities, configuration).
        self.server_info: Optional[Dict[str, Any]] = None
        #: The exit code of the last agent that stopped or died.
        self.exit_code: Optional[int] = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncAuthAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Starts the agent now rather than on the first call (errors surface here)."""
        await self._current()

    @property
    def pid(self) -> Optional[int]:
        """The running agent's process id, or None when none runs."""
        session = self._session
        return session.pid if session is not None and not session.dead else None

    async def aclose(self) -> None:
        """Stops the agent cleanly (``shutdown``, ``exit``; killed after ``shutdown_timeout``).

        A later call starts a new agent.
        """
        session, self._session = self._session, None
        if session is not None:
            await session.close(self._shutdown_timeout)
            self.exit_code = session.exit_code
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)

    async def _current(self) -> _AsyncSession:
        """The live session, starting a new agent if there is none or it died (once per call)."""
        session = self._session
        if session is not None and not session.dead:
            return session
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            session = self._session
            if session is not None and not session.dead:
                return session
            if session is not None:
                self.exit_code = session.exit_code
            self._session = None
            session = await self._spawn()
            self._session = session
            return session

    async def _spawn(self) -> _AsyncSession:
        command = common.agent_command(self._agent, self._args)
        try:
            session = await _AsyncSession.spawn(command, common.agent_environment(self._env), self._notify)
        except OSError as error:
            raise AgentDied(f"could not start {command[0]}: {error}") from error
        try:
            info = await session.request(
                "initialize", common.initialize_params(self._on_notification is not None), START_TIMEOUT
            )
        except TimeoutError:
            session.proc.kill()
            await session.close(self._shutdown_timeout)
            raise AgentDied(f"{command[0]} did not answer initialize within {START_TIMEOUT:g} s") from None
        except AgentError:
            await session.close(self._shutdown_timeout)
            raise
        self.server_info = info if isinstance(info, dict) else {}
        return session

    def _notify(self, method: str, params: Dict[str, Any]) -> None:
        if method == common.CONNECT_URL_NOTIFICATION:
            key, url = params.get("key"), params.get("url")
            hook = self._url_hooks.get(key) if isinstance(key, str) else None
            if hook is not None and isinstance(url, str):
                self._run_callback(hook, url)
        callback = self._on_notification
        if callback is not None:
            self._run_callback(callback, method, params)

    def _run_callback(self, callback: Callable[..., Any], *args: Any) -> None:
        """Calls ``callback``; an awaitable it returns runs as a task."""
        try:
            outcome = callback(*args)
        except Exception:
            logger.exception("the callback %r failed", callback)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._callbacks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("the notification callback failed", exc_info=task.exception())

    # -- methods ---------------------------------------------------------------------------------

    async def request(self, method: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """Sends any method and returns its raw result (errors raise the matching exception)."""
        session = await self._current()
        return await session.request(method, params, self._timeout)

    async def get_token(
        self,
        key: str,
        min_validity: Optional[int] = None,
        force_refresh: bool = False,
        rejected_token: Optional[str] = None,
    ) -> Token:
        """An access token for ``key`` valid for at least ``min_validity`` seconds (default 300); see
        :meth:`AuthAgent.get_token` for ``rejected_token``."""
        params = common.get_token_params(key, min_validity, force_refresh, rejected_token)
        result = await self.request("getToken", params)
        return Token.from_result(result, "getToken")

    async def exchange_code(
        self,
        code: str,
        key: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        flags: Optional[Mapping[str, common.FlagValue]] = None,
    ) -> Token:
        """Exchanges an authorization code and stores the tokens (under ``key``, default the user id)."""
        result = await self.request("exchangeCode", common.exchange_code_params(code, key, redirect_uri, flags))
        return Token.from_result(result, "exchangeCode")

    async def handle_redirect(self, url: str, key: Optional[str] = None) -> Token:
        """Checks the redirect's state, exchanges its code and stores the tokens."""
        result = await self.request("handleRedirect", common.handle_redirect_params(url, key))
        return Token.from_result(result, "handleRedirect")

    async def build_connect_url(
        self,
        scope: Union[str, Sequence[str], None] = None,
        *,
        redirect_uri: Optional[str] = None,
        mode: Optional[str] = None,
        force_prompt: bool = False,
        state: Optional[str] = None,
        make: Optional[str] = None,
        single_select: bool = False,
        single_select_vin: Optional[str] = None,
        flags: Optional[Mapping[str, common.FlagValue]] = None,
        user: Optional[str] = None,
        key: Optional[str] = None,
    ) -> ConnectURL:
        """A Connect URL to send a vehicle owner to; ``key`` is where ``handle_redirect`` stores the tokens."""
        params = common.connect_url_params(
            scope, redirect_uri, mode, force_prompt, state, make, single_select, single_select_vin, flags, user, key
        )
        return ConnectURL.from_result(await self.request("buildConnectURL", params))

    async def connect(
        self,
        key: str,
        scope: Union[str, Sequence[str], None] = None,
        *,
        redirect_uri: Optional[str] = None,
        mode: Optional[str] = None,
        force_prompt: bool = False,
        make: Optional[str] = None,
        single_select: bool = False,
        single_select_vin: Optional[str] = None,
        flags: Optional[Mapping[str, common.FlagValue]] = None,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
        on_url: common.UrlHook = common.show_connect_url,
    ) -> Token:
        """Connects a vehicle from this machine, as ``gh auth login`` does: the agent listens on the redirect
        URI's loopback port (``http://localhost:PORT/PATH`` or ``http://127.0.0.1:PORT/PATH``; port 0 picks
        a free one), ``on_url`` (a function or a coroutine function) gets the Connect URL (default: printed on
        stderr and opened in a browser when one can show it), and once the owner approves, the tokens are stored
        under ``key`` and returned.
        Waits up to ``timeout`` seconds (default 300) for the redirect (:class:`ConnectTimeout`)."""
        params = common.connect_params(
            key, scope, redirect_uri, mode, force_prompt, make, single_select, single_select_vin, flags, user, timeout
        )
        self._url_hooks[key] = on_url
        try:
            session = await self._current()
            result = await session.request("connect", params, common.connect_call_timeout(self._timeout, timeout))
        finally:
            if self._url_hooks.get(key) is on_url:
                del self._url_hooks[key]
        return Token.from_result(result, "connect")

    async def app_token(self, force_refresh: bool = False) -> AppToken:
        """An application token (client-credentials grant), cached by the agent."""
        return AppToken.from_result(await self.request("appToken", common.app_token_params(force_refresh)))

    async def store_token(
        self,
        key: str,
        access_token: str,
        refresh_token: str,
        expires_at: common.Time,
        refresh_expires_at: Optional[common.Time] = None,
        scope: Optional[str] = None,
    ) -> Token:
        """Imports tokens obtained elsewhere (times: aware ``datetime`` or RFC 3339 strings)."""
        params = common.store_token_params(key, access_token, refresh_token, expires_at, refresh_expires_at, scope)
        return Token.from_result(await self.request("storeToken", params), "storeToken")

    async def forget_token(self, key: str) -> bool:
        """Deletes the key's tokens; whether there were any."""
        return common.forgot(await self.request("forgetToken", {"key": key}))

    async def list_tokens(self) -> List[TokenInfo]:
        """Every stored key, with its state (never the tokens)."""
        return [TokenInfo.from_result(t) for t in common.token_list(await self.request("listTokens"))]

    async def status(self) -> AgentStatus:
        """The agent's counters and configuration."""
        return AgentStatus.from_result(await self.request("status"))

    async def ping(self) -> None:
        """The cheapest round trip."""
        await self.request("ping")
