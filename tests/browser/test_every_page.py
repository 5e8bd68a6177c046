"""Every role signs in and opens every page it may see from the navigation, in a real
browser: each page draws without an exception, the navigation shows no other page, and
nothing leaves the machine."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from ui.i18n import catalogue
from ui.registry import PAGES, pages_for

pytestmark = pytest.mark.browser

ROLE_USERS = {
    "officer": "officer.hf", "investigator": "investigator.hf", "city_approver": "approver.hf",
    "province_approver": "province.approver", "commander": "commander.hf", "analyst": "analyst",
    "auditor": "auditor", "leader": "leader", "admin": "admin",
}  # fmt: skip


@pytest.mark.parametrize("role", list(ROLE_USERS))
def test_each_allowed_page_opens_and_no_other_is_offered(visit, role):
    sign_in(visit, ROLE_USERS[role])
    page = visit.page
    nav = page.get_by_test_id("stSidebarNav")
    allowed = pages_for(role)
    titles = {p.key: catalogue()[p.title_key]["zh"] for p in PAGES}
    for spec in PAGES:
        shown = nav.get_by_text(titles[spec.key], exact=True).count()
        # With a single page Streamlit shows no navigation at all.
        expected = 1 if spec in allowed and len(allowed) > 1 else 0
        assert shown == expected, f"{role}: nav entry for {spec.key}"
    for spec in allowed:
        if len(allowed) > 1:
            nav.get_by_text(titles[spec.key], exact=True).click()
            visit.settle()
        assert page.get_by_test_id("stException").count() == 0, f"{role} on {spec.key}"
        assert page.get_by_text("This app has encountered an error").count() == 0, spec.key
    visit.shot(f"role-{role}-last-page")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"
