"""Server settings, read once from the environment and passed explicitly (no globals)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from pasar_core.crypto import Keyring, load_keyring
from pasar_core.errors import StartupError

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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. `database_url=None` means: start the embedded PostgreSQL."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    secret_key: str | None = None
    encryption_keys: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    enabled_plugins: tuple[str, ...] | None = None
    access_token_ttl_s: int = 3600
    max_body_bytes: int = 1_048_576
    db_pool_size: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        plugins = env.get("PASAR_PLUGINS")
        return cls(
            data_dir=Path(env["PASAR_DATA_DIR"])
            if env.get("PASAR_DATA_DIR")
            else default_data_dir(),
            database_url=env.get("DATABASE_URL") or None,
            secret_key=env.get("PASAR_SECRET_KEY") or None,
            encryption_keys=env.get("PASAR_ENCRYPTION_KEYS") or None,
            host=env.get("PASAR_HOST", "127.0.0.1"),
            port=_int(env, "PASAR_PORT", 8000),
            enabled_plugins=(
                tuple(p.strip() for p in plugins.split(",") if p.strip()) if plugins else None
            ),
            access_token_ttl_s=_int(env, "PASAR_ACCESS_TOKEN_TTL", 3600),
            max_body_bytes=_int(env, "PASAR_MAX_BODY_BYTES", 1_048_576),
            db_pool_size=_int(env, "PASAR_DB_POOL_SIZE", 10),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

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
        if key_file.exists():
            return key_file.read_text().strip()
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
