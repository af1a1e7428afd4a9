"""A local Telegram Bot API server for tests and the offline demo.

The real python-telegram-bot HTTP stack talks to it unchanged (``base_url``/``base_file_url``), so tests
exercise the same request encoding, error mapping and polling loop as production. It checks what Telegram
checks - with Telegram's own error descriptions - because the point is to catch the bot's mistakes
(unescaped HTML, over-long texts, 65-byte callback data...) before Telegram does.

State lives on the event loop that runs the server. The inspection/injection methods are plain functions
meant to be called from that loop (an async test, the console); other threads go through
:class:`bot.emulator.thread.EmulatorThread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import mimetypes
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web

from bot.emulator.html_entities import (
    EntityParseError,
    ParsedText,
    parse_entities,
    strip_whitespace,
    utf16_len,
)

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "CallbackAnswer",
    "ChatAction",
    "EmulatorEvent",
    "MessageEdit",
    "SentMessage",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
JSON = dict[str, Any]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_COMMANDS = 100
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
# tdlib's bot-command pattern: not glued to a word or to / < >, optional @botname of 3..32 chars.
_BOT_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
_PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})
# Update types Telegram delivers when allowed_updates is empty/unset.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_BUTTON_ACTIONS = frozenset({
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
})
_URL_SCHEMES = frozenset({"http", "https", "tg", "ton"})
_NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly the "
                 "same as a current content and reply markup of the message")
_CONFLICT = ("Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
             "running")


class ApiError(Exception):
    """A Bot API error response: HTTP status = ``error_code``, body ``{"ok": false, ...}``."""

    def __init__(self, error_code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------- records


@dataclass
class MessageEdit:
    """One successful edit: the content the message had *after* it (text/caption as displayed)."""

    date: int
    text: str | None
    caption: str | None
    raw_text: str | None
    parse_mode: str | None
    reply_markup: JSON | None


@dataclass
class SentMessage:
    """A message the bot sent. Live object: edits and deletion update it in place.

    ``text``/``caption`` are what the chat shows - markup parsed away, entities unescaped, exactly what
    PTB's ``Message.text`` would hold; ``entities`` describe their formatting. ``raw_text`` is the text or
    caption exactly as the bot sent it (HTML included), to be read together with ``parse_mode``.
    """

    chat_id: int
    message_id: int
    text: str = ""
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    kind: Literal["text", "document", "photo"] = "text"
    caption: str | None = None
    filename: str | None = None
    data: bytes = b""
    edits: list[MessageEdit] = field(default_factory=list)
    deleted: bool = False
    date: int = 0
    entities: list[JSON] = field(default_factory=list)
    raw_text: str | None = None
    mime_type: str | None = None
    file_id: str | None = None
    reply_to_message_id: int | None = None

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row by row flattened (empty without an inline keyboard)."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    def snapshot(self) -> SentMessage:
        """A copy that later edits won't change (events carry these, so a printer sees each version)."""
        clone = copy.copy(self)
        clone.edits = list(self.edits)
        return clone


@dataclass
class CallbackAnswer:
    """What the bot passed to answerCallbackQuery, with the query it answered.

    Also readable like the request's parameter dict (``answer.get("text")``, ``answer["show_alert"]``).
    """

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    chat_id: int | None
    message_id: int | None
    data: str | None

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.__dataclass_fields__ else default


@dataclass
class ChatAction:
    chat_id: int
    action: str
    date: int


@dataclass
class EmulatorEvent:
    """Pushed to subscribers: ``kind`` is "sent", "edited", "deleted" or "callback_answer"."""

    kind: Literal["sent", "edited", "deleted", "callback_answer"]
    chat_id: int | None
    message: SentMessage | None = None
    answer: CallbackAnswer | None = None


@dataclass
class _Failure:
    error_code: int
    description: str
    parameters: JSON | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    filename: str
    mime_type: str
    data: bytes
    path: str


@dataclass
class _PendingQuery:
    chat_id: int
    message_id: int
    data: str
    answered: bool = False


@dataclass
class _Upload:
    filename: str
    content_type: str
    data: bytes


# ------------------------------------------------------------------------------------------- params


class _Params:
    """Request parameters from query string, form, multipart or JSON, with Telegram-style coercion.

    PTB sends everything as form fields: strings as-is, other values JSON-encoded (``"123"``, ``"true"``,
    ``'{"inline_keyboard": ...}'``), and files as multipart parts. JSON bodies carry real types instead.
    """

    def __init__(self, values: dict[str, Any], uploads: dict[str, _Upload]) -> None:
        self.values = values
        self.uploads = uploads

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def get_float(self, name: str, default: float = 0.0) -> float:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, error: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(error) from None


async def _read_params(request: web.Request) -> _Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, _Upload] = {}
    if request.method != "POST" or not request.can_read_body:
        return _Params(values, uploads)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad("can't parse JSON request body") from None
        if isinstance(body, dict):
            values.update(body)
        return _Params(values, uploads)
    form = await request.post()  # urlencoded and multipart alike
    for key, value in form.items():
        if isinstance(value, web.FileField):
            uploads[key] = _Upload(value.filename, value.content_type, value.file.read())
        else:
            values[key] = value
    return _Params(values, uploads)


# ----------------------------------------------------------------------------------------- emulator

_Handler = Callable[[_Params], Awaitable[Any]]


class BotApiEmulator:
    """An in-process Telegram Bot API server with an injection/inspection API for tests.

    ``strict_ampersand``: report a bare ``&`` in HTML text (Telegram shows it literally; see
    :mod:`bot.emulator.html_entities` for why the default is to complain).
    ``known_chats``: private chats whose user has already started the bot (e.g. the admin), so the bot may
    write first; any other chat must :meth:`inject_message` or :meth:`add_chat` before it can be messaged.
    """

    def __init__(self, token: str, bot_username: str = "aistack_demo_bot", *, bot_name: str = "AI Stack",
                 strict_ampersand: bool = True, known_chats: Iterable[int] = ()) -> None:
        self.token = token
        self.bot_username = bot_username
        self.strict_ampersand = strict_ampersand
        head = token.split(":", 1)[0]
        self.bot_user: JSON = {"id": int(head) if head.isdigit() else 1, "is_bot": True,
                               "first_name": bot_name, "username": bot_username}
        # What tests inspect.
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: list[JSON] = []
        self.commands_by_scope: dict[str, list[JSON]] = {}
        self.chat_actions: list[ChatAction] = []
        self.calls: Counter[str] = Counter()
        self.allowed_updates: list[str] | None = None
        self.webhook_url = ""
        # Internal state.
        self._sent: list[SentMessage] = []
        self._bot_messages: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._queries: dict[str, _PendingQuery] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._queues: list[asyncio.Queue[EmulatorEvent]] = []
        self._listeners: list[Callable[[EmulatorEvent], None]] = []
        # Wake-ups: each is set once and replaced, so every waiter sees every change without polling.
        self._updates_event = asyncio.Event()
        self._changed_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host = "127.0.0.1"
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler) for name, handler in self._method_table().items()
        }
        for chat_id in known_chats:
            self.add_chat(chat_id)

    # ---------------------------------------------------------------------------- lifecycle & urls

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (0 = a free port); returns once the socket listens."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        # Telegram accepts 50 MB uploads; aiohttp's default body limit is 1 MB.
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a long poll whose client went away (PTB cancelling its polling task) must
        # stop waiting, otherwise it would later see a "newer" poll as a second bot instance.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._host = host
        log.info("Bot API emulator listening on http://%s:%s", host, self._port)

    async def stop(self) -> None:
        """Release waiting long polls and close the server."""
        self._closing = True
        self._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """PTB's ``base_url`` form: PTB appends the token and then ``/method``."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self._host}:{self.port}/file/bot"

    # ---------------------------------------------------------------------------- injection API

    def add_chat(self, chat_id: int, *, chat_type: str = "private", username: str | None = "admin",
                 first_name: str = "Admin", title: str | None = None) -> JSON:
        """Make a chat known (as if its user had written to the bot) and return its Chat object."""
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name
                if username:
                    chat["username"] = username
            else:
                chat["title"] = title or f"Chat {chat_id}"
            self._chats[chat_id] = chat
        return chat

    def inject_message(self, chat_id: int, text: str, *, user_id: int | None = None,
                       username: str | None = "admin", first_name: str = "Admin",
                       chat_type: str = "private") -> int:
        """Queue a text message from a user, as Telegram would deliver it; returns its update_id.

        Commands get ``bot_command`` entities (CommandHandler relies on one at offset 0).
        ``user_id`` defaults to ``chat_id`` (private chats), or to ``abs(chat_id)`` for groups.
        """
        self._check_thread()
        chat = self.add_chat(chat_id, chat_type=chat_type, username=username, first_name=first_name)
        user = self._user(user_id if user_id is not None else abs(chat_id), username, first_name)
        message_id = self._new_message_id(chat_id)
        message: JSON = {"message_id": message_id, "date": _now(), "chat": chat, "from": user, "text": text}
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        self._user_messages[(chat_id, message_id)] = message
        return self._enqueue("message", message)

    def press_button(self, chat_id: int, message_id: int, callback_data: str, *, user_id: int | None = None,
                     username: str | None = "admin", first_name: str = "Admin") -> str:
        """Press an inline button of a bot message; returns the callback query id.

        Raises ValueError if the message does not exist (or was deleted) or has no button with that data -
        a real user cannot press a button that isn't there.
        """
        self._check_thread()
        msg = self._bot_messages.get((chat_id, message_id))
        if msg is None or msg.deleted:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        if callback_data not in [b.get("callback_data") for b in msg.buttons]:
            offered = [b.get("callback_data") for b in msg.buttons if "callback_data" in b]
            raise ValueError(f"message {message_id} has no button with callback_data {callback_data!r} "
                             f"(it has {offered})")
        query_id = str(4_000_000_000_000 + next(self._query_ids))
        self._queries[query_id] = _PendingQuery(chat_id, message_id, callback_data)
        user = self._user(user_id if user_id is not None else abs(chat_id), username, first_name)
        self._enqueue("callback_query", {
            "id": query_id, "from": user, "message": self._message_json(msg),
            "chat_instance": str(abs(chat_id) * 7919), "data": callback_data,
        })
        return query_id

    def fail_next(self, method: str, times: int = 1, error_code: int | None = None,
                  description: str | None = None, retry_after: int | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail the way Telegram does.

        With ``retry_after``: 429 "Too Many Requests: retry after N" with ``parameters.retry_after``
        (PTB raises RetryAfter). Otherwise ``error_code`` (default 500) and ``description``.
        """
        if retry_after is not None:
            failure = _Failure(error_code or 429,
                               description or f"Too Many Requests: retry after {retry_after}",
                               {"retry_after": retry_after})
        else:
            failure = _Failure(error_code or 500, description or "Internal Server Error", None)
        self._failures.setdefault(method.lower(), deque()).extend([failure] * times)

    # --------------------------------------------------------------------------- inspection API

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent (deleted ones included, flagged), in order; live objects."""
        return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def last_sent(self, chat_id: int | None = None) -> SentMessage | None:
        messages = self.sent(chat_id)
        return messages[-1] if messages else None

    def pending_updates(self) -> int:
        """Updates queued but not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every state change); return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            event = self._changed_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_sent(self, count: int, chat_id: int | None = None,
                            timeout: float = 10.0) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``); return all of them."""
        try:
            await self.wait_until(lambda: len(self.sent(chat_id)) >= count, timeout)
        except TimeoutError:
            texts = [m.text or m.filename for m in self.sent(chat_id)]
            raise TimeoutError(f"expected {count} message(s) to chat {chat_id} within {timeout}s, "
                               f"got {len(texts)}: {texts}") from None
        return self.sent(chat_id)

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[EmulatorEvent]:
        """A queue receiving every sent/edited/deleted message and callback answer from now on."""
        queue: asyncio.Queue[EmulatorEvent] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[EmulatorEvent]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def add_listener(self, callback: Callable[[EmulatorEvent], None]) -> None:
        """Call ``callback(event)`` (on the emulator's loop) for every event; see :meth:`subscribe`."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[EmulatorEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    # ------------------------------------------------------------------------------- HTTP layer

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if path.startswith("file/bot"):
            return self._serve_file(path[len("file/bot"):])
        if not path.startswith("bot"):
            return _json_response(ApiError(404, "Not Found").body(), 404)
        token, _, method = path[len("bot"):].partition("/")
        if token != self.token:
            return _json_response(ApiError(401, "Unauthorized").body(), 401)
        entry = self._methods.get(method.lower())
        if entry is None:
            return _json_response(ApiError(404, "Not Found").body(), 404)
        name, handler = entry
        self.calls[name] += 1
        try:
            self._maybe_fail(method)
            result = await handler(await _read_params(request))
        except ApiError as err:
            log.debug("emulator %s -> %s %s", name, err.error_code, err.description)
            return _json_response(err.body(), err.error_code)
        except Exception:  # an emulator bug: answer like Telegram's 500 and keep the traceback in the log
            log.exception("emulator failed handling %s", name)
            return _json_response(ApiError(500, "Internal Server Error").body(), 500)
        finally:
            self._notify_changed()
        return _json_response({"ok": True, "result": result}, 200)

    def _maybe_fail(self, method: str) -> None:
        queue = self._failures.get(method.lower())
        if queue:
            failure = queue.popleft()
            raise ApiError(failure.error_code, failure.description, failure.parameters)

    def _serve_file(self, rest: str) -> web.StreamResponse:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return _json_response(ApiError(401, "Unauthorized").body(), 401)
        stored = self._files_by_path.get(file_path)
        if stored is None:
            return _json_response(ApiError(404, "Not Found").body(), 404)
        return web.Response(body=stored.data, content_type=stored.mime_type)

    def _method_table(self) -> dict[str, _Handler]:
        return {
            "getMe": self._get_me, "logOut": self._true, "close": self._true,
            "getUpdates": self._get_updates, "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook, "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message, "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup, "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query, "sendDocument": self._send_document,
            "sendPhoto": self._send_photo, "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands, "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands, "getFile": self._get_file,
        }

    # ----------------------------------------------------------------------------- basic methods

    async def _true(self, p: _Params) -> bool:
        return True

    async def _get_me(self, p: _Params) -> JSON:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    async def _set_webhook(self, p: _Params) -> bool:
        self.webhook_url = p.get_str("url") or ""
        return True

    async def _delete_webhook(self, p: _Params) -> bool:
        self.webhook_url = ""
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, p: _Params) -> JSON:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _get_updates(self, p: _Params) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use "
                                "deleteWebhook to delete the webhook first")
        offset = p.get_int("offset", 0) or 0
        limit = min(max(p.get_int("limit", 100) or 100, 1), 100)
        timeout = max(p.get_float("timeout", 0.0), 0.0)
        allowed = p.get_json("allowed_updates", "can't parse allowed_updates JSON array")
        if allowed is not None:
            self.allowed_updates = list(allowed) or None
        self._confirm(offset)
        # Telegram ends an older long poll when a newer one arrives; it sees a 409 Conflict.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, _CONFLICT)
            remaining = deadline - loop.time()
            if self._updates or remaining <= 0 or self._closing:
                return self._updates[:limit]
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        before = len(self._updates)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if len(self._updates) != before:
            self._notify_changed()

    # --------------------------------------------------------------------------- sending messages

    async def _send_message(self, p: _Params) -> JSON:
        text = p.get_str("text")
        if not text:
            raise _bad("message text is empty")
        parse_mode = p.get_str("parse_mode") or None
        parsed = self._parse(text, parse_mode, p, "entities", MAX_TEXT, "message is too long",
                             "message must be non-empty")
        markup = self._reply_markup(p)
        chat = self._chat(p)
        reply_to = self._reply_to(p, chat["id"])
        msg = SentMessage(chat_id=chat["id"], message_id=self._new_message_id(chat["id"]), text=parsed.text,
                          parse_mode=parse_mode, reply_markup=markup, date=_now(), entities=parsed.entities,
                          raw_text=text, reply_to_message_id=reply_to)
        return self._store(msg)

    async def _send_document(self, p: _Params) -> JSON:
        return await self._send_file(p, "document")

    async def _send_photo(self, p: _Params) -> JSON:
        return await self._send_file(p, "photo")

    async def _send_file(self, p: _Params, kind: Literal["document", "photo"]) -> JSON:
        stored = self._input_file(p, kind)
        caption = p.get_str("caption") or None
        parse_mode = p.get_str("parse_mode") or None
        parsed = ParsedText("")
        if caption:
            parsed = self._parse(caption, parse_mode, p, "caption_entities", MAX_CAPTION,
                                 "message caption is too long", None)
        markup = self._reply_markup(p)
        chat = self._chat(p)
        msg = SentMessage(chat_id=chat["id"], message_id=self._new_message_id(chat["id"]), kind=kind,
                          caption=parsed.text or None, parse_mode=parse_mode, reply_markup=markup,
                          date=_now(), filename=stored.filename, data=stored.data, mime_type=stored.mime_type,
                          file_id=stored.file_id, entities=parsed.entities, raw_text=caption,
                          reply_to_message_id=self._reply_to(p, chat["id"]))
        return self._store(msg)

    def _input_file(self, p: _Params, kind: str) -> _StoredFile:
        """The uploaded part, an ``attach://`` reference to one, or a file_id sent before."""
        upload = p.uploads.get(kind)
        reference = p.get_str(kind)
        if upload is None and reference and reference.startswith("attach://"):
            upload = p.uploads.get(reference[len("attach://"):])
        if upload is not None:
            if not upload.data:
                raise _bad("file must be non-empty")
            return self._store_file(upload, kind)
        if reference and reference in self._files:
            return self._files[reference]
        if reference:
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {kind} in the request")

    def _store_file(self, upload: _Upload, kind: str) -> _StoredFile:
        n = next(self._file_ids)
        filename = upload.filename or f"file_{n}"
        mime = upload.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        folder = "photos" if kind == "photo" else "documents"
        stored = _StoredFile(f"emu-{kind}-{n}", f"emu-u{n}", filename, mime, upload.data,
                             f"{folder}/file_{n}{_suffix(filename)}")
        self._files[stored.file_id] = stored
        self._files_by_path[stored.path] = stored
        return stored

    async def _get_file(self, p: _Params) -> JSON:
        stored = self._files.get(p.get_str("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.path}

    async def _send_chat_action(self, p: _Params) -> bool:
        action = p.get_str("action") or ""
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        chat = self._chat(p)
        self.chat_actions.append(ChatAction(chat["id"], action, _now()))
        return True

    # ------------------------------------------------------------------------------------ editing

    async def _edit_message_text(self, p: _Params) -> JSON:
        text = p.get_str("text")
        if not text:
            raise _bad("message text is empty")
        parse_mode = p.get_str("parse_mode") or None
        parsed = self._parse(text, parse_mode, p, "entities", MAX_TEXT, "message is too long",
                             "message must be non-empty")
        markup = self._reply_markup(p)  # absent = the keyboard is removed, as on Telegram
        msg = self._message_to_edit(p)
        if msg.kind != "text":
            raise _bad("there is no text in the message to edit")
        if (parsed.text, parsed.entities, markup) == (msg.text, msg.entities, msg.reply_markup):
            raise _bad(_NOT_MODIFIED)
        msg.text, msg.raw_text, msg.parse_mode, msg.entities = parsed.text, text, parse_mode, parsed.entities
        msg.reply_markup = markup
        return self._record_edit(msg)

    async def _edit_message_caption(self, p: _Params) -> JSON:
        caption = p.get_str("caption") or None
        parse_mode = p.get_str("parse_mode") or None
        parsed = ParsedText("")
        if caption:
            parsed = self._parse(caption, parse_mode, p, "caption_entities", MAX_CAPTION,
                                 "message caption is too long", None)
        markup = self._reply_markup(p)
        msg = self._message_to_edit(p)
        if msg.kind == "text":
            raise _bad("there is no caption in the message to edit")
        if (parsed.text or None, parsed.entities, markup) == (msg.caption, msg.entities, msg.reply_markup):
            raise _bad(_NOT_MODIFIED)
        msg.caption, msg.raw_text, msg.parse_mode, msg.entities = parsed.text or None, caption, parse_mode, \
            parsed.entities
        msg.reply_markup = markup
        return self._record_edit(msg)

    async def _edit_message_reply_markup(self, p: _Params) -> JSON:
        markup = self._reply_markup(p)
        msg = self._message_to_edit(p)
        if markup == msg.reply_markup:
            raise _bad(_NOT_MODIFIED)
        msg.reply_markup = markup
        return self._record_edit(msg)

    def _message_to_edit(self, p: _Params) -> SentMessage:
        if p.has("inline_message_id"):
            raise _bad("message to edit not found")  # inline mode is not emulated
        chat = self._chat(p)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        key = (chat["id"], message_id)
        if key in self._user_messages:
            raise _bad("message can't be edited")
        msg = self._bot_messages.get(key)
        if msg is None or msg.deleted:
            raise _bad("message to edit not found")
        return msg

    def _record_edit(self, msg: SentMessage) -> JSON:
        msg.edits.append(MessageEdit(_now(), msg.text if msg.kind == "text" else None, msg.caption,
                                     msg.raw_text, msg.parse_mode, msg.reply_markup))
        self._emit(EmulatorEvent("edited", msg.chat_id, message=msg.snapshot()))
        return self._message_json(msg)

    async def _delete_message(self, p: _Params) -> bool:
        chat = self._chat(p)
        key = (chat["id"], p.get_int("message_id") or 0)
        if self._user_messages.pop(key, None) is not None:
            return True
        msg = self._bot_messages.get(key)
        if msg is None or msg.deleted:
            raise _bad("message to delete not found")
        msg.deleted = True
        self._emit(EmulatorEvent("deleted", msg.chat_id, message=msg.snapshot()))
        return True

    # --------------------------------------------------------------------------- callbacks, commands

    async def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        if query is None or query.answered:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        query.answered = True
        answer = CallbackAnswer(query_id, p.get_str("text"), p.get_bool("show_alert"), p.get_str("url"),
                                p.get_int("cache_time"), query.chat_id, query.message_id, query.data)
        self.callback_answers.append(answer)
        self._emit(EmulatorEvent("callback_answer", query.chat_id, answer=answer))
        return True

    async def _set_my_commands(self, p: _Params) -> bool:
        commands = p.get_json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            _check_command(command)
        cleaned = [{"command": c["command"], "description": c["description"]} for c in commands]
        self.commands_by_scope[self._scope_key(p)] = cleaned
        self.commands = cleaned
        return True

    async def _get_my_commands(self, p: _Params) -> list[JSON]:
        return self.commands_by_scope.get(self._scope_key(p), [])

    async def _delete_my_commands(self, p: _Params) -> bool:
        key = self._scope_key(p)
        self.commands_by_scope.pop(key, None)
        if key == self._scope_key(_Params({}, {})):
            self.commands = []
        return True

    def _scope_key(self, p: _Params) -> str:
        scope = p.get_json("scope", "can't parse BotCommandScope JSON object") or {"type": "default"}
        if scope.get("type") in ("chat", "chat_administrators", "chat_member"):
            self._chat_by_ref(scope.get("chat_id"))
        return json.dumps([scope, p.get_str("language_code") or ""], sort_keys=True)

    # ------------------------------------------------------------------------------------ helpers

    def _parse(self, text: str, parse_mode: str | None, p: _Params, entities_field: str, limit: int,
               too_long: str, empty: str | None) -> ParsedText:
        """Telegram's order: parse entities, trim, then check emptiness and the length limit."""
        if parse_mode and parse_mode.lower() not in _PARSE_MODES:
            raise _bad("unsupported parse_mode")
        if parse_mode:
            try:
                parsed = parse_entities(text, parse_mode, strict_ampersand=self.strict_ampersand)
            except EntityParseError as err:
                raise _bad(f"can't parse entities: {err}") from None
        else:
            given = p.get_json(entities_field, f"can't parse {entities_field} JSON object") or []
            parsed = ParsedText(text, list(given))
        parsed = strip_whitespace(parsed)
        if not parsed.text and empty:
            raise _bad(empty)
        if len(parsed.text) > limit:
            raise _bad(too_long)
        return parsed

    def _reply_markup(self, p: _Params) -> JSON | None:
        markup = p.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
        return markup

    def _chat(self, p: _Params) -> JSON:
        if not p.has("chat_id"):
            raise _bad("chat_id is empty")
        return self._chat_by_ref(p.values["chat_id"])

    def _chat_by_ref(self, ref: Any) -> JSON:
        if isinstance(ref, str) and ref.startswith("@"):
            for chat in self._chats.values():
                if chat.get("username", "").lower() == ref[1:].lower():
                    return chat
            raise _bad("chat not found")
        try:
            chat_id = int(ref)
        except (TypeError, ValueError):
            raise _bad("chat not found") from None
        known = self._chats.get(chat_id)
        if known is None:
            raise _bad("chat not found")
        return known

    def _reply_to(self, p: _Params, chat_id: int) -> int | None:
        params = p.get_json("reply_parameters", "can't parse reply parameters JSON object") or {}
        message_id = params.get("message_id") if params else p.get_int("reply_to_message_id")
        if message_id is None:
            return None
        message_id = int(message_id)
        allow_missing = bool(params.get("allow_sending_without_reply")) \
            or p.get_bool("allow_sending_without_reply")
        key = (chat_id, message_id)
        bot_message = self._bot_messages.get(key)
        exists = key in self._user_messages or (bot_message is not None and not bot_message.deleted)
        if not exists:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return message_id

    def _store(self, msg: SentMessage) -> JSON:
        self._sent.append(msg)
        self._bot_messages[(msg.chat_id, msg.message_id)] = msg
        self._emit(EmulatorEvent("sent", msg.chat_id, message=msg.snapshot()))
        return self._message_json(msg)

    def _message_json(self, msg: SentMessage) -> JSON:
        """The Message object Telegram would return / embed in a callback query."""
        data: JSON = {"message_id": msg.message_id, "date": msg.date, "chat": self._chats[msg.chat_id],
                      "from": self.bot_user}
        if msg.kind == "text":
            data["text"] = msg.text
        elif msg.caption:
            data["caption"] = msg.caption
        if msg.entities:
            data["entities" if msg.kind == "text" else "caption_entities"] = msg.entities
        if msg.kind == "document":
            data["document"] = {"file_id": msg.file_id, "file_unique_id": f"u-{msg.file_id}",
                                "file_name": msg.filename, "mime_type": msg.mime_type,
                                "file_size": len(msg.data)}
        elif msg.kind == "photo":
            data["photo"] = [{"file_id": msg.file_id, "file_unique_id": f"u-{msg.file_id}", "width": 0,
                              "height": 0, "file_size": len(msg.data)}]
        if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
            data["reply_markup"] = msg.reply_markup  # Telegram echoes only inline keyboards
        if msg.edits:
            data["edit_date"] = msg.edits[-1].date
        replied = self._user_messages.get((msg.chat_id, msg.reply_to_message_id or 0))
        if replied is not None:
            data["reply_to_message"] = replied
        return data

    def _user(self, user_id: int, username: str | None, first_name: str) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        return user

    def _new_message_id(self, chat_id: int) -> int:
        """Message ids are per chat and shared by both sides, as in private chats on Telegram."""
        self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 0) + 1
        return self._next_message_id[chat_id]

    def _enqueue(self, kind: str, payload: JSON) -> int:
        update_id = next(self._update_ids)
        allowed = self.allowed_updates
        if (kind in allowed) if allowed else (kind not in _OPT_IN_UPDATES):
            self._updates.append({"update_id": update_id, kind: payload})
            self._wake_pollers()
            self._notify_changed()
        return update_id

    def _emit(self, event: EmulatorEvent) -> None:
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                log.exception("emulator listener failed")
        self._notify_changed()

    def _wake_pollers(self) -> None:
        self._updates_event.set()
        self._updates_event = asyncio.Event()

    def _notify_changed(self) -> None:
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    def _check_thread(self) -> None:
        """State is not locked: mutations must run on the server's loop (EmulatorThread does that)."""
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RuntimeError("call the emulator from its own event loop, or use EmulatorThread from other "
                               "threads")


# ------------------------------------------------------------------------------------- validation


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            _check_button(button)


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad("can't parse inline keyboard button: Text must be a String")
    if not _BUTTON_ACTIONS & button.keys():
        raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise _bad("BUTTON_DATA_INVALID")
    if "url" in button and not _valid_button_url(button["url"]):
        raise _bad("BUTTON_URL_INVALID")


def _valid_button_url(url: Any) -> bool:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    scheme, sep, _ = url.partition(":")
    return scheme.lower() in _URL_SCHEMES if sep and "." not in scheme else "." in url


def _check_command(command: Any) -> None:
    if not isinstance(command, dict):
        raise _bad("can't parse BotCommand JSON object")
    name, description = command.get("command"), command.get("description")
    if not isinstance(name, str) or not _COMMAND_RE.match(name):
        raise _bad("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
        raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")


def _command_entities(text: str) -> list[JSON]:
    return [{"type": "bot_command", "offset": utf16_len(text[:m.start()]), "length": utf16_len(m.group())}
            for m in _BOT_COMMAND_RE.finditer(text)]


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:] if 0 < dot < len(filename) - 1 and "/" not in filename[dot:] else ""


def _now() -> int:
    return int(time.time())


def _json_response(body: JSON, status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))
