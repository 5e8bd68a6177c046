"""One settings object for the app, the CLI, the tests and Alembic.

Values come from environment variables first, then from root-level keys of
`.streamlit/secrets.toml` (the same keys Streamlit itself exposes as environment
variables), then from demo defaults. The demo defaults are named so that
`HUB_ENV=production` can refuse to start while any of them is still in use.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
SECRETS_FILE = ROOT / ".streamlit" / "secrets.toml"

# Demo-only keys: published in the repository, so never acceptable in production.
DEMO_SM4_KEY = "00112233445566778899aabbccddeeff"
DEMO_BLIND_INDEX_KEY = "demo-blind-index-key-not-for-production"
DEMO_COOKIE_SECRET = "demo-cookie-secret-not-for-production"

# Days each dataset's records are kept before `python -m hub retention apply` purges them
# (records linked to open cases are always kept); HUB_RETENTION_<DATASET>=days overrides,
# 0 keeps a dataset for ever.
DEFAULT_RETENTION_DAYS = {
    "sightings": 180,
    "help_requests": 1095,
    "alerts": 1095,
    "incidents": 1825,
}


class SettingsError(ValueError):
    """A setting has a value the hub cannot use; the message names it."""


def default_database_url() -> str:
    """The embedded store: a SQLite file under `data/`."""
    return f"sqlite:///{DATA_DIR / 'hub.db'}"


@dataclass(frozen=True)
class Settings:
    """Typed configuration; build it with :func:`load_settings`."""

    database_url: str = field(default_factory=default_database_url)
    env: str = "demo"
    map_style: str | None = None
    sm4_key_hex: str = DEMO_SM4_KEY
    sm4_key_id: str = "demo-1"
    # Retired SM4 keys still needed to read rows written under them, as "id:hex,id:hex"
    # (HUB_SM4_OLD_KEYS); `hub keys status` says which rows still use each.
    sm4_old_keys: str = ""
    blind_index_key: str = DEMO_BLIND_INDEX_KEY
    timezone: str = "Asia/Shanghai"
    # Alarm thresholds overridden by HUB_ALARM_<FIELD> (e.g. HUB_ALARM_BURST_COUNT=50),
    # as field name -> int; fields are those of hub.security.alarms.Thresholds.
    alarm_overrides: tuple[tuple[str, int], ...] = ()
    retention_overrides: tuple[tuple[str, int], ...] = ()
    # Minutes a pushed alert may stay unacknowledged before it escalates to the province.
    alert_escalate_minutes: float = 30.0
    # Sessions: signed out after this many idle minutes, and after this many hours whatever
    # happens (HUB_SESSION_IDLE_MINUTES, HUB_SESSION_MAX_HOURS).
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    # Break-glass grants one user may take in a day (HUB_BREAK_GLASS_DAILY_CAP).
    break_glass_daily_cap: int = 3
    # Uploaded feed files: size as sent, size once decompressed (xlsx is a zip), and rows
    # (HUB_UPLOAD_MAX_MB, HUB_UPLOAD_MAX_UNPACKED_MB, HUB_UPLOAD_MAX_ROWS).
    upload_max_mb: float = 200.0
    upload_max_unpacked_mb: float = 300.0
    upload_max_rows: int = 5_000_000
    # Processes that check a feed's chunks beside the ingest's own (HUB_INGEST_WORKERS;
    # 0: none). Unset: none on two cores or fewer, else all cores but two.
    ingest_workers: int | None = None
    # Signed checkpoints of the audit chain, written outside the database: every N entries
    # and every M minutes (HUB_AUDIT_CHECKPOINT_EVERY, HUB_AUDIT_CHECKPOINT_MINUTES), into
    # HUB_AUDIT_ANCHOR_DIR, signed with the private key in the file HUB_AUDIT_SIGNING_KEY.
    audit_checkpoint_every: int = 1000
    audit_checkpoint_minutes: float = 5.0
    audit_anchor_dir: str = str(DATA_DIR / "audit-anchor")
    audit_signing_key_file: str | None = None
    # A streaming replica of the PostgreSQL store for the read-only aggregates
    # (HUB_REPLICA_URL); pages say how old its data is past HUB_REPLICA_LAG_NOTICE_SECONDS,
    # and reads go back to the primary past HUB_REPLICA_MAX_LAG_SECONDS or when it is down.
    replica_url: str | None = None
    # The live feeds' bus: a JetStream cluster (comma-separated nats:// servers) with the
    # hub consumer's credentials and the streams' replica count; without HUB_BUS_URL the
    # embedded server started by ./run (HUB_BUS_USER, HUB_BUS_PASSWORD, HUB_BUS_REPLICAS).
    bus_url: str | None = None
    bus_user: str | None = None
    bus_password: str | None = None
    bus_replicas: int = 3
    replica_lag_notice_seconds: float = 10.0
    replica_max_lag_seconds: float = 300.0

    @property
    def retention_days(self) -> dict[str, int]:
        """Dataset -> days its records are kept (0: for ever)."""
        return {**DEFAULT_RETENTION_DAYS, **dict(self.retention_overrides)}

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def demo_defaults_in_use(self) -> list[str]:
        """Names of settings that still hold a published demo value."""
        found = []
        if self.sm4_key_hex == DEMO_SM4_KEY:
            found.append("HUB_SM4_KEY")
        if self.blind_index_key == DEMO_BLIND_INDEX_KEY:
            found.append("HUB_BLIND_INDEX_KEY")
        return found


_ENV_KEYS = {
    "HUB_DATABASE_URL": "database_url",
    "HUB_ENV": "env",
    "HUB_MAP_STYLE": "map_style",
    "HUB_SM4_KEY": "sm4_key_hex",
    "HUB_SM4_KEY_ID": "sm4_key_id",
    "HUB_SM4_OLD_KEYS": "sm4_old_keys",
    "HUB_BLIND_INDEX_KEY": "blind_index_key",
    "HUB_TIMEZONE": "timezone",
    "HUB_AUDIT_ANCHOR_DIR": "audit_anchor_dir",
    "HUB_AUDIT_SIGNING_KEY": "audit_signing_key_file",
    "HUB_REPLICA_URL": "replica_url",
    "HUB_BUS_URL": "bus_url",
    "HUB_BUS_USER": "bus_user",
    "HUB_BUS_PASSWORD": "bus_password",
}
# HUB_ENV takes exactly one of these: a misspelt "Production" must not start a demo.
ENVIRONMENTS = ("demo", "production")
# Numeric settings: variable -> (field, type, lowest allowed value, what it is).
_NUMBERS = {
    "HUB_ALERT_ESCALATE_MINUTES": ("alert_escalate_minutes", float, 0.01, "minutes"),
    "HUB_SESSION_IDLE_MINUTES": ("session_idle_minutes", float, 1.0, "minutes"),
    "HUB_SESSION_MAX_HOURS": ("session_max_hours", float, 0.1, "hours"),
    "HUB_BREAK_GLASS_DAILY_CAP": ("break_glass_daily_cap", int, 0, "grants a day"),
    "HUB_UPLOAD_MAX_MB": ("upload_max_mb", float, 0.001, "MB"),
    "HUB_UPLOAD_MAX_UNPACKED_MB": ("upload_max_unpacked_mb", float, 0.001, "MB"),
    "HUB_UPLOAD_MAX_ROWS": ("upload_max_rows", int, 1, "rows"),
    "HUB_INGEST_WORKERS": ("ingest_workers", int, 0, "processes"),
    "HUB_AUDIT_CHECKPOINT_EVERY": ("audit_checkpoint_every", int, 1, "entries"),
    "HUB_AUDIT_CHECKPOINT_MINUTES": ("audit_checkpoint_minutes", float, 0.01, "minutes"),
    "HUB_REPLICA_LAG_NOTICE_SECONDS": ("replica_lag_notice_seconds", float, 0.0, "seconds"),
    "HUB_REPLICA_MAX_LAG_SECONDS": ("replica_max_lag_seconds", float, 0.0, "seconds"),
    "HUB_BUS_REPLICAS": ("bus_replicas", int, 1, "replicas"),
}


def _secrets(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_settings(
    environ: dict[str, str] | None = None, secrets_file: Path = SECRETS_FILE
) -> Settings:
    """Read settings from the environment and `.streamlit/secrets.toml`.

    Parameters
    ----------
    environ
        Mapping to read instead of ``os.environ`` (tests).
    secrets_file
        Path of the TOML secrets file; missing is fine.

    Returns
    -------
    Settings
    """
    env = os.environ if environ is None else environ
    secrets = _secrets(secrets_file)
    values: dict[str, object] = {}
    for key, attr in _ENV_KEYS.items():
        raw = env.get(key)
        if raw is None and isinstance(secrets.get(key), str):
            raw = secrets[key]
        if raw:
            values[attr] = raw
    overrides = {}
    for source in (secrets, env):  # the environment wins over the secrets file
        for key, raw in source.items():
            if key.startswith("HUB_ALARM_"):
                try:
                    overrides[key.removeprefix("HUB_ALARM_").lower()] = int(raw)
                except (TypeError, ValueError):
                    raise SettingsError(f"{key} must be a whole number, not {raw!r}") from None
    values["alarm_overrides"] = tuple(sorted(overrides.items()))
    retention = {}
    for source in (secrets, env):
        for key, raw in source.items():
            if key.startswith("HUB_RETENTION_"):
                dataset = key.removeprefix("HUB_RETENTION_").lower()
                if dataset not in DEFAULT_RETENTION_DAYS:
                    known = ", ".join(sorted(DEFAULT_RETENTION_DAYS))
                    raise SettingsError(f"{key}: no retention for {dataset!r}; datasets: {known}")
                try:
                    retention[dataset] = int(raw)
                except (TypeError, ValueError):
                    raise SettingsError(
                        f"{key} must be a whole number of days, not {raw!r}"
                    ) from None
                if retention[dataset] < 0:
                    raise SettingsError(f"{key} must be 0 (keep for ever) or more days")
    values["retention_overrides"] = tuple(sorted(retention.items()))
    for key, (attr, kind, lowest, unit) in _NUMBERS.items():
        raw = env.get(key, secrets.get(key))
        if raw is None or raw == "":
            continue
        try:
            number = kind(raw)
        except (TypeError, ValueError):
            number = math.nan
        if not lowest <= number < math.inf:  # NaN fails too
            raise SettingsError(
                f"{key} must be a number of {unit} of at least {lowest}, not {raw!r}"
            )
        values[attr] = number
    if values.get("env", "demo") not in ENVIRONMENTS:
        raise SettingsError(
            f"HUB_ENV must be exactly one of {', '.join(ENVIRONMENTS)}, not {values['env']!r}"
        )
    return Settings(**values)
