"""Parsing and checking raw setting values, and masking secrets in them.

Each parser takes a raw value and whether it came as text (environment variables and
string flags are converted; TOML values must already have the right type), and returns
the typed value or raises `Invalid` with what is expected, never echoing the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from conveyor.errors import ValidationError
from conveyor.ids import validate_queue
from conveyor.queue_weights import split_weight, weights_of

ENV_PREFIX = "CONVEYOR_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
MASK = "***"
KEY_PREFIX_PATTERN = r"[A-Za-z0-9._-]{1,32}"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "console")
API_AUTH_MODES = ("token", "none")
METRICS_AUTH_MODES = ("none", "token")
MAX_PAYLOAD_LIMIT = 64 * 1024 * 1024
TOML_TABLE = "conveyor"

_KEY_PREFIX = re.compile(KEY_PREFIX_PATTERN)
_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# redis-py passes unknown query arguments to the connection, so ?password=... is a secret too,
# and so is the sentinels' own ?sentinel_password=... of a redis+sentinel:// URL. Names are
# compared decoded (redis-py decodes them too), so ?%70assword=... is one as well.
_PASSWORD_NAMES = frozenset({"password", "sentinel_password"})


# --- secrets -------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """`url` with its password replaced by ``***``: the one place secrets are masked.

    ``redis://user:pw@host:6379/0`` becomes ``redis://user:***@host:6379/0``. When the text
    cannot be split into URL parts with confidence (no scheme, an ``@`` outside the
    authority, an unparseable address), the whole value is hidden: showing too little beats
    leaking a password into a log line or an error message.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if "@" in url and not at:
        # An "@" outside the authority: a password holding "/", "?" or "#", or no scheme.
        return MASK
    netloc = parts.netloc
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            netloc = f"{user}:{MASK}@{hostport}"
    query = "&".join(_mask_query_item(item) for item in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return url
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        masked += f"?{query}"
    if parts.fragment:
        masked += f"#{parts.fragment}"
    return masked


def _is_password_name(name: str) -> bool:
    return unquote_plus(name).strip().lower() in _PASSWORD_NAMES


def _mask_query_item(item: str) -> str:
    name, equals, _ = item.partition("=")
    return f"{name}={MASK}" if equals and _is_password_name(name) else item


def url_holds_password(url: str) -> bool:
    """Whether `url` carries a password: in its userinfo or as a query argument (any
    spelling redis-py accepts). Text that does not split into URL parts counts as one,
    as `mask_url` hides it whole."""
    return mask_url(url) != url


# --- parsers -------------------------------------------------------------------------------


class Invalid(Exception):
    """A value is not acceptable. The message says what is expected and never holds the value,
    so a secret cannot leak through it; the caller decides how to show the value."""

    def __init__(self, expected: str, *, wrong_type: bool = False) -> None:
        super().__init__(expected)
        self.expected = expected
        self.wrong_type = wrong_type


# A parser takes a raw value and whether it came as text (environment, string flags) and
# returns the typed value. Text is converted; TOML values must already have the right type.
Parser = Callable[[object, bool], Any]


def format_number(value: float) -> str:
    return f"{value:g}"


def parse_int(low: int, high: int | None) -> Parser:
    expected = (
        f"must be an integer between {low} and {high}"
        if high is not None
        else f"must be an integer >= {low}"
    )

    def parse(value: object, text: bool) -> int:
        if text and isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise Invalid(expected) from None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise Invalid(expected, wrong_type=True)
        if number < low or (high is not None and number > high):
            raise Invalid(expected)
        return number

    return parse


def parse_float(
    *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> Parser:
    bounds = [
        f"> {format_number(gt)}" if gt is not None else "",
        f">= {format_number(ge)}" if ge is not None else "",
    ]
    bounds.append(f"<= {format_number(le)}" if le is not None else "")
    expected = "must be a number " + " and ".join(b for b in bounds if b)

    def parse(value: object, text: bool) -> float:
        if text and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise Invalid(expected) from None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            raise Invalid(expected, wrong_type=True)
        if (
            not math.isfinite(number)
            or (gt is not None and not number > gt)
            or (ge is not None and not number >= ge)
            or (le is not None and not number <= le)
        ):
            raise Invalid(expected)
        return number

    return parse


def parse_choice(choices: tuple[str, ...], *, upper: bool = False) -> Parser:
    expected = "must be one of " + ", ".join(choices) + (" (any case)" if upper else "")

    def parse(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise Invalid(expected, wrong_type=True)
        choice = value.strip().upper() if upper else value.strip().lower()
        if choice not in choices:
            raise Invalid(expected)
        return choice

    return parse


def parse_host(value: object, text: bool) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a host name or address", wrong_type=True)
    if not value.strip():
        raise Invalid("must be a host name or address")
    return value.strip()


def parse_key_prefix(value: object, text: bool) -> str:
    expected = f"must match {KEY_PREFIX_PATTERN}"
    if not isinstance(value, str):
        raise Invalid(expected, wrong_type=True)
    prefix = value.strip() if text else value
    if not _KEY_PREFIX.fullmatch(prefix):
        raise Invalid(expected)
    return prefix


def queue_name(item: str) -> str:
    try:
        return validate_queue(item)
    except ValidationError as exc:
        raise Invalid(f"queue name {item!r} {exc.message}") from None


def weighted_queue_name(item: str) -> str:
    """A queue name, optionally with ``:<weight>`` (queue_weights.py), as ``name`` or
    ``name:<weight>`` (Settings then splits names and weights)."""
    try:
        name, weight = split_weight(item)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    name = queue_name(name)
    return name if weight is None else f"{name}:{weight}"


def split_queue_weights(items: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Parsed `weighted_queue_name` items as (names, weights): one weight per queue, 1
    where none is written; () when none is written at all. `Invalid` for a name listed
    twice (with two weights)."""
    names = tuple(split_weight(item)[0] for item in items)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise Invalid(f"must not repeat queue names: {', '.join(duplicates)}")
    return names, weights_of(items)


def module_path(item: str) -> str:
    if not _MODULE_PATH.fullmatch(item):
        raise Invalid(f"{item!r} is not a dotted Python module path such as 'myapp.jobs'")
    return item


def folder_path(item: str) -> str:
    """A folder for the import path: any non-empty text without a NUL byte (whether it
    exists is checked when the handlers are imported, where the error can say so)."""
    if "\x00" in item:
        raise Invalid("must not contain a NUL byte")
    return item


def parse_list(item: Callable[[str], str], *, what: str, required: bool) -> Parser:
    """Comma-separated text, or a TOML list (or comma-separated TOML string), of names."""
    expected = f"must be a comma-separated string or a list of {what}"

    def parse(value: object, text: bool) -> tuple[str, ...]:
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        elif not text and isinstance(value, list | tuple):
            if not all(isinstance(part, str) for part in value):
                raise Invalid(expected, wrong_type=True)
            items = list(value)
        else:
            raise Invalid(expected, wrong_type=True)
        checked = tuple(item(part) for part in items)
        # A queue listed twice would be read twice per round: a mistake, not a priority.
        duplicates = sorted({name for name in checked if checked.count(name) > 1})
        if duplicates:
            raise Invalid(f"must not repeat {what}: {', '.join(duplicates)}")
        if required and not checked:
            raise Invalid(f"must name at least one of the {what}")
        return checked

    return parse


_TOKEN = re.compile(r"[\x21-\x7e]{16,256}")
_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def api_token(item: str) -> str:
    """A bearer token: 16 to 256 printable ASCII characters, no spaces (never echoed)."""
    if not _TOKEN.fullmatch(item):
        raise Invalid("tokens must be 16 to 256 printable ASCII characters without spaces")
    return item


def cors_origin(item: str) -> str:
    if not _ORIGIN.fullmatch(item):
        raise Invalid(f"{item!r} is not an origin such as https://app.example.com (or *)")
    return item


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*|\[[0-9A-Fa-f:.]+\]")


def trusted_host(item: str) -> str:
    """A Host header value to accept: a name, ``*.name`` for its subdomains, an IPv4
    address or a bracketed IPv6 one; no port (any port of the host is accepted)."""
    if not _HOST.fullmatch(item):
        raise Invalid(f"{item!r} is not a host name such as api.example.com or *.example.com")
    return item.lower()


def parse_path(value: object, text: bool) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a file path", wrong_type=True)
    return value.strip() if text else value
