"""A stand-in for the Slack Web API: a loopback HTTP server that records every call.

It answers the methods the app calls as Slack does: HTTP 200 with a JSON body
whose `ok` says whether the call worked, form or JSON request bodies, and HTTP
429 with `Retry-After` when rate limited. Messages, modals and Home tabs over the
Block Kit limits get `invalid_blocks`. Tests can make a method fail, rate limit
it or slow it down. Methods that slack_sdk calls with GET (chat.getPermalink)
take their arguments from the query string.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_TOKEN = "xoxb-standin-token"

# Limits from Slack's Block Kit reference (blocks, block elements, composition
# objects, surfaces), as published in 2025.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_INPUT_LABEL = 2000
MAX_MESSAGE_TEXT = 40000


@dataclass
class Call:
    """One request the stand-in received."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    updates: int = 0


@dataclass
class Ephemeral:
    """A message shown to one user only, through chat.postEphemeral."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]


@dataclass
class UploadedFile:
    id: str
    filename: str
    title: str
    content: bytes = b""
    channel: str = ""
    thread_ts: str | None = None
    completed: bool = False


@dataclass
class _Trouble:
    remaining: int
    error: str = ""
    retry_after: int = 0
    delay: float = 0.0


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text", ""))
    return "" if value is None else str(value)


def _too_long(problems: list[str], where: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems.append(f"{where}: {len(text)} characters, more than {limit}")


def _check_confirm(problems: list[str], where: str, confirm: dict[str, Any]) -> None:
    _too_long(problems, f"{where}.title", _text_of(confirm.get("title")), 100)
    _too_long(problems, f"{where}.text", _text_of(confirm.get("text")), 300)
    for key in ("confirm", "deny"):
        text = _text_of(confirm.get(key))
        _too_long(problems, f"{where}.{key}", text, MAX_CONFIRM_BUTTON)


def _check_element(problems: list[str], where: str, element: dict[str, Any]) -> None:
    _too_long(problems, f"{where}.action_id", element.get("action_id", ""), MAX_ID)
    if element.get("type") == "button":
        text = _text_of(element.get("text"))
        if not text:
            problems.append(f"{where}.text: missing")
        _too_long(problems, f"{where}.text", text, MAX_BUTTON_TEXT)
        _too_long(problems, f"{where}.value", element.get("value", ""), 2000)
        _too_long(problems, f"{where}.url", element.get("url", ""), 3000)
    if isinstance(element.get("confirm"), dict):
        _check_confirm(problems, f"{where}.confirm", element["confirm"])


def _check_block(problems: list[str], where: str, block: dict[str, Any]) -> None:
    kind = block.get("type")
    _too_long(problems, f"{where}.block_id", block.get("block_id", ""), MAX_ID)
    if kind == "section":
        text = _text_of(block.get("text"))
        fields = block.get("fields") or []
        if not text and not fields:
            problems.append(f"{where}: a section needs text or fields")
        _too_long(problems, f"{where}.text", text, MAX_SECTION_TEXT)
        if len(fields) > MAX_SECTION_FIELDS:
            problems.append(f"{where}.fields: more than {MAX_SECTION_FIELDS}")
        for index, item in enumerate(fields):
            _too_long(problems, f"{where}.fields[{index}]", _text_of(item), 2000)
        if isinstance(block.get("accessory"), dict):
            _check_element(problems, f"{where}.accessory", block["accessory"])
    elif kind == "header":
        _too_long(problems, f"{where}.text", _text_of(block.get("text")), 150)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
            problems.append(
                f"{where}.elements: {len(elements)}, expected 1 to "
                f"{MAX_ACTIONS_ELEMENTS}"
            )
        action_ids = [item.get("action_id") for item in elements]
        if len(set(action_ids)) != len(action_ids):
            problems.append(f"{where}.elements: action_id values repeat")
        for index, element in enumerate(elements):
            _check_element(problems, f"{where}.elements[{index}]", element)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}.elements: {len(elements)}, expected 1 to 10")
        for index, item in enumerate(elements):
            _too_long(problems, f"{where}.elements[{index}]", _text_of(item), 3000)
    elif kind == "input":
        _too_long(problems, f"{where}.label", _text_of(block.get("label")), 2000)
        if not isinstance(block.get("element"), dict):
            problems.append(f"{where}.element: missing")
    elif kind not in {"divider", "image", "file", "rich_text"}:
        problems.append(f"{where}: unknown block type {kind!r}")


def block_problems(blocks: Any, *, max_blocks: int) -> list[str]:
    """List every way `blocks` breaks the Block Kit limits; empty when valid."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list):
        return ["blocks: expected a list"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"blocks: {len(blocks)}, more than {max_blocks}")
    block_ids = [block.get("block_id") for block in blocks if block.get("block_id")]
    if len(set(block_ids)) != len(block_ids):
        problems.append("blocks: block_id values repeat")
    for index, block in enumerate(blocks):
        _check_block(problems, f"blocks[{index}]", block)
    return problems


def view_problems(view: Any) -> list[str]:
    """List every way a modal or Home tab view breaks the Block Kit limits."""
    if isinstance(view, str):
        view = json.loads(view)
    problems = block_problems(view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        text = _text_of(view.get(key))
        _too_long(problems, f"view.{key}", text, MAX_VIEW_TITLE)
    if view.get("type") == "modal" and not _text_of(view.get("title")):
        problems.append("view.title: missing")
    _too_long(problems, "view.callback_id", view.get("callback_id", ""), MAX_ID)
    metadata = view.get("private_metadata", "")
    _too_long(problems, "view.private_metadata", metadata, MAX_PRIVATE_METADATA)
    return problems


class SlackStandin:
    """The stand-in server and what it recorded; start with `start()`."""

    def __init__(self, *, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, UploadedFile] = {}
        self.views: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}
        self._troubles: dict[str, list[_Trouble]] = {}
        self._lock = threading.RLock()
        self._clock = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval lets `stop()` return at once instead of in 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    # Set-up and tear-down.

    def start(self) -> SlackStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def response_url(self, name: str = "command") -> str:
        return self.base_url.replace("/api/", f"/response/{name}")

    # Telling it to misbehave.

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `ok: false` and `error`."""
        self._add_trouble(method, _Trouble(remaining=times, error=error))

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and `Retry-After`."""
        self._add_trouble(method, _Trouble(remaining=times, retry_after=retry_after))

    def slow_down(self, method: str, seconds: float, *, times: int = 1000) -> None:
        self._add_trouble(method, _Trouble(remaining=times, delay=seconds))

    def _add_trouble(self, method: str, trouble: _Trouble) -> None:
        with self._lock:
            self._troubles.setdefault(method, []).append(trouble)

    def _take_trouble(self, method: str) -> _Trouble | None:
        with self._lock:
            queue = self._troubles.get(method, [])
            while queue and queue[0].remaining <= 0:
                queue.pop(0)
            if not queue:
                return None
            queue[0].remaining -= 1
            return queue[0]

    # What it recorded.

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        with self._lock:
            return [
                message
                for message in self.messages.values()
                if message.channel == channel and message.thread_ts == thread_ts
            ]

    def top_level(self, channel: str) -> list[Message]:
        with self._lock:
            return [
                message
                for message in self.messages.values()
                if message.channel == channel and message.thread_ts is None
            ]

    def ephemerals_to(self, user: str) -> list[Ephemeral]:
        with self._lock:
            return [item for item in self.ephemerals if item.user == user]

    def shared_files(self, channel: str, thread_ts: str) -> list[UploadedFile]:
        with self._lock:
            return [
                item
                for item in self.files.values()
                if item.completed
                and item.channel == channel
                and item.thread_ts == thread_ts
            ]

    def iter_block_sets(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Every block list sent in a message post or update, with the method."""
        with self._lock:
            calls = list(self.calls)
        for call in calls:
            blocks = call.params.get("blocks")
            if blocks:
                yield (
                    call.method,
                    json.loads(blocks) if isinstance(blocks, str) else blocks,
                )

    # Answers.

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            result: dict[str, Any] = handler(params)
            return result

    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._clock)}.{next(self._clock):06d}"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "invoices",
            "team_id": "T0STANDIN",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }

    def _message_problems(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        text = params.get("text") or ""
        blocks = params.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(text) > MAX_MESSAGE_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        if blocks:
            problems = block_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
            if problems:
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
        return None

    def _blocks(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_problems(params)
        if problem is not None:
            return problem
        thread_ts = params.get("thread_ts") or None
        channel = params["channel"]
        if thread_ts is not None and (channel, thread_ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._next_ts()
        message = Message(
            channel, ts, params.get("text") or "", self._blocks(params), thread_ts
        )
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_problems(params)
        if problem is not None:
            return problem
        message = self.messages.get((params["channel"], params.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = params.get("text") or message.text
        message.blocks = self._blocks(params)
        message.updates += 1
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_problems(params)
        if problem is not None:
            return problem
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        self.ephemerals.append(
            Ephemeral(
                params["channel"],
                params["user"],
                params.get("text") or "",
                self._blocks(params),
            )
        )
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        """Link a message as Slack does; a reply's link names its thread."""
        channel = params.get("channel") or ""
        if not any(key[0] == channel for key in self.messages):
            return {"ok": False, "error": "channel_not_found"}
        message = self.messages.get((channel, params.get("message_ts") or ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        link = (
            f"https://standin.slack.com/archives/{channel}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts is not None:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return self._record_view(params)

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("user_id"):
            return {"ok": False, "error": "user_not_found"}
        return self._record_view(params)

    def _record_view(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view") or {}
        view = json.loads(view) if isinstance(view, str) else view
        problems = view_problems(view)
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        self.views.append({**view, "_params": params})
        return {"ok": True, "view": {"id": f"V{len(self.views):05d}", **view}}

    def _files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename") or ""
        length = int(params.get("length") or 0)
        if not filename or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        self.files[file_id] = UploadedFile(file_id, filename, filename)
        upload_url = self.base_url.replace("/api/", f"/upload/{file_id}")
        return {"ok": True, "upload_url": upload_url, "file_id": file_id}

    def store_upload(self, file_id: str, content: bytes) -> bool:
        with self._lock:
            item = self.files.get(file_id)
            if item is None:
                return False
            item.content = content
            return True

    def _files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = params.get("files") or "[]"
        entries = json.loads(entries) if isinstance(entries, str) else entries
        shared = []
        for entry in entries:
            item = self.files.get(entry.get("id", ""))
            if item is None or not item.content:
                return {"ok": False, "error": "file_not_found"}
            item.title = entry.get("title") or item.filename
            item.channel = params.get("channel_id") or ""
            item.thread_ts = params.get("thread_ts") or None
            item.completed = True
            shared.append({"id": item.id, "name": item.filename, "title": item.title})
        return {"ok": True, "files": shared}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("usergroup") or ""
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}


def _handler_for(standin: SlackStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            headers = {key.lower(): value for key, value in self.headers.items()}
            if path.startswith("/api/"):
                self._api(path.removeprefix("/api/"), b"", headers)
            else:
                self._send(404, {"ok": False, "error": "not_found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}

            if path.startswith("/upload/"):
                self._upload(path.removeprefix("/upload/"), raw, headers)
            elif path.startswith("/response/"):
                self._response_url(raw, headers)
            elif path.startswith("/api/"):
                self._api(path.removeprefix("/api/"), raw, headers)
            else:
                self._send(404, {"ok": False, "error": "not_found"})

        def _params(self, raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
            if headers.get("content-type", "").startswith("application/json"):
                loaded = json.loads(raw or b"{}")
                return dict(loaded) if isinstance(loaded, dict) else {}
            query = dict(parse_qsl(urlsplit(self.path).query))
            body = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            return {**query, **body}

        def _trouble(self, method: str, call: Call) -> bool:
            trouble = standin._take_trouble(method)
            if trouble is None:
                return False
            if trouble.delay:
                time.sleep(trouble.delay)
                return False
            if trouble.retry_after:
                call.status = 429
                call.response = {"ok": False, "error": "ratelimited"}
                self._send(
                    429, call.response, {"Retry-After": str(trouble.retry_after)}
                )
                return True
            call.response = {"ok": False, "error": trouble.error}
            self._send(200, call.response)
            return True

        def _api(self, method: str, raw: bytes, headers: dict[str, str]) -> None:
            params = self._params(raw, headers)
            call = Call(method, params, headers)
            with standin._lock:
                standin.calls.append(call)
            if self._trouble(method, call):
                return
            token = headers.get("authorization", "").removeprefix("Bearer ")
            token = token or str(params.get("token", ""))
            if token != standin.bot_token:
                call.response = {"ok": False, "error": "invalid_auth"}
            else:
                call.response = standin.answer(method, params)
            self._send(200, call.response)

        def _upload(self, file_id: str, raw: bytes, headers: dict[str, str]) -> None:
            call = Call("upload", {"file_id": file_id, "size": len(raw)}, headers)
            with standin._lock:
                standin.calls.append(call)
            if self._trouble("upload", call):
                return
            if not standin.store_upload(file_id, raw):
                self._send(404, {"ok": False, "error": "file_not_found"})
                return
            body = f"OK - {len(raw)}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _response_url(self, raw: bytes, headers: dict[str, str]) -> None:
            payload = json.loads(raw or b"{}")
            call = Call("response_url", payload, headers)
            with standin._lock:
                standin.calls.append(call)
                standin.responses.append(payload)
            blocks = payload.get("blocks")
            if blocks and block_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS):
                self._send(200, {"ok": False, "error": "invalid_blocks"})
                return
            self._send(200, {"ok": True})

        def _send(
            self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
