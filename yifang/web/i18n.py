"""Languages of the pages: Chinese by default, English on request.

Messages live in one catalog file, ``messages.yaml`` beside this module, as
``key: {zh: ..., en: ...}``. The language of a request is, in order: ``?lang=``, the
``yifang_lang`` cookie (set when ``?lang=`` is used), the account's language, then
``YIFANG_LANGUAGE`` (default ``zh``). A missing translation falls back to Chinese, then to
the key itself, so a gap shows up on the page rather than breaking it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request

from yifang.core.settings import get_settings

LANGUAGES = ("zh", "en")
LANG_COOKIE = "yifang_lang"
MESSAGES_FILE = Path(__file__).parent / "messages.yaml"

Translator = Callable[..., str]


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    """The message catalog: key → {language → text}."""
    data = yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8")) or {}
    return {str(k): {str(lang): str(text) for lang, text in v.items()} for k, v in data.items()}


def translate(key: str, lang: str, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``{name}`` placeholders filled from ``params``."""
    entry = messages().get(key)
    text = key if entry is None else entry.get(lang) or entry.get("zh") or key
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def translator(lang: str) -> Translator:
    """A ``t(key, **params)`` function bound to ``lang`` (for templates)."""

    def t(key: str, **params: Any) -> str:
        return translate(key, lang, **params)

    return t


def normalise(lang: str | None) -> str | None:
    """``lang`` if it is one of :data:`LANGUAGES` (``zh-CN`` counts as ``zh``), else None."""
    if not lang:
        return None
    short = lang.strip().lower()[:2]
    return short if short in LANGUAGES else None


def pick_language(request: Request, account_language: str | None = None) -> str:
    """The language to answer ``request`` in (see the module docstring for the order)."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        account_language,
        get_settings().language,
    ):
        lang = normalise(candidate)
        if lang:
            return lang
    return "zh"


def client_messages(lang: str, prefix: str = "js.") -> dict[str, str]:
    """The messages page scripts need (keys under ``prefix``), in ``lang``, prefix dropped."""
    return {
        key[len(prefix) :]: translate(key, lang) for key in messages() if key.startswith(prefix)
    }
