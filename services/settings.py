"""The one settings object: environment variables and `.env`, validated once at start-up.

Every variable is documented in `.env.example`. A bad value raises `SettingsError` whose
message is one line naming the variable and what is wrong (the CLI turns it into exit code 2).
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TELEGRAM_API = "https://api.telegram.org"
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{10,}$")


class SettingsError(Exception):
    """A configuration value is missing or wrong; the message is one line for the user."""


def _expand(p: Path) -> Path:
    return Path(os.path.expandvars(str(p))).expanduser()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = None
    admin_chat_id: Annotated[tuple[int, ...], NoDecode] = ()
    telegram_base_url: str = TELEGRAM_API
    aistack_home: Path = Path("~/.local/share/aistack")
    database_url: str | None = None
    lore_root: Path | None = None
    lore_gemini_gap_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    claude_home: Path = Path("~/.claude")
    codex_home: Path = Path("~/.codex")
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    ollama_api_base: str = "http://127.0.0.1:11434"
    gateway_config: Path | None = None
    litellm_master_key: str | None = None  # the proxy's key (`gateway serve`); None: generated, kept in AISTACK_HOME
    proxy_default_client: str = "internal"  # a proxy call with no client tag and no key alias is booked here
    digest_time: time = time(8, 0)
    lore_import_time: time = time(3, 0)
    tz: str = "UTC"
    outbox_interval: float = Field(default=3.0, gt=0, le=300)
    sentinel_audit_dir: Path = Path("~/.claude/audit")
    sentinel_policy: Path | None = None
    sentinel_approval_wait: float = Field(default=0.0, ge=0, le=600)
    health_watch_interval: float = Field(default=0.0, ge=0, le=86400)  # 0: the bot does not watch

    @field_validator("telegram_bot_token", "anthropic_api_key", "openai_api_key", "anthropic_base_url",
                     "database_url", "litellm_master_key", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, v: str | None) -> str | None:
        if v is not None and not _TOKEN_RE.match(v.strip()):
            raise ValueError("must look like 123456:ABC-DEF… (the token @BotFather gave you)")
        return v.strip() if v else v

    @field_validator("admin_chat_id", mode="before")
    @classmethod
    def _parse_ids(cls, v: Any) -> Any:
        if isinstance(v, int):
            return (v,)
        if isinstance(v, str):
            parts = [p.strip() for p in v.split(",") if p.strip()]
            ids = []
            for p in parts:
                if not re.fullmatch(r"-?\d+", p):
                    raise ValueError(f"{p!r} is not a chat id; use integers separated by commas")
                ids.append(int(p))
            return tuple(ids)
        return v

    @field_validator("telegram_base_url", "ollama_api_base")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("proxy_default_client", mode="before")
    @classmethod
    def _client_name(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            return "internal"
        if isinstance(v, str) and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", v.strip()):
            raise ValueError(f"{v!r} is not a client name: use lower-case letters, digits, '-' and '_'")
        return v.strip() if isinstance(v, str) else v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        # libc also reads TZ and accepts ":Europe/Berlin" or a zoneinfo file path; take those too.
        v = v.strip().removeprefix(":")
        if "/zoneinfo/" in v:
            v = v.split("/zoneinfo/", 1)[1]
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Europe/Berlin") from None
        return v

    @field_validator("aistack_home", "claude_home", "codex_home", "lore_root", "gateway_config",
                     "sentinel_audit_dir", "sentinel_policy")
    @classmethod
    def _paths(cls, v: Path | None) -> Path | None:
        return _expand(v) if v is not None else None

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.aistack_home / 'aistack.db'}"
        elif not re.match(r"^(sqlite|postgresql)(\+\w+)?://", self.database_url):
            raise ValueError("DATABASE_URL: must start with sqlite:/// or postgresql://")
        if self.lore_root is None:
            self.lore_root = self.aistack_home / "lore"
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def db_url(self) -> str:
        assert self.database_url is not None  # set by _derived
        return self.database_url

    def bot_api_base(self) -> str:
        """Base URL in python-telegram-bot's form: `<server>/bot` (the token is appended)."""
        return self.telegram_base_url.removesuffix("/bot") + "/bot"

    def bot_file_base(self) -> str:
        return self.telegram_base_url.removesuffix("/bot") + "/file/bot"


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read settings; raise SettingsError with one line naming the bad variable."""
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        name = str(loc[0]).upper() if loc else ""
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if not name and ":" in msg:
            name, msg = (s.strip() for s in msg.split(":", 1))
        raise SettingsError(f"{name or 'settings'}: {msg}") from None
