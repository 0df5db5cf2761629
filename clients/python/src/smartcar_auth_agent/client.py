"""The synchronous client: one agent process shared by every thread that calls it."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import queue
import subprocess
import threading
from types import TracebackType
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

from . import _common as common
from .errors import AgentDied, AgentError
from .types import AgentStatus, AppToken, ConnectURL, Token, TokenInfo

logger = logging.getLogger("smartcar_auth_agent")

NotificationCallback = Callable[[str, Dict[str, Any]], Any]

#: How long a new agent has to answer ``initialize``.
START_TIMEOUT = 30.0


class _Session:
    """One agent process: a reader thread demultiplexes its responses by id to the waiting callers."""

    def __init__(
        self,
        command: List[str],
        env: Dict[str, str],
        on_notification: Callable[[str, Dict[str, Any]], None],
    ) -> None:
        self._on_notification = on_notification
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.pid = self.proc.pid
        self._stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        self._lock = threading.Lock()  # guards _pending and dead
        self._write_lock = threading.Lock()  # one frame at a time on the agent's stdin
        self._pending: Dict[int, Tuple[concurrent.futures.Future[Dict[str, Any]], str]] = {}
        self._ids = itertools.count(1)
        self.dead = False
        self.exit_code: Optional[int] = None
        self._ended = threading.Event()
        self._stderr = common.StderrTail()
        self._stderr_thread = threading.Thread(target=self._read_stderr, name=f"agent-{self.pid}-stderr", daemon=True)
        self._reader = threading.Thread(target=self._read_stdout, name=f"agent-{self.pid}-reader", daemon=True)
        self._stderr_thread.start()
        self._reader.start()

    # -- calls -----------------------------------------------------------------------------------

    def request(self, method: str, params: Optional[Mapping[str, Any]], timeout: Optional[float]) -> Any:
        future: concurrent.futures.Future[Dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            if self.dead:
                raise self._died(f"before {method} could be sent")
            request_id = next(self._ids)
            self._pending[request_id] = (future, method)
        message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            self._write(message)
        except OSError:
            with self._lock:
                self._pending.pop(request_id, None)
            self._ended.wait(5)  # the reader reaps the process, for its exit code
            raise self._died(f"before {method} could be sent") from None
        try:
            response = future.result(timeout)
        except concurrent.futures.TimeoutError:
            with self._lock:
                self._pending.pop(request_id, None)
            self.notify("$/cancelRequest", {"id": request_id})
            raise TimeoutError(f"the agent did not answer {method} within {timeout} s (request cancelled)") from None
        return common.result_of(response)

    def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> None:
        """Sends a notification; a dead agent is not an error here."""
        message: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            self._write(message)
        except OSError:
            pass

    def _write(self, message: Mapping[str, Any]) -> None:
        frame = common.encode_message(message)
        with self._write_lock:
            self._stdin.write(frame)
            self._stdin.flush()

    def _died(self, when: str) -> AgentDied:
        return AgentDied(
            common.died_message(self.pid, self.exit_code, self._stderr.text(), when),
            self.exit_code,
            self._stderr.text(),
        )

    # -- reading ---------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        stdout: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        try:
            while True:
                body = self._read_frame(stdout)
                if body is None:
                    break
                self._dispatch(body)
        except Exception:  # a broken stream ends the session like end of file does
            logger.exception("reading the agent's output failed")
        finally:
            self._end()

    @staticmethod
    def _read_frame(stream: IO[bytes]) -> Optional[bytes]:
        """The next message body: Content-Length framed, or a JSON line; None at end of file."""
        headers: List[bytes] = []
        while True:
            line = stream.readline()
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
            body = stream.read(length)
            return body if len(body) == length else None

    def _dispatch(self, body: bytes) -> None:
        message = common.decode_message(body)
        if isinstance(message, list):  # a batch answer: this client never sends batches, but be lenient
            for element in message:
                self._dispatch_one(element)
        else:
            self._dispatch_one(message)

    def _dispatch_one(self, message: Any) -> None:
        request_id, is_response = common.split_response(message)
        if is_response:
            with self._lock:
                entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            if entry is not None:
                entry[0].set_result(message)
            elif request_id is None and isinstance(message, dict):
                logger.warning("the agent answered an error to no request: %s", message.get("error"))
            return
        if isinstance(message, dict) and isinstance(message.get("method"), str) and "id" not in message:
            params = message.get("params")
            self._on_notification(message["method"], params if isinstance(params, dict) else {})
            return
        logger.warning("ignoring an unreadable message from the agent")

    def _read_stderr(self) -> None:
        stderr: IO[bytes] = self.proc.stderr  # type: ignore[assignment]
        for raw in iter(stderr.readline, b""):
            line = self._stderr.add(raw)
            logger.debug("agent %d: %s", self.pid, line)

    def _end(self) -> None:
        """End of the agent's output: reap it and fail every call still waiting."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed stdout but lives on: it cannot answer any more
            self.proc.kill()
            code = self.proc.wait()
        self._stderr_thread.join(timeout=2)
        with self._lock:
            self.exit_code = code
            self.dead = True
            pending = list(self._pending.values())
            self._pending.clear()
        self._ended.set()
        for future, method in pending:
            future.set_exception(self._died(f"before answering {method}"))

    # -- stopping --------------------------------------------------------------------------------

    def close(self, timeout: float) -> Optional[int]:
        """``shutdown``, ``exit``, end of input; kills the agent if it is not gone after ``timeout``."""
        if not self.dead:
            try:
                self.request("shutdown", None, timeout)
            except (AgentError, TimeoutError):
                pass
            self.notify("exit")
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the agent (pid %d) did not exit within %s s; killing it", self.pid, timeout)
            self.proc.kill()
        self._reader.join()
        return self.exit_code


class _Notifier:
    """Runs the notification callback on its own thread, so that it may call the agent itself."""

    def __init__(self, callback: NotificationCallback) -> None:
        self._callback = callback
        self._queue: "queue.SimpleQueue[Optional[Tuple[str, Dict[str, Any]]]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="agent-notifications", daemon=True)
        self._thread.start()

    def put(self, method: str, params: Dict[str, Any]) -> None:
        self._queue.put((method, params))

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._callback(*item)
            except Exception:
                logger.exception("the notification callback failed on %s", item[0])


def _run_url_hook(hook: common.UrlHook, url: str) -> None:
    try:
        hook(url)
    except Exception:
        logger.exception("connect's on_url hook failed")


class AuthAgent:
    """A smartcar-auth-agent process, spawned on first use (or on ``with``) and shared by every thread.

    ``agent`` is the executable (default ``$SMARTCAR_AUTH_AGENT``, else ``smartcar-auth-agent`` on PATH),
    ``args`` its arguments (default the words of ``$SMARTCAR_AUTH_AGENT_ARGS``), ``env`` variables laid
    over this process's environment for it (a None value removes one). ``on_notification(method, params)``
    receives the agent's ``tokenChanged`` and ``reauthRequired`` notifications on a thread of its own.
    ``timeout`` bounds each call (``TimeoutError``; the request is cancelled), ``shutdown_timeout`` the
    clean stop.

    If the agent dies, calls in flight raise :class:`AgentDied` and the next call starts a new agent.
    """

    def __init__(
        self,
        agent: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, Optional[str]]] = None,
        *,
        on_notification: Optional[NotificationCallback] = None,
        timeout: Optional[float] = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._agent = agent
        self._args = None if args is None else list(args)
        self._env = None if env is None else dict(env)
        self._on_notification = on_notification
        self._timeout = timeout
        self._shutdown_timeout = shutdown_timeout
        self._lock = threading.Lock()  # guards _session and _notifier
        self._session: Optional[_Session] = None
        self._notifier: Optional[_Notifier] = None
        self._url_hooks: Dict[str, common.UrlHook] = {}  # connect's on_url by key, guarded by _lock
        #: The ``initialize`` result of the current agent (server info, capabilities, configuration).
        self.server_info: Optional[Dict[str, Any]] = None
        #: The exit code of the last agent that stopped or died.
        self.exit_code: Optional[int] = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> AuthAgent:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def start(self) -> None:
        """Starts the agent now rather than on the first call (errors surface here)."""
        self._current()

    @property
    def pid(self) -> Optional[int]:
        """The running agent's process id, or None when none runs."""
        session = self._session
        return session.pid if session is not None and not session.dead else None

    def close(self) -> None:
        """Stops the agent cleanly (``shutdown``, ``exit``; killed after ``shutdown_timeout``).

        A later call starts a new agent.
        """
        with self._lock:
            session, self._session = self._session, None
            notifier, self._notifier = self._notifier, None
        if session is not None:
            session.close(self._shutdown_timeout)
            self.exit_code = session.exit_code
        if notifier is not None:
            notifier.stop()

    def _current(self) -> _Session:
        """The live session, starting a new agent if there is none or it died (once per call)."""
        with self._lock:
            session = self._session
            if session is not None and not session.dead:
                return session
            if session is not None:
                self.exit_code = session.exit_code
            self._session = None
            if self._on_notification is not None and self._notifier is None:
                self._notifier = _Notifier(self._on_notification)
            session = self._spawn()
            self._session = session
            return session

    def _spawn(self) -> _Session:
        command = common.agent_command(self._agent, self._args)
        try:
            session = _Session(command, common.agent_environment(self._env), self._notify)
        except OSError as error:
            raise AgentDied(f"could not start {command[0]}: {error}") from error
        try:
            info = session.request(
                "initialize", common.initialize_params(self._on_notification is not None), START_TIMEOUT
            )
        except TimeoutError:
            session.proc.kill()
            session.close(self._shutdown_timeout)
            raise AgentDied(f"{command[0]} did not answer initialize within {START_TIMEOUT:g} s") from None
        except AgentError:
            session.close(self._shutdown_timeout)
            raise
        self.server_info = info if isinstance(info, dict) else {}
        return session

    def _notify(self, method: str, params: Dict[str, Any]) -> None:
        if method == common.CONNECT_URL_NOTIFICATION:
            key, url = params.get("key"), params.get("url")
            with self._lock:
                hook = self._url_hooks.get(key) if isinstance(key, str) else None
            if hook is not None and isinstance(url, str):
                # Off the reader thread: a hook that blocks must not hold up other calls' answers.
                threading.Thread(target=_run_url_hook, args=(hook, url), name="agent-connect-url", daemon=True).start()
        notifier = self._notifier
        if notifier is not None:
            notifier.put(method, params)

    # -- methods ---------------------------------------------------------------------------------

    def request(self, method: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """Sends any method and returns its raw result (errors raise the matching exception)."""
        return self._current().request(method, params, self._timeout)

    def get_token(
        self,
        key: str,
        min_validity: Optional[int] = None,
        force_refresh: bool = False,
        rejected_token: Optional[str] = None,
    ) -> Token:
        """An access token for ``key`` valid for at least ``min_validity`` seconds (default 300).

        ``rejected_token``: the access token an API call just answered 401 to. The agent refreshes the key once
        if that is still its token, however many callers report it; if the key has moved on, the newer token
        comes back without a call to Smartcar.
        """
        params = common.get_token_params(key, min_validity, force_refresh, rejected_token)
        return Token.from_result(self.request("getToken", params), "getToken")

    def exchange_code(
        self,
        code: str,
        key: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        flags: Optional[Mapping[str, common.FlagValue]] = None,
    ) -> Token:
        """Exchanges an authorization code and stores the tokens (under ``key``, default the user id)."""
        return Token.from_result(
            self.request("exchangeCode", common.exchange_code_params(code, key, redirect_uri, flags)), "exchangeCode"
        )

    def handle_redirect(self, url: str, key: Optional[str] = None) -> Token:
        """Checks the redirect's state, exchanges its code and stores the tokens."""
        return Token.from_result(
            self.request("handleRedirect", common.handle_redirect_params(url, key)), "handleRedirect"
        )

    def build_connect_url(
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
        return ConnectURL.from_result(self.request("buildConnectURL", params))

    def connect(
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
        a free one), ``on_url`` gets the Connect URL (default: printed on stderr and opened in a browser when
        one can show it), and once the owner approves, the tokens are stored under ``key`` and returned.
        Waits up to ``timeout`` seconds (default 300) for the redirect (:class:`ConnectTimeout`)."""
        params = common.connect_params(
            key, scope, redirect_uri, mode, force_prompt, make, single_select, single_select_vin, flags, user, timeout
        )
        with self._lock:
            self._url_hooks[key] = on_url
        try:
            result = self._current().request("connect", params, common.connect_call_timeout(self._timeout, timeout))
        finally:
            with self._lock:
                if self._url_hooks.get(key) is on_url:
                    del self._url_hooks[key]
        return Token.from_result(result, "connect")

    def app_token(self, force_refresh: bool = False) -> AppToken:
        """An application token (client-credentials grant), cached by the agent."""
        return AppToken.from_result(self.request("appToken", common.app_token_params(force_refresh)))

    def store_token(
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
        return Token.from_result(self.request("storeToken", params), "storeToken")

    def forget_token(self, key: str) -> bool:
        """Deletes the key's tokens; whether there were any."""
        return common.forgot(self.request("forgetToken", {"key": key}))

    def list_tokens(self) -> List[TokenInfo]:
        """Every stored key, with its state (never the tokens)."""
        return [TokenInfo.from_result(t) for t in common.token_list(self.request("listTokens"))]

    def status(self) -> AgentStatus:
        """The agent's counters and configuration."""
        return AgentStatus.from_result(self.request("status"))

    def ping(self) -> None:
        """The cheapest round trip."""
        self.request("ping")

