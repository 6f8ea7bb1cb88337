"""Server settings, read once from the environment and passed explicitly (no globals)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from pasar_core.accounts.passwords import PasswordHashing
from pasar_core.accounts.sources import parse_trusted_proxies
from pasar_core.accounts.throttle import ThrottlePolicy
from pasar_core.crypto import Keyring, load_keyring
from pasar_core.errors import StartupError
from pasar_core.key_files import create_once
from pasar_core.mcp.config import McpServerConfig, parse_mcp_servers
from pasar_core.rate_limits import RatePolicy, RouteClass, parse_rate
from pasar_core.results import DEFAULT_MAX_TOOL_RESULT_BYTES
from pasar_core.sandbox.settings import SandboxSettings

ROOT_DEFAULT_DATA_DIR = Path("/var/lib/pasar")


def default_data_dir() -> Path:
    """The user's data dir; as root, /var/lib/pasar (PostgreSQL refuses anything under /root)."""
    if os.geteuid() == 0:
        return ROOT_DEFAULT_DATA_DIR
    return Path(platformdirs.user_data_dir("pasar"))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise StartupError(f"{name} must be an integer, got {raw!r}") from None


def _port(env: Mapping[str, str], name: str) -> int | None:
    if not env.get(name):
        return None
    port = _int(env, name, 0)
    if not 0 < port < 65536:
        raise StartupError(f"{name} must be a port number (1-65535), got {port}")
    return port


def _server(env: Mapping[str, str]) -> str:
    server = env.get("PASAR_SERVER", "").strip().lower() or "granian"
    if server not in ("granian", "uvicorn"):
        raise StartupError(f"PASAR_SERVER must be granian or uvicorn, got {server!r}")
    return server


def _log_format(env: Mapping[str, str]) -> str:
    chosen = env.get("PASAR_LOG_FORMAT", "").strip().lower() or "auto"
    if chosen not in ("auto", "json", "text"):
        raise StartupError(f"PASAR_LOG_FORMAT must be auto, json or text, got {chosen!r}")
    return chosen


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StartupError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise StartupError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _openai_wait(env: Mapping[str, str]) -> float:
    wait = _float(env, "PASAR_OPENAI_WAIT_S", 300)
    if wait > 300:
        raise StartupError(f"PASAR_OPENAI_WAIT_S must be at most 300, got {wait:g}")
    return wait


@dataclass(frozen=True, slots=True)
class OAuthClientSettings:
    """This server's OAuth client at one provider, from `PASAR_<PROVIDER>_*`.

    The base URLs replace the origin of the provider's endpoints (an emulator, a proxy):
    `auth_base_url` for the consent page, `token_base_url` for token and revoke, `api_base_url`
    for the provider's REST APIs. `PASAR_<PROVIDER>_BASE_URL` sets all three at once."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    auth_base_url: str | None = None
    token_base_url: str | None = None
    api_base_url: str | None = None


def _oauth_clients(env: Mapping[str, str]) -> dict[str, OAuthClientSettings]:
    """One client per `PASAR_<PROVIDER>_CLIENT_ID` that is set."""
    clients: dict[str, OAuthClientSettings] = {}
    for name, value in env.items():
        if not (name.startswith("PASAR_") and name.endswith("_CLIENT_ID") and value):
            continue
        prefix = name.removesuffix("CLIENT_ID")
        provider = prefix.removeprefix("PASAR_").rstrip("_").lower()
        if not provider:
            continue
        base = env.get(f"{prefix}BASE_URL") or None
        clients[provider] = OAuthClientSettings(
            client_id=value,
            client_secret=env.get(f"{prefix}CLIENT_SECRET") or None,
            redirect_uri=env.get(f"{prefix}REDIRECT_URI") or None,
            auth_base_url=env.get(f"{prefix}AUTH_BASE_URL") or base,
            token_base_url=env.get(f"{prefix}TOKEN_BASE_URL") or base,
            api_base_url=env.get(f"{prefix}API_BASE_URL") or base,
        )
    return clients


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    if name not in env:
        return default
    raw = env[name].strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise StartupError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parse_rate(name, raw)  # refuse a typo at start-up
    return raw


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    entries = _list(env, "PASAR_TRUSTED_PROXIES")
    parse_trusted_proxies(entries)  # refuse a typo at start-up, not on the first log-in
    return entries


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. `database_url=None` means: start the embedded PostgreSQL."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    database_direct_url: str | None = None
    """`DATABASE_DIRECT_URL`: the same database without a transaction pooler in between, for
    what needs one session for long (LISTEN for run events and revocations, migrations under
    their advisory lock); default `database_url`. Set it when `database_url` is PgBouncer."""
    database_read_url: str | None = None
    """`DATABASE_READ_URL`: a streaming replica for the single-statement hot reads (agents,
    runs), except a user's reads within `db_read_your_writes_s` of their write."""
    db_statement_cache_size: int = 100
    """asyncpg's and SQLAlchemy's prepared statement caches per connection; 0 behind PgBouncer
    in transaction mode (no named statements kept, unique names when one is prepared)."""
    db_read_your_writes_s: float = 5.0
    """After a user writes, how long that user's reads stay on the primary (with a replica)."""
    secret_key: str | None = None
    encryption_keys: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    enabled_plugins: tuple[str, ...] | None = None
    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 30 * 86_400
    max_body_bytes: int = 1_048_576
    """The largest request body on every route (GraphQL included) and websocket message."""
    max_tool_result_bytes: int = DEFAULT_MAX_TOOL_RESULT_BYTES
    dev_mode: bool = False
    """Development mode: GraphQL introspection for anyone and field suggestions in errors.
    Off (production mode) unless `PASAR_DEV=1` or `pasar serve --dev`."""
    graphql_direct: bool = True
    """Plain cached GraphQL queries answered without Strawberry's view (`pasar_graphql.direct`);
    `PASAR_GRAPHQL_DIRECT=0` sends every request through Strawberry (for comparison)."""
    db_pool_size: int = 20
    """Database connections each server process keeps at most (units of work)."""
    db_read_pool_size: int = 10
    """Connections of each process's single-statement reads (pasar_core.storage.reads)."""
    workers: int = 1
    """`pasar serve` worker processes (0: one per core)."""
    server: str = "granian"
    """`pasar serve`'s HTTP server: `granian` or `uvicorn`."""
    backlog: int = 16384
    """The listen queue of `pasar serve` (the kernel caps it at net.core.somaxconn)."""
    db_pool_timeout_s: float = 5.0
    """How long a request waits for a database connection before it is refused with 503
    `UNAVAILABLE` and `Retry-After` (never a 500 after SQLAlchemy's default 30 s)."""
    events_flush_s: float = 0.05
    """How long a run's steps and events gather before they are written together (one
    transaction for every run of the process); a write-effect call and a run's end are
    written at once whatever this says."""
    run_db_wait_s: float = 120.0
    """How long a run waits for a database connection when the pool is full, before it is
    handed back to the queue (requests keep `db_pool_timeout_s`)."""
    public_url: str | None = None
    oauth_clients: Mapping[str, OAuthClientSettings] = field(default_factory=dict)
    """`public_url`: where browsers reach this server (OAuth redirect URIs are built from it;
    default `http://<host>:<port>`). `oauth_clients`: per auth provider id."""
    redis_url: str | None = None
    inline_max_concurrency: int = 2000
    heartbeat_s: float = 15.0
    webhook_allow_hosts: tuple[str, ...] = ()
    allow_private_hosts: tuple[str, ...] = ()
    allow_unix_sockets: tuple[str, ...] = ()
    """Unix-socket directories tools may open (the postgres tools' `host=/dir`); none by default."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For` is believed (rate
    limits key on the client address; see pasar_core.accounts.sources). None by default."""
    retention_interval_s: float = 3600.0
    """How often each serving process applies the organisations' retention policies."""
    stale_after_s: float = 90.0
    """A run whose process stopped beating for this long is resumed elsewhere."""
    max_interruptions: int = 3
    approval_ttl_s: float = 7 * 86_400.0
    """How long a run waits for a decision on its pending tool calls before it ends `failed`
    with APPROVAL_EXPIRED (a late decision is refused with the same code)."""
    """How often a run may be resumed after its process died before it ends `failed`."""
    drain_s: float = 20.0
    """On SIGTERM: how long in-flight runs may finish before they are handed back to the queue
    (fits Kubernetes' default 30 s grace period)."""
    sse_ping_s: float = 15.0
    """Server-sent event streams (run events, streamed chat completions) send a `: ping`
    comment after this long without an event, so proxies keep them open."""
    openai_wait_s: float = 300.0
    """How long `POST /v1/chat/completions` follows a run, streamed or not (at most 300)."""
    worker_concurrency: int = 500
    """Executions one `pasar worker` process runs at once (`--concurrency`)."""
    password_hashing: PasswordHashing = field(default_factory=PasswordHashing)
    """`PASAR_ARGON2_TIME_COST`, `_MEMORY_KIB`, `_PARALLELISM`: the cost of new password hashes."""
    login_failures_per_pair: int = 10
    login_failures_per_source: int = 100
    login_failures_per_account: int = 50
    """Log-in budgets (pasar_core.accounts.throttle): failures per (email, address) and per
    address in 15 minutes, and per email from addresses it never logged in from, in an hour."""
    rate_limit_auth: str = "20/60"
    rate_limit_writes: str = "120/60"
    rate_limit_runs: str = "60/60"
    """Rate limits per route class (`N/SECONDS` or `off`), each per user, per API key and per
    client address (pasar_core.rate_limits): auth (sign-up, log-in, refresh, password, consent
    sign-in: per address), writes (creating, changing, deleting), runs (execute, approvals)."""
    rate_limit_source_factor: int = 4
    """A signed-in caller's address may make this many times a user's budget (people behind
    one address); auth requests count per address alone, at the class's rate."""
    idempotency_window_s: int = 86_400
    """How long an `Idempotency-Key` and its first answer are kept (pasar_core.idempotency)."""
    invitation_ttl_s: int = 7 * 86_400
    """How long an invitation into an organisation may be accepted
    (pasar_core.organisations.invitations)."""
    invitation_cap: int = 100
    """The most invitations an organisation may have pending at once."""
    schedule_min_interval_s: int = 60
    """The shortest gap a schedule's cron expression may leave between two ticks."""
    schedule_cap: int = 20
    """The most schedules one user may put on one agent (each member has their own)."""
    schedule_owner_cap: int = 100
    """The most schedules one user may own, over all agents."""
    schedule_poll_s: float = 5.0
    """How often the processes that fire schedules (workers with `REDIS_URL`, else servers)
    look for due ticks: a run starts at most this long after its tick."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser (CORS); none by default (`*`: any)."""
    hsts_max_age_s: int = 0
    """`Strict-Transport-Security: max-age=...` on every answer when above 0 (behind HTTPS)."""
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_region: str | None = None
    """`s3_*`: keep user files in an S3-compatible bucket (set `s3_bucket`); else the data dir."""
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    """`PASAR_SANDBOX_*`: the Docker daemon, warm pool and limits of sandbox workers."""
    sandbox_redis_url: str | None = None
    """The Redis of the sandbox queue (`PASAR_SANDBOX_REDIS_URL`, else `REDIS_URL`)."""
    embedded_sandbox: bool = False
    """Start an embedded Redis and a local sandbox worker with the server (what `pasar serve`
    does when no sandbox Redis is configured, unless `PASAR_SANDBOX_EMBEDDED=0`)."""
    mcp_servers: tuple[McpServerConfig, ...] = ()
    """`PASAR_MCP_SERVERS`: the operator's MCP servers, whose tools are served as families
    `mcp_<name>` (see pasar_core.mcp.config)."""
    log_format: str = "auto"
    """`PASAR_LOG_FORMAT`: `json` (one object a line), `text`, or `auto` (text on a terminal)."""
    otlp_endpoint: str | None = None
    """`PASAR_OTLP_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`: export traces over OTLP/HTTP
    there (needs the `tracing` extra); unset: no tracing."""
    service_name: str = "pasar"
    """`OTEL_SERVICE_NAME`: the traces' service name."""
    metrics_port: int | None = None
    """`PASAR_METRICS_PORT`: serve `/metrics` on this port of its own (the API's and a worker's),
    and not on the public port; unset: on the public port (block it at the gateway)."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        plugins = env.get("PASAR_PLUGINS")
        return cls(
            data_dir=Path(env["PASAR_DATA_DIR"])
            if env.get("PASAR_DATA_DIR")
            else default_data_dir(),
            database_url=env.get("DATABASE_URL") or None,
            database_direct_url=env.get("DATABASE_DIRECT_URL") or None,
            database_read_url=env.get("DATABASE_READ_URL") or None,
            db_statement_cache_size=_int(env, "PASAR_DB_STATEMENT_CACHE_SIZE", 100),
            db_read_your_writes_s=_float(env, "PASAR_DB_READ_YOUR_WRITES_S", 5.0),
            secret_key=env.get("PASAR_SECRET_KEY") or None,
            encryption_keys=env.get("PASAR_ENCRYPTION_KEYS") or None,
            host=env.get("PASAR_HOST", "127.0.0.1"),
            port=_int(env, "PASAR_PORT", 8000),
            enabled_plugins=(
                tuple(p.strip() for p in plugins.split(",") if p.strip()) if plugins else None
            ),
            access_token_ttl_s=_int(env, "PASAR_ACCESS_TOKEN_TTL", 3600),
            refresh_token_ttl_s=_int(env, "PASAR_REFRESH_TOKEN_TTL", 30 * 86_400),
            max_body_bytes=_int(env, "PASAR_MAX_BODY_BYTES", 1_048_576),
            max_tool_result_bytes=_int(
                env, "PASAR_MAX_TOOL_RESULT_BYTES", DEFAULT_MAX_TOOL_RESULT_BYTES
            ),
            dev_mode=_bool(env, "PASAR_DEV"),
            graphql_direct=_bool(env, "PASAR_GRAPHQL_DIRECT", default=True),
            db_pool_size=_int(env, "PASAR_DB_POOL_SIZE", 20),
            db_read_pool_size=_int(env, "PASAR_DB_READ_POOL_SIZE", 10),
            db_pool_timeout_s=_float(env, "PASAR_DB_POOL_TIMEOUT", 5.0),
            run_db_wait_s=_float(env, "PASAR_RUN_DB_WAIT", 120.0),
            events_flush_s=_int(env, "PASAR_EVENTS_FLUSH_MS", 50) / 1000,
            workers=_int(env, "PASAR_WORKERS", 1),
            server=_server(env),
            backlog=_int(env, "PASAR_BACKLOG", 16384),
            public_url=(env.get("PASAR_PUBLIC_URL") or "").rstrip("/") or None,
            oauth_clients=_oauth_clients(env),
            redis_url=env.get("REDIS_URL") or None,
            inline_max_concurrency=_int(env, "PASAR_INLINE_MAX_CONCURRENCY", 2000),
            heartbeat_s=_int(env, "PASAR_HEARTBEAT_S", 15),
            webhook_allow_hosts=_list(env, "PASAR_WEBHOOK_ALLOW_HOSTS"),
            allow_private_hosts=_list(env, "PASAR_ALLOW_PRIVATE_HOSTS"),
            allow_unix_sockets=_list(env, "PASAR_ALLOW_UNIX_SOCKETS"),
            trusted_proxies=_trusted_proxies(env),
            stale_after_s=_int(env, "PASAR_STALE_AFTER_S", 90),
            retention_interval_s=_int(env, "PASAR_RETENTION_INTERVAL_S", 3600),
            max_interruptions=_int(env, "PASAR_MAX_INTERRUPTIONS", 3),
            approval_ttl_s=_int(env, "PASAR_APPROVAL_TTL_S", 7 * 86_400),
            drain_s=_int(env, "PASAR_DRAIN_S", 20),
            sse_ping_s=_float(env, "PASAR_SSE_PING_S", 15),
            openai_wait_s=_openai_wait(env),
            worker_concurrency=_int(env, "PASAR_WORKER_CONCURRENCY", 500),
            password_hashing=PasswordHashing.from_env(env),
            login_failures_per_pair=_int(env, "PASAR_LOGIN_FAILURES_PER_PAIR", 10),
            login_failures_per_source=_int(env, "PASAR_LOGIN_FAILURES_PER_SOURCE", 100),
            login_failures_per_account=_int(env, "PASAR_LOGIN_FAILURES_PER_ACCOUNT", 50),
            rate_limit_auth=_rate(env, "PASAR_RATE_LIMIT_AUTH", "20/60"),
            rate_limit_writes=_rate(env, "PASAR_RATE_LIMIT_WRITES", "120/60"),
            rate_limit_runs=_rate(env, "PASAR_RATE_LIMIT_RUNS", "60/60"),
            rate_limit_source_factor=_int(env, "PASAR_RATE_LIMIT_SOURCE_FACTOR", 4),
            idempotency_window_s=_int(env, "PASAR_IDEMPOTENCY_WINDOW_S", 86_400),
            invitation_ttl_s=_int(env, "PASAR_INVITATION_TTL_S", 7 * 86_400),
            invitation_cap=_int(env, "PASAR_INVITATION_CAP", 100),
            schedule_min_interval_s=_int(env, "PASAR_SCHEDULE_MIN_INTERVAL_S", 60),
            schedule_cap=_int(env, "PASAR_SCHEDULE_CAP", 20),
            schedule_owner_cap=_int(env, "PASAR_SCHEDULE_OWNER_CAP", 100),
            schedule_poll_s=_float(env, "PASAR_SCHEDULE_POLL_S", 5.0),
            cors_origins=_list(env, "PASAR_CORS_ORIGINS"),
            hsts_max_age_s=_int(env, "PASAR_HSTS_MAX_AGE", 0),
            s3_endpoint_url=env.get("PASAR_S3_ENDPOINT_URL") or None,
            s3_bucket=env.get("PASAR_S3_BUCKET") or None,
            s3_access_key_id=env.get("PASAR_S3_ACCESS_KEY_ID") or None,
            s3_secret_access_key=env.get("PASAR_S3_SECRET_ACCESS_KEY") or None,
            s3_region=env.get("PASAR_S3_REGION") or None,
            sandbox=SandboxSettings.from_env(env),
            sandbox_redis_url=env.get("PASAR_SANDBOX_REDIS_URL") or env.get("REDIS_URL") or None,
            mcp_servers=parse_mcp_servers(env.get("PASAR_MCP_SERVERS")),
            log_format=_log_format(env),
            otlp_endpoint=(
                env.get("PASAR_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
            ),
            service_name=env.get("OTEL_SERVICE_NAME") or "pasar",
            metrics_port=_port(env, "PASAR_METRICS_PORT"),
            env=dict(env),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        """The public origin of this server, without a trailing slash."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def files_root(self) -> Path:
        return self.data_dir / "files"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    def ensure_data_dir(self) -> Path:
        """Create the data dir (mode 700); refuse /root when running as root."""
        data_dir = self.data_dir.expanduser().resolve()
        if os.geteuid() == 0 and data_dir.is_relative_to("/root"):
            raise StartupError(
                f"PASAR_DATA_DIR={data_dir} is inside /root, which PostgreSQL's own user cannot "
                "reach; choose a directory outside /root (default as root: /var/lib/pasar)"
            )
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return data_dir

    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            per_pair=self.login_failures_per_pair,
            per_source=self.login_failures_per_source,
            per_account=self.login_failures_per_account,
        )

    def rate_policy(self) -> RatePolicy:
        return RatePolicy({
            RouteClass.AUTH: parse_rate("PASAR_RATE_LIMIT_AUTH", self.rate_limit_auth),
            RouteClass.WRITES: parse_rate("PASAR_RATE_LIMIT_WRITES", self.rate_limit_writes),
            RouteClass.RUNS: parse_rate("PASAR_RATE_LIMIT_RUNS", self.rate_limit_runs),
        })  # fmt: skip

    def keyring(self) -> Keyring:
        """The encryption keys for secrets at rest (see pasar_core.crypto)."""
        return load_keyring(self.encryption_keys, self.ensure_data_dir() / "encryption_keys.json")

    def resolved_secret_key(self) -> str:
        """PASAR_SECRET_KEY, else a random key kept in the data dir (0600) across restarts."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise StartupError("PASAR_SECRET_KEY must be at least 32 characters long")
            return self.secret_key
        key_file = self.ensure_data_dir() / "secret_key"
        key = create_once(key_file, secrets.token_urlsafe(48)).strip()
        if len(key) < 32:
            raise StartupError(
                f"{key_file} holds a key shorter than 32 characters; delete it to have a new "
                "one made (signed-in sessions end) or set PASAR_SECRET_KEY"
            )
        return key
