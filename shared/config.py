"""Configuration: one frozen `Settings`, resolved from defaults, a TOML file, env and flags.

Precedence, lowest first: the defaults below < the TOML file (``--config`` or
``CONVEYOR_CONFIG``) < ``CONVEYOR_*`` environment variables < command-line flags.

Every setting is declared once, as a field of `Settings` whose metadata holds its parser and
help text. The environment variable names, the flags, `conveyor config` and the README's
table are all derived from those fields, so they cannot drift apart.

Every value given is validated, and all problems are reported together: fixing a deployment
one error per restart is slow. Problems name the setting and where the value came from, and
never echo a secret: a bad ``redis_url`` is shown with its password masked.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from conveyor.backoff import Jitter, RetryPolicy
from conveyor.config_redis import Mode, mode_of, parse_redis_url
from conveyor.config_values import (
    API_AUTH_MODES,
    MASK,
    MAX_PAYLOAD_LIMIT,
    METRICS_AUTH_MODES,
    TOML_TABLE,
    Invalid,
    Parser,
    api_token,
    cors_origin,
    folder_path,
    format_number,
    module_path,
    parse_choice,
    parse_float,
    parse_host,
    parse_int,
    parse_key_prefix,
    parse_list,
    parse_path,
    split_queue_weights,
    trusted_host,
    weighted_queue_name,
)
from conveyor.config_values import (
    CONFIG_ENV as CONFIG_ENV,  # re-exported: part of this module's interface
)
from conveyor.config_values import (
    ENV_PREFIX as ENV_PREFIX,  # re-exported: part of this module's interface
)
from conveyor.config_values import (
    LOG_FORMATS as LOG_FORMATS,  # re-exported: part of this module's interface
)
from conveyor.config_values import (
    LOG_LEVELS as LOG_LEVELS,  # re-exported: part of this module's interface
)
from conveyor.config_values import (
    mask_url as mask_url,  # re-exported: part of this module's interface
)
from conveyor.errors import ConfigError


def _meta(parse: Parser, doc: str, *, secret: bool = False) -> dict[str, object]:
    return {"parse": parse, "help": doc, "secret": secret}


# --- the settings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective configuration of one process; build it with `load_settings`/`resolve`.

    Direct construction (tests, embedding) is validated too and raises `ConfigError`.
    """

    redis_url: str = field(
        default="redis://127.0.0.1:6379/0",
        metadata=_meta(
            parse_redis_url,
            "Redis to use: redis:// (rediss:// for TLS) or unix:// for one server, "
            "redis+cluster://host:port,host:port for a Redis Cluster, "
            "redis+sentinel://host:port,host:port/service[/db] for a Sentinel-managed "
            "primary (see docs/scaling.md). Its passwords are masked wherever Conveyor "
            "prints it.",
            secret=True,
        ),
    )
    key_prefix: str = field(
        default="conveyor",
        metadata=_meta(
            parse_key_prefix,
            "First part of every Redis key, so several deployments can share one Redis.",
        ),
    )
    queues: tuple[str, ...] = field(
        default=("default",),
        metadata=_meta(
            parse_list(weighted_queue_name, what="queue names", required=True),
            "Queues a worker consumes (comma-separated): in priority order, or each with "
            "a weight (high:5,default:2,low:1) to be read in proportion to it (ADR 15).",
        ),
    )
    concurrency: int = field(
        default=64,  # ADR 0010
        metadata=_meta(
            parse_int(1, 1000),
            "Jobs one worker process runs at the same time, at start; an operator may "
            "change it while the worker runs, up to max_concurrency (ADR 16).",
        ),
    )
    max_concurrency: int = field(
        default=1000,
        metadata=_meta(
            parse_int(1, 1000),
            "Most jobs a worker runs at once when its concurrency is changed while it runs "
            "(PUT /workers/{id}/concurrency, conveyor workers resize); a larger request is "
            "refused.",
        ),
    )
    handlers: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(module_path, what="module paths", required=False),
            "Python modules a worker imports to register its handlers (comma-separated).",
        ),
    )
    handlers_path: tuple[str, ...] = field(
        default=(".",),
        metadata=_meta(
            parse_list(folder_path, what="folders", required=False),
            "Folders put first on the import path before handler modules are imported "
            "(CONVEYOR_HANDLERS, CONVEYOR_API_HANDLERS; comma-separated; relative ones from "
            "the current directory).",
        ),
    )
    api_handlers: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(module_path, what="module paths", required=False),
            "Handler modules the API imports so that POST /jobs and POST /jobs/batch "
            "validate the payloads of their typed handlers (comma-separated; empty: "
            "payloads are only checked to be JSON).",
        ),
    )
    max_attempts: int = field(
        default=3,
        metadata=_meta(
            parse_int(1, 1000), "Attempts of a job when neither the job nor its handler says."
        ),
    )
    job_timeout_seconds: float = field(
        default=300.0,
        metadata=_meta(
            parse_float(gt=0, le=86400),
            "Time limit of one attempt when neither the job nor its handler says.",
        ),
    )
    retry_base_seconds: float = field(
        default=1.0,
        metadata=_meta(parse_float(gt=0), "Delay before the first retry, before jitter."),
    )
    retry_factor: float = field(
        default=2.0,
        metadata=_meta(parse_float(ge=1), "Each further retry waits this many times longer."),
    )
    retry_max_seconds: float = field(
        default=300.0,
        metadata=_meta(
            parse_float(gt=0), "Longest delay between retries (at least retry_base_seconds)."
        ),
    )
    retry_jitter: str = field(
        default="full",
        metadata=_meta(
            parse_choice(tuple(j.value for j in Jitter)),
            "Randomisation of retry delays: full (0..delay), equal (delay/2..delay) or none.",
        ),
    )
    lease_seconds: float = field(
        default=30.0,
        metadata=_meta(
            parse_float(ge=0.5),
            "A running job whose worker stops renewing it for this long goes to another worker.",
        ),
    )
    max_deliveries: int = field(
        default=5,
        metadata=_meta(
            parse_int(1, 1000),
            "Attempts of one job that may be lost with their worker (it died or stopped "
            "renewing the lease) before the job is failed as poison.",
        ),
    )
    result_ttl_seconds: int = field(
        default=604800,
        metadata=_meta(
            parse_int(1, None), "How long a finished job and its result are kept (seconds)."
        ),
    )
    shutdown_timeout_seconds: float = field(
        default=30.0,
        metadata=_meta(
            parse_float(ge=0),
            "On SIGTERM, how long a worker waits for running jobs before handing them back.",
        ),
    )
    max_payload_bytes: int = field(
        default=1048576,
        metadata=_meta(
            parse_int(1024, MAX_PAYLOAD_LIMIT),
            "Largest encoded payload (and result) the API and workers accept.",
        ),
    )
    api_host: str = field(
        default="127.0.0.1",
        metadata=_meta(parse_host, "Address the HTTP API listens on."),
    )
    api_port: int = field(
        default=8000,
        metadata=_meta(parse_int(0, 65535), "Port the HTTP API listens on (0: any free port)."),
    )
    redis_timeout_seconds: float = field(
        default=2.0,
        metadata=_meta(
            parse_float(gt=0),
            "Socket and connect timeout of each Redis call (blocking reads add their wait).",
        ),
    )
    redis_wait_replicas: int = field(
        default=0,
        metadata=_meta(
            parse_int(0, 16),
            "Replicas that must acknowledge every enqueue (Redis WAIT) before it is "
            "answered as created; 0: no wait. Standalone with replicas and Sentinel only.",
        ),
    )
    redis_wait_timeout_seconds: float = field(
        default=0.5,
        metadata=_meta(
            parse_float(gt=0),
            "Longest wait for those replicas (below redis_timeout_seconds); when fewer "
            "acknowledged, the API answers 503: the job may exist.",
        ),
    )
    heartbeat_seconds: float = field(
        default=5.0,
        metadata=_meta(parse_float(gt=0), "How often a worker reports that it is alive."),
    )
    api_tokens: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(api_token, what="tokens", required=False),
            "Bearer tokens that may use every API route (comma-separated). With api_auth "
            "token (the default) the API refuses to start without any. /healthz, /readyz "
            "(its detail needs a token) and /metrics (unless metrics_auth is token) never "
            "need one.",
            secret=True,
        ),
    )
    api_read_tokens: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(api_token, what="tokens", required=False),
            "Bearer tokens limited to reading (GET) routes (comma-separated).",
            secret=True,
        ),
    )
    api_tokens_file: str = field(
        default="",
        metadata=_meta(
            parse_path,
            "A file of full-access tokens, one per line (# comments allowed), read at start; "
            "a file holding no token stops the API (exit 2).",
        ),
    )
    api_auth: str = field(
        default="token",
        metadata=_meta(
            parse_choice(API_AUTH_MODES),
            "token: every route but the probes needs a bearer token, and the API refuses to "
            "start without one; none: the API is open to anyone who reaches it (local "
            "development only; a warning is logged at start-up).",
        ),
    )
    metrics_auth: str = field(
        default="none",
        metadata=_meta(
            parse_choice(METRICS_AUTH_MODES),
            "none: /metrics is open (bind or network-police it); token: /metrics needs a "
            "bearer token, as a read route does.",
        ),
    )
    trusted_hosts: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(trusted_host, what="host names", required=False),
            "Host header values the API answers (comma-separated; *.example.com matches "
            "subdomains); others get 400. Empty: any host. The probes and /metrics always "
            "answer.",
        ),
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            parse_list(cors_origin, what="origins", required=False),
            "Origins allowed to call the API from a browser (comma-separated; * for any). "
            "Empty: CORS is off.",
        ),
    )
    max_batch_jobs: int = field(
        default=1000,
        metadata=_meta(parse_int(1, 10_000), "Most jobs one POST /jobs/batch may create."),
    )
    max_queues: int = field(
        default=1000,
        metadata=_meta(
            parse_int(1, 1_000_000),
            "Most queues that may hold jobs at once; a job for a new queue beyond it is "
            "refused (409 queue-limit) and nothing is written. A queue leaves the count "
            "once it holds no job (the scheduler's expire pass, every 30 s); the queues a "
            "worker starts with are registered even beyond it.",
        ),
    )
    max_limits_per_queue: int = field(
        default=100,
        metadata=_meta(
            parse_int(1, 10_000),
            "Most limit keys (PUT /queues/{queue}/limits/{key}) one queue may have; one "
            "more is refused (409 limit-count) and nothing is written.",
        ),
    )
    max_schedules: int = field(
        default=1000,
        metadata=_meta(
            parse_int(1, 100_000),
            "Most periodic schedules that may exist; a new one beyond it is refused (409 "
            "schedule-limit) and nothing is written.",
        ),
    )
    schedule_grace_seconds: int = field(
        default=10,
        metadata=_meta(
            parse_int(1, 86_400),
            "How old a periodic schedule's fire time may be when a scheduler reaches it and "
            "still get its job; older ones were missed (no scheduler ran) and get what the "
            "schedule's catch_up says: one job for all of them, or none.",
        ),
    )
    max_list_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata=_meta(
            parse_int(64 * 1024, 256 * 1024 * 1024),
            "Largest body of one job listing (GET /jobs): a page that would exceed it ends "
            "early, with a cursor to the rest.",
        ),
    )
    idempotency_ttl_seconds: int = field(
        default=86_400,
        metadata=_meta(
            parse_int(60, 30 * 86_400),
            "How long an Idempotency-Key is remembered: a repeat within it returns the "
            "original job.",
        ),
    )
    stats_cache_seconds: float = field(
        default=1.0,
        metadata=_meta(
            parse_float(ge=0, le=60),
            "How long queue statistics (GET /queues, /metrics, the dashboard) are reused "
            "by every caller of one API process before they are read from Redis again "
            "(up to twice as long while that read runs); concurrent callers share one "
            "read. 0: every call reads.",
        ),
    )
    metrics_max_types: int = field(
        default=100,
        metadata=_meta(
            parse_int(1, 10_000),
            "Most distinct job types a process labels its metrics with; jobs of further "
            'types are counted under type="_other".',
        ),
    )
    api_limit_concurrency: int = field(
        default=1000,
        metadata=_meta(
            parse_int(1, 100_000),
            "Most connections and requests the API serves at once; beyond it new ones get "
            "503 at once.",
        ),
    )
    api_keepalive_timeout_seconds: float = field(
        default=5.0,
        metadata=_meta(
            parse_float(gt=0, le=300),
            "How long an idle keep-alive connection to the API stays open.",
        ),
    )
    api_header_timeout_seconds: float = field(
        default=10.0,
        metadata=_meta(
            parse_float(gt=0, le=300),
            "Longest time a client may take to send a request's headers; slower "
            "connections are closed.",
        ),
    )
    metrics_port: int = field(
        default=0,
        metadata=_meta(
            parse_int(0, 65535),
            "Port where a worker or scheduler serves /metrics, /healthz and /readyz "
            "(0: off). The API serves them on its own port.",
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=_meta(parse_choice(LOG_LEVELS, upper=True), "DEBUG, INFO, WARNING or ERROR."),
    )
    log_format: str = field(
        default="json",
        metadata=_meta(
            parse_choice(LOG_FORMATS),
            "json (one object per line, for machines) or console (for people).",
        ),
    )
    # Not a setting of its own: the weights written in `queues` (one per queue, () for
    # none: strict priority order), set by __post_init__.
    queue_weights: tuple[int, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for spec in SETTINGS_SPECS:
            raw = getattr(self, spec.name)
            try:
                object.__setattr__(self, spec.name, spec.parse(raw, False))
                if spec.name == "queues":  # "high:5" items: names here, weights apart
                    names, weights = split_queue_weights(self.queues)
                    object.__setattr__(self, "queues", names)
                    object.__setattr__(self, "queue_weights", weights)
            except Invalid as exc:
                problems.append(_problem(spec.name, exc, spec, raw))
        if not problems:
            problems.extend(_cross_problems(self.retry_base_seconds, self.retry_max_seconds))
            problems.extend(
                _auth_problems(
                    self.api_auth,
                    self.metrics_auth,
                    bool(self.api_tokens or self.api_read_tokens or self.api_tokens_file),
                )
            )
            problems.extend(
                _wait_problems(
                    self.redis_url,
                    self.redis_wait_replicas,
                    self.redis_wait_timeout_seconds,
                    self.redis_timeout_seconds,
                )
            )
        if not problems and self.concurrency > self.max_concurrency:
            problems.append(
                f"concurrency ({self.concurrency}) must not exceed max_concurrency "
                f"({self.max_concurrency})"
            )
        if problems:
            raise ConfigError(problems)

    def __repr__(self) -> str:
        # The dataclass's own repr would print the Redis password.
        shown = ", ".join(
            f"{spec.name}={spec.show(getattr(self, spec.name))}" for spec in SETTINGS_SPECS
        )
        return f"Settings({shown})"

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.retry_base_seconds,
            factor=self.retry_factor,
            max_seconds=self.retry_max_seconds,
            jitter=Jitter(self.retry_jitter),
        )


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting as the outside world sees it: its names, default, help and parser."""

    name: str
    parse: Parser
    default: object
    help: str
    secret: bool

    @property
    def env(self) -> str:
        return env_name(self.name)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def show(self, value: object) -> str:
        """How a given value may appear in a message: secrets are masked or left out."""
        if not self.secret:
            return repr(value)
        if not isinstance(value, str):
            return _kind(value)
        if "://" in value:
            return repr(mask_url(value))  # a URL: everything but its password may show
        return "<hidden>"


def env_name(field_name: str) -> str:
    """The environment variable of a setting: ``concurrency`` -> ``CONVEYOR_CONCURRENCY``."""
    return ENV_PREFIX + field_name.upper()


SETTINGS_SPECS: tuple[SettingSpec, ...] = tuple(
    SettingSpec(
        name=f.name,
        parse=f.metadata["parse"],
        default=f.default,
        help=f.metadata["help"],
        secret=f.metadata["secret"],
    )
    for f in fields(Settings)
    if f.init
)
SPECS = SETTINGS_SPECS
SPEC_BY_NAME: Mapping[str, SettingSpec] = {spec.name: spec for spec in SETTINGS_SPECS}


def _kind(value: object) -> str:
    """The TOML name of a value's type, for "got '3' (a string)" messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _problem(where: str, exc: Invalid, spec: SettingSpec, raw: object) -> str:
    text = f"{where}: {exc.expected}, got {spec.show(raw)}"
    if exc.wrong_type and not spec.secret:
        text += f" ({_kind(raw)})"
    return text


def _cross_problems(
    base: float, maximum: float, where: str = "retry_max_seconds", base_from: str = ""
) -> list[str]:
    if maximum >= base:
        return []
    origin = f", from {base_from}" if base_from else ""
    return [
        f"{where}: must be >= retry_base_seconds ({format_number(base)}{origin}), "
        f"got {format_number(maximum)}"
    ]


def _auth_problems(api_auth: str, metrics_auth: str, tokens_given: bool) -> list[str]:
    """An open API with tokens configured is a mistake either way: say which to fix."""
    if api_auth != "none":
        return []
    problems = []
    if tokens_given:
        problems.append(
            "api_auth: is none, but tokens are configured (api_tokens, api_read_tokens or "
            "api_tokens_file): remove them or use api_auth token"
        )
    if metrics_auth == "token":
        problems.append("metrics_auth: token needs api_auth token")
    return problems


def _wait_problems(
    url: str, replicas: int, timeout: float, redis_timeout: float, where: str = ""
) -> list[str]:
    """WAIT needs the connection that wrote the job (a Cluster pipeline spreads over nodes,
    so it has none), and must end before the socket timeout does."""
    if replicas == 0:
        return []
    label = where or "redis_wait_replicas"
    if mode_of(url) is Mode.CLUSTER:
        return [f"{label}: must be 0 with a redis+cluster:// URL (WAIT is per connection)"]
    if timeout >= redis_timeout:
        return [
            f"redis_wait_timeout_seconds: must be < redis_timeout_seconds "
            f"({format_number(redis_timeout)}), got {format_number(timeout)}"
        ]
    return []


# --- resolution ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """The settings plus where each value came from (for `conveyor config`)."""

    settings: Settings
    sources: Mapping[str, str]


# One value given for a setting: (raw value, came as text, label for problems, source).
_Given = tuple[object, bool, str, str]


def _given(
    spec: SettingSpec,
    toml: Mapping[str, object],
    environ: Mapping[str, str],
    flags: Mapping[str, object | None],
    toml_source: str,
) -> list[_Given]:
    """The values given for `spec`, lowest precedence first."""
    given: list[_Given] = []
    if spec.name in toml:
        given.append((toml[spec.name], False, f"{spec.name} in {toml_source}", toml_source))
    if spec.env in environ:
        given.append((environ[spec.env], True, spec.env, f"env {spec.env}"))
    flag = flags.get(spec.name)
    if flag is not None:
        given.append((flag, isinstance(flag, str), spec.flag, f"flag {spec.flag}"))
    return given


def resolve_with_sources(
    toml: Mapping[str, object],
    environ: Mapping[str, str],
    flags: Mapping[str, object | None],
    *,
    toml_source: str = "config file",
) -> Resolution:
    """Like `resolve`, keeping where each value came from."""
    unknown_flags = sorted(k for k, v in flags.items() if v is not None and k not in SPEC_BY_NAME)
    if unknown_flags:
        # A command passed an option that is not a setting: a bug, not a user mistake.
        raise TypeError(f"not settings: {', '.join(unknown_flags)}")
    problems = [
        f"{key} in {toml_source}: unknown setting{_suggest(key)}"
        for key in toml
        if key not in SPEC_BY_NAME
    ]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    labels: dict[str, str] = {}
    for spec in SETTINGS_SPECS:
        values[spec.name] = spec.default
        sources[spec.name], labels[spec.name] = "default", spec.name
        for raw, text, label, source in _given(spec, toml, environ, flags, toml_source):
            try:
                values[spec.name] = spec.parse(raw, text)
            except Invalid as exc:
                problems.append(_problem(label, exc, spec, raw))
            else:
                sources[spec.name], labels[spec.name] = source, label
    if not problems:
        problems = _cross_problems(
            values["retry_base_seconds"],
            values["retry_max_seconds"],
            labels["retry_max_seconds"],
            sources["retry_base_seconds"],
        )
        problems += _wait_problems(
            values["redis_url"],
            values["redis_wait_replicas"],
            values["redis_wait_timeout_seconds"],
            values["redis_timeout_seconds"],
            labels["redis_wait_replicas"],
        )
    if problems:
        raise ConfigError(problems)
    return Resolution(Settings(**values), sources)


def resolve(
    toml: Mapping[str, object],
    environ: Mapping[str, str],
    flags: Mapping[str, object | None],
    *,
    toml_source: str = "config file",
) -> Settings:
    """The settings from defaults < TOML < ``CONVEYOR_*`` env < flags (None flags are unset).

    Raises `ConfigError` listing every problem. Unknown TOML keys are problems (a typo would
    otherwise be silently ignored); unknown ``CONVEYOR_*`` variables are not, because the
    environment is shared with other tools and other versions of Conveyor.
    """
    return resolve_with_sources(toml, environ, flags, toml_source=toml_source).settings


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(SPEC_BY_NAME), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def read_toml(path: str) -> tuple[dict[str, Any], list[str]]:
    """The settings table of a TOML file, or the problem that prevents reading it.

    Settings are top-level keys, or the keys of a ``[conveyor]`` table when there is one
    (then the file may hold other tools' tables too).
    """
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}, [f"config file {path}: not found"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"config file {path}: invalid TOML: {exc}"]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return {}, [f"config file {path}: cannot be read ({reason})"]
    table = data.get(TOML_TABLE, data)
    if not isinstance(table, dict):
        return {}, [f"config file {path}: [{TOML_TABLE}] must be a table"]
    return table, []


def load_resolution(
    config_path: str | None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object | None] | None = None,
) -> Resolution:
    """Like `load_settings`, keeping where each value came from."""
    environ = os.environ if environ is None else environ
    path = config_path or environ.get(CONFIG_ENV) or None
    toml: Mapping[str, object] = {}
    file_problems: list[str] = []
    if path is not None:
        toml, file_problems = read_toml(path)
    source = f"config file {path}" if path else "config file"
    try:
        resolution = resolve_with_sources(toml, environ, flags or {}, toml_source=source)
    except ConfigError as exc:
        # Report the file's problem together with those of the other layers.
        raise ConfigError(file_problems + exc.problems) from None
    if file_problems:
        raise ConfigError(file_problems)
    return resolution


def load_settings(
    config_path: str | None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object | None] | None = None,
) -> Settings:
    """Read the TOML file (`config_path`, else ``CONVEYOR_CONFIG``, else none) and resolve.

    `environ` defaults to `os.environ`. A missing, unreadable or invalid file is a
    `ConfigError`, never skipped: a deployment that names a file means to use it.
    """
    return load_resolution(config_path, environ, flags).settings


# --- presentation --------------------------------------------------------------------------


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def effective_config(settings: Settings) -> dict[str, object]:
    """Every setting by name, secrets masked, lists as lists: safe to print, log or dump."""
    return {
        spec.name: _masked(getattr(settings, spec.name))
        if spec.secret
        else _plain(getattr(settings, spec.name))
        for spec in SETTINGS_SPECS
    }


def _masked(value: object) -> object:
    """A secret as it may be shown: a URL without its password, tokens as ***."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, tuple):
        return [MASK] * len(value)
    return MASK


def _default_text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    return str(value)


def config_table_markdown() -> str:
    """The README's configuration table, one row per setting."""
    rows = [
        "| Environment variable | TOML key | Default | Description |",
        "|---|---|---|---|",
    ]
    rows.extend(
        f"| `{spec.env}` | `{spec.name}` | `{_default_text(spec.default)}` | {spec.help} |"
        for spec in SETTINGS_SPECS
    )
    return "\n".join(rows) + "\n"
