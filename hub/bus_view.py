"""The live bus as the feed operators see it on the Feeds page (issue 17): whether the bus
answers and how far behind the hub's consumer is, how fresh each city's streamed data
is, which messages were parked and why, and each city's part of the message contract.

One call, one role check (`quality.FEED_ROLES`, the caller's session re-checked, a
refusal audited like every other); a bus that is down or not configured is an answer
(`BusStatus.up` false), never an exception. Parked messages are listed by their metadata
only (`hub.live.facade`): their bodies may hold personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hub import quality
from hub.live import bus
from hub.live.facade import STALE_AFTER, BusStatus, DeadLetter, Freshness, LiveFacade
from hub.security.errors import AccessDenied
from hub.security.policy import Principal

if TYPE_CHECKING:
    from hub.service import Hub

DEDUP_HEADER = "Nats-Msg-Id"
STALE_MINUTES = int(STALE_AFTER.total_seconds() // 60)
MAX_TRIES = bus.MAX_TRIES


@dataclass(frozen=True)
class CityContract:
    """What one city's systems need to publish: subjects, account, inbox, header."""

    city_code: str
    user: str
    publish: str  # the subjects the account may publish to
    inbox_prefix: str
    subjects: dict[str, str]  # dataset -> subject
    message_id: str  # the dedup header's value, with <source_id> to fill


@dataclass(frozen=True)
class BusView:
    status: BusStatus
    freshness: list[Freshness]
    dead_letters: list[DeadLetter] | None  # None: not read (the bus is down)
    stale_minutes: int = STALE_MINUTES
    max_tries: int = MAX_TRIES


def city_contract(adcode: str) -> CityContract:
    """One city's part of the message contract `hub standard export` publishes."""
    return CityContract(
        adcode, bus.city_user(adcode), f"{bus.FEED_PREFIX}.{adcode}.>", bus.city_inbox(adcode),
        {ds: bus.feed_subject(adcode, ds) for ds in bus.STREAM_DATASETS},
        bus.msg_id(adcode, "<dataset>", "<source_id>"),
    )  # fmt: skip


def subject_source(subject: str) -> tuple[str, str] | None:
    """(city adcode, dataset) of a feed subject; None for anything else."""
    return bus.parse_subject(subject)


def feed_fields(entity: str) -> tuple[list[str], set[str]]:
    """The fields a city sends for an entity of the standard, and the required ones;
    empty for an entity no feed fills (the hub produces it)."""
    from hub.ingest.datasets import DATASETS

    ds = DATASETS.get(entity)
    if ds is None:
        return [], set()
    return list(ds.fields), set(ds.required)


def _live(hub: Hub) -> tuple[LiveFacade, bool]:
    """The hub's live facade, and whether a bus is configured at all. Without a cluster
    (`HUB_BUS_URL`) and before the embedded bus was ever set up (no credentials yet) there
    is none, and nothing is made on disk for a bus that does not run."""
    if not hub.settings.bus_url and not (bus.NATS_DIR / "credentials.json").is_file():
        embedded = (f"nats://127.0.0.1:{bus.EMBEDDED_PORT}",)
        return LiveFacade(bus.Endpoint(embedded), hub.engine), False
    try:
        return hub.live, True
    except Exception:  # unreadable credentials: still no live path, and still an answer
        return LiveFacade(bus.Endpoint(()), hub.engine), False


def snapshot(hub: Hub, principal: Principal, *, dead_limit: int = 100,
             status: BusStatus | None = None) -> BusView:  # fmt: skip
    """The bus panel's figures for a feed operator (`status` when the caller already
    asked the bus recently).

    Raises
    ------
    AccessDenied
        For a role outside `quality.FEED_ROLES` (audited).
    """

    def check(session) -> None:
        if principal.role not in quality.FEED_ROLES:
            raise AccessDenied("role_not_allowed", "this role cannot do that")

    hub._run(principal, "view", check, now=None, audit_fields={"dataset": "feeds"})
    live, configured = _live(hub)
    if status is None:
        status = live.bus_status() if configured else BusStatus(
            False, live.endpoint.servers, datetime.now(UTC), error="no bus configured")  # fmt: skip
    dead = hub.dead_letters(principal, limit=dead_limit) if status.up else None
    return BusView(status, live.freshness(), dead)
