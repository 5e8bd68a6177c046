"""The page registry: app.py builds navigation from it, guards read it, tests walk it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.alerts import ALERT_ROLES
from hub.analytics import EXPLORE_ROLES, OVERVIEW_ROLES
from hub.quality import FEED_ROLES
from hub.response import RESPONSE_ROLES
from hub.security.access import REQUESTER_ROLES
from hub.security.policy import AGGREGATE_ROLES, AUDIT_ROLES
from hub.situation import SITUATION_ROLES
from hub.watch import LIST_ROLES as WATCH_ROLES

LOOKUP_ROLES = frozenset(
    {"officer", "investigator", "city_approver", "province_approver", "commander"}
)
REQUEST_ROLES = REQUESTER_ROLES

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the URL path
    file: str  # relative to the repository root
    title_key: str  # i18n key
    icon: str
    roles: frozenset[str]

    @property
    def path(self) -> Path:
        return ROOT / self.file


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "overview", "pages/overview.py", "page_overview", ":material/monitoring:", OVERVIEW_ROLES
    ),
    PageSpec("province", "pages/province.py", "page_province", ":material/map:", AGGREGATE_ROLES),
    PageSpec(
        "situation",
        "pages/situation.py",
        "page_situation",
        ":material/crisis_alert:",
        SITUATION_ROLES,
    ),
    PageSpec("lookup", "pages/lookup.py", "page_lookup", ":material/search:", LOOKUP_ROLES),
    PageSpec("trajectory", "pages/trajectory.py", "traj_page", ":material/route:", LOOKUP_ROLES),
    PageSpec(
        "requests", "pages/requests.py", "page_requests", ":material/approval:", REQUEST_ROLES
    ),
    PageSpec("explore", "pages/explore.py", "page_explore", ":material/analytics:", EXPLORE_ROLES),
    PageSpec("audit", "pages/audit.py", "page_audit", ":material/policy:", AUDIT_ROLES),
    PageSpec("feeds", "pages/feeds.py", "page_feeds", ":material/upload_file:", FEED_ROLES),
    PageSpec("quality", "pages/quality.py", "page_quality", ":material/fact_check:", FEED_ROLES),
    PageSpec(
        "response", "pages/response.py", "page_response", ":material/emergency:", RESPONSE_ROLES
    ),
    PageSpec("alerts", "pages/alerts.py", "page_alerts", ":material/campaign:", ALERT_ROLES),
    PageSpec("watch", "pages/watch.py", "page_watch", ":material/visibility:", WATCH_ROLES),
)
PAGES_BY_KEY = {p.key: p for p in PAGES}


def pages_for(role: str) -> list[PageSpec]:
    return [p for p in PAGES if role in p.roles]
