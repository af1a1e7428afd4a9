"""A local Telegram Bot API emulator: real python-telegram-bot HTTP traffic, no network, no real bot."""

from bot.emulator.html_entities import EntityParseError, ParsedText, html_to_plain, parse_entities, parse_html
from bot.emulator.server import (
    ApiError,
    BotApiEmulator,
    CallbackAnswer,
    ChatAction,
    EmulatorEvent,
    MessageEdit,
    SentMessage,
)
from bot.emulator.thread import EmulatorThread

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "CallbackAnswer",
    "ChatAction",
    "EmulatorEvent",
    "EmulatorThread",
    "EntityParseError",
    "MessageEdit",
    "ParsedText",
    "SentMessage",
    "html_to_plain",
    "parse_entities",
    "parse_html",
]
