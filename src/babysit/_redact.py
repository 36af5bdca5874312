"""Secrets out of everything babysit shows or saves: URLs, configs, messages and logs.

Every place that prints, logs or writes a URL or a config goes through one of these:

    redact_url(url)            postgresql://user:***@host/db, whatever form the URL has
    redact_text(text)          every URL and ``password=...`` inside free text (errors, log lines), and every
                               password seen in a URL so far, wherever it appears
    redact_config(raw, ...)    a config dict safe to save: each secret replaced by ``***`` and, under the key
                               ``redacted``, where the secret lives (the original file, the command line, or an
                               environment variable), never the secret itself
    expand_env(text)           ``${NAME}`` / ``env:NAME`` references read from the environment at the moment of
                               use: a config that names its secret this way can be saved as it is

URL forms covered (each test plants a password in one): ``scheme://user:pw@host/db``, a password holding an
unencoded ``@``, ``/``, ``:`` or ``?``, a percent-encoded one, ``scheme://:pw@host``, ``?password=pw`` (and
``pass``, ``pwd``, ``secret``, ``token``, ``sslpassword``, ``api_key`` ...), several hosts, a URL SQLAlchemy
cannot parse, and libpq's ``host=h password=pw`` form. The parsing is babysit's own and conservative: when in
doubt it hides too much (a host), never too little.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "MASK",
    "RedactingFilter",
    "RewritingFilter",
    "expand_env",
    "has_secret",
    "redact_config",
    "redact_logs",
    "redact_text",
    "redact_url",
    "remember_secret",
]

MASK = "***"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
# a URL inside free text: a scheme, then everything up to white space or a closing quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_SECRET_WORDS = r"password|passwd|pwd|pass|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|sslpassword|auth"
# key=value (query strings, libpq DSNs) and key: value / "key": "value" (dicts, YAML, JSON) in free text
_KEY_VALUE = re.compile(
    rf"(?i)(?P<key>(?<![A-Za-z0-9_])(?:{_SECRET_WORDS}))(?P<sep>\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^&\s#;,)]+)"
)
_KEY_COLON = re.compile(
    rf"(?i)(?P<key>[\"']?(?<![A-Za-z0-9_])(?:{_SECRET_WORDS})[\"']?)(?P<sep>\s*:\s*)(?P<value>'[^']*'|\"[^\"]*\")"
)
# a secret query parameter of a URL: its value runs to the next & (it may hold an unencoded @, / or :)
_QUERY_SECRET = re.compile(rf"(?i)(?P<key>[?&;](?:{_SECRET_WORDS})=)(?P<value>[^&#\s]*)")
_SECRET_KEY = re.compile(rf"(?i)^(?:{_SECRET_WORDS})$|password|passwd|secret|api[_\-]?key|_token$|^token_")
_ENV_REF = re.compile(r"^\$\{(?P<a>[A-Za-z_][A-Za-z0-9_]*)\}$|^env:(?P<b>[A-Za-z_][A-Za-z0-9_]*)$")

_known: set[str] = set()  # passwords seen in URLs by this process: hidden wherever they turn up later
# too common to hide wherever they appear (every message would lose these words); URLs still hide them as passwords
_COMMON = {"password", "passwd", "secret", "postgres", "postgresql", "admin", "root", "test", "user", "babysit"}
_known_lock = threading.Lock()


def remember_secret(secret: str | None) -> None:
    """Hide ``secret`` (and its percent-decoded form) in every later :func:`redact_text` of this process."""
    if not secret or secret == MASK or len(secret) < 4 or secret.lower() in _COMMON:
        return  # too short or too common to hide in free text without mangling every message
    with _known_lock:
        _known.add(secret)
        decoded = unquote(secret)
        if len(decoded) >= 3:
            _known.add(decoded)


def env_reference(text: Any) -> str | None:
    """The variable a ``${NAME}`` or ``env:NAME`` reference names, else None."""
    if not isinstance(text, str):
        return None
    match = _ENV_REF.match(text.strip())
    return None if match is None else (match.group("a") or match.group("b"))


def expand_env(text: str | None, *, what: str = "storage") -> str | None:
    """``${NAME}`` or ``env:NAME`` -> the value of the environment variable NAME (anything else unchanged).

    Raises:
        ConfigError: the variable is not set (naming it, never a value).
    """
    name = env_reference(text)
    if name is None:
        return text
    value = os.environ.get(name)
    if not value:
        from babysit.errors import ConfigError

        raise ConfigError(f"{what} names the environment variable {name} (${{{name}}}), which is not set; "
                          f"export {name}=<url> first (the URL then never appears in a file or a command line).")
    _split_url(value)  # remember its password so that no message shows it
    return value


def _split_url(url: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme, user, password, after)`` of a URL with credentials, or None without any; ``after`` is the
    host and everything that follows. The user information ends at the *last* ``@`` (a password may hold an
    unencoded ``@``, ``/`` or ``?``); a query value holding an ``@`` makes it hide the host too, never less."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = match.group("rest")
    at = rest.rfind("@")
    if at < 0:
        return None
    userinfo, after = rest[:at], rest[at + 1:]
    user, sep, password = userinfo.partition(":")
    if sep and password not in user and password not in after:  # else it shows in the redacted URL anyway
        remember_secret(password)
    return match.group("scheme"), user, (password if sep else None), after


def redact_url(url: Any) -> str:
    """``url`` with its password and every secret query value replaced by ``***`` (any form; see the module)."""
    if url is None:
        return "in-memory"
    text = str(url)
    if _SCHEME.match(text):  # query secrets first: an @ in one must not be read as the end of a user name
        for match in _QUERY_SECRET.finditer(text):
            remember_secret(match.group("value"))
        text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)
    parts = _split_url(text)
    if parts is not None:
        scheme, user, password, after = parts
        text = f"{scheme}://{user}:{MASK}@{after}" if password is not None else f"{scheme}://{user}@{after}"
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)


def redact_text(text: Any) -> str:
    """``text`` with every URL redacted, every ``password=...`` / ``"token": "..."`` value hidden, and every
    password this process has seen in a URL replaced by ``***`` wherever it appears."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))
    out = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", out)
    out = _KEY_COLON.sub(lambda m: f"{m.group('key')}{m.group('sep')}\"{MASK}\"", out)
    return _hide_known(out)


def _hide_known(text: str) -> str:
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def has_secret(value: Any) -> bool:
    """Whether a string holds a secret that :func:`redact_text` would hide."""
    return isinstance(value, str) and env_reference(value) is None and redact_text(value) != value


def redact_config(
    raw: Mapping[str, Any], *, source: str | None = None, overridden: Iterable[str] = (),
) -> dict[str, Any]:
    """A copy of a config dict that is safe to save and show: every secret replaced by ``***``.

    A string value that holds a secret (a URL with a password, ``password=...``) is redacted; a value under a
    secret-like key (``password``, ``token``, ``api_key`` ...) is replaced whole; ``${NAME}`` references are kept
    (they hold no secret). When something was removed, the copy gets a table ``redacted`` that says, per
    dotted key, where the secret is: in ``source`` (the config file), on the command line (keys in
    ``overridden``), or nowhere babysit kept, with how to pass it from the environment instead.

    Example:
        >>> redact_config({"search": {"storage": "postgresql://u:pw@db/x"}}, source="cfg.toml")["search"]
        {'storage': 'postgresql://u:***@db/x'}
    """
    out = copy.deepcopy(dict(raw))
    out.pop("redacted", None)
    removed: list[str] = []
    _walk(out, "", removed)
    if removed:
        given = set(overridden)
        where: dict[str, str] = {}
        for key in removed:
            if key in given:
                where[key] = (f"given on the command line (--set {key}=...); not saved. Pass it as "
                              f"{key} = \"${{ENV_VAR}}\" to keep it in the environment.")
            elif source:
                where[key] = f"the secret is in {source} (key {key}); not copied here"
            else:
                where[key] = (f"not saved; give it again, e.g. as {key} = \"${{ENV_VAR}}\" with the value in the "
                              "environment")
        out["redacted"] = where
    return out


def _walk(node: Any, prefix: str, removed: list[str]) -> None:
    if isinstance(node, dict):
        for key in list(node):
            dotted = f"{prefix}.{key}" if prefix else str(key)
            value = node[key]
            if isinstance(value, (dict, list)):
                _walk(value, dotted, removed)
            elif isinstance(value, str) and env_reference(value) is None:
                if _SECRET_KEY.search(str(key)) and value:
                    node[key] = MASK
                    removed.append(dotted)
                else:
                    hidden = redact_text(value)
                    if hidden != value:
                        node[key] = hidden
                        removed.append(dotted)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                _walk(value, f"{prefix}[{i}]", removed)
            elif isinstance(value, str) and env_reference(value) is None:
                hidden = redact_text(value)
                if hidden != value:
                    node[i] = hidden
                    removed.append(f"{prefix}[{i}]")


class RewritingFilter:
    """A ``logging`` filter that passes every record with its formatted message (message and arguments) put
    through :meth:`rewrite`."""

    def rewrite(self, text: str) -> str:
        return text

    def filter(self, record: Any) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to logging's own error path
            return True
        rewritten = self.rewrite(message)
        if rewritten != message:
            record.msg, record.args = rewritten, ()
        return True


class RedactingFilter(RewritingFilter):
    """A ``logging`` filter that hides secrets in every record it passes."""

    def rewrite(self, text: str) -> str:
        return redact_text(text)


def redact_logs(handlers: Iterable[Any] | None = None) -> None:
    """Put a :class:`RedactingFilter` on ``handlers`` (default: the root logger's), once each."""
    import logging

    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
