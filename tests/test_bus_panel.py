"""The Feeds page's live bus panel (issue 17) as the feed operators see it: a bus that is
down reads as a message (never an error) with freshness from the store and the message
contract; a real bus that is up shows its figures, each city's freshness and the parked
messages with reason and tries; other roles are refused by the hub. Every text in the
reader's language and on the province's clock (tests/test_language.py's checker)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from hub import bus_view
from hub.live import bus
from hub.live.consumer import Options, StreamConsumer
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied
from hub.service import Hub
from hub.settings import load_settings
from tests.bus_support import HEFEI, ensure, hub_endpoint, incident, publish_raw, running_server
from tests.conftest import ROOT
from tests.security_support import principal, seeded_copy
from tests.test_language import offences, visible_text

OPERATOR = "province.approver"


@pytest.fixture
def store(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    yield engine
    engine.dispose()


@pytest.fixture
def page_env(store, monkeypatch):
    """The app's settings pointed at the copy; the bus settings are each test's."""
    monkeypatch.setenv("HUB_DATABASE_URL", store.url.render_as_string(hide_password=False))
    for name in ("HUB_BUS_URL", "HUB_BUS_USER", "HUB_BUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield monkeypatch
    st.cache_resource.clear()
    st.cache_data.clear()


def _shown(markdown: str) -> str:
    """Text as the page shows it: ui.text.plain escapes punctuation and breaks `:` runs."""
    return markdown.replace("\\", "").replace("\u2060", "")


def feeds_page(store, lang: str, username: str = OPERATOR) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/feeds.py"), default_timeout=90)
    at.session_state["lang"] = lang
    at.session_state["principal"] = principal(store, username)
    at = at.run()
    assert not at.exception, at.exception
    return at


def codes(at: AppTest) -> str:
    return "\n".join(c.value for c in at.code)


def frame_with(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_bus_down_is_a_message_with_freshness_and_the_contract(store, page_env, lang):
    port = bus.free_port()  # nothing listens there
    page_env.setenv("HUB_BUS_URL", f"nats://127.0.0.1:{port}")
    page_env.setenv("HUB_BUS_USER", bus.HUB_USER)
    page_env.setenv("HUB_BUS_PASSWORD", "not-used")
    at = feeds_page(store, lang)

    assert not at.error, [e.value for e in at.error]  # down is an answer, not an error
    down = [_shown(w.value) for w in at.warning]
    word = "实时总线当前未连接" if lang == "zh" else "not reachable"
    assert any(word in w and f"127.0.0.1:{port}" in w for w in down), down
    state = {m.label: m.value for m in at.metric}
    assert state["状态" if lang == "zh" else "State"] == ("未连接" if lang == "zh" else "Down")
    # Freshness comes from the store: every city × streamed dataset, none ever streamed.
    fresh = frame_with(at, "批次数" if lang == "zh" else "Batches")
    assert len(fresh) == 16 * len(bus.STREAM_DATASETS)
    assert set(fresh["状态" if lang == "zh" else "State"]) == {
        "从未送达" if lang == "zh" else "Never arrived"}  # fmt: skip
    assert ("合肥市" if lang == "zh" else "Hefei") in set(fresh["地市" if lang == "zh" else "City"])
    # The contract a city builds against, as machine text the client takes verbatim.
    machine = codes(at)
    for text in (f"hub.feed.{HEFEI}.incidents", "Nats-Msg-Id", f"city-{HEFEI}",
                 f"_INBOX_{HEFEI}", f"python -m hub bus credentials --city {HEFEI}",
                 '"type_code": "theft"', '"plate": "皖A12345"'):  # fmt: skip
        assert text in machine, text
    assert offences(visible_text(at), lang) == []


def test_a_bus_never_set_up_reads_down_and_makes_nothing_on_disk(
    store, page_env, tmp_path, monkeypatch
):
    monkeypatch.setattr(bus, "NATS_DIR", tmp_path / "nats")
    at = feeds_page(store, "zh")
    assert not at.error
    assert any("实时总线当前未连接" in w.value for w in at.warning)
    assert not (tmp_path / "nats").exists()  # no credentials made for a bus that does not run


@pytest.fixture
def nats_server(tmp_path) -> Iterator[bus.LocalServer]:
    yield from running_server(tmp_path)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_bus_up_shows_figures_freshness_and_parked_messages(store, page_env, nats_server, lang):
    ensure(nats_server)
    items = [("incidents", incident(i), f"{HEFEI}:incidents:P-{i}") for i in range(5)]
    items.insert(2, ("incidents", b'{"source_id": "\xff\xfe bad bytes"}', "poison"))
    asyncio.run(publish_raw(nats_server, HEFEI, items))
    consumer = StreamConsumer(store, hub_endpoint(nats_server), FieldCipher.from_settings(load_settings()),
                              options=Options(max_wait_s=0.2, nak_delay_s=0.1, max_tries=2))  # fmt: skip
    stats = asyncio.run(asyncio.wait_for(consumer.run(drain=True), 120))
    assert stats.parked == 1
    page_env.setenv("HUB_BUS_URL", nats_server.url)
    page_env.setenv("HUB_BUS_USER", bus.HUB_USER)
    page_env.setenv("HUB_BUS_PASSWORD", nats_server.creds[bus.HUB_USER])
    at = feeds_page(store, lang)

    assert not at.error, [e.value for e in at.error]
    port = nats_server.url.rsplit(":", 1)[1]
    assert any(f"127.0.0.1:{port}" in _shown(s.value) for s in at.success)  # as shown
    zh = lang == "zh"
    figures = {m.label: m.value for m in at.metric}
    assert figures["状态" if zh else "State"] == ("运行中" if zh else "Up")
    assert figures["已搁置" if zh else "Parked"] == "1"
    assert figures["待处理（积压）" if zh else "Waiting (lag)"] == "0"
    fresh = frame_with(at, "批次数" if zh else "Batches")
    city, ds, state = ("地市", "数据集", "状态") if zh else ("City", "Dataset", "State")
    hefei = fresh[
        (fresh[city] == ("合肥市" if zh else "Hefei"))
        & (fresh[ds] == ("警情" if zh else "Incidents"))
    ]
    assert list(hefei[state]) == ["正常" if zh else "Fresh"]
    dead = frame_with(at, "尝试次数" if zh else "Tries")
    assert len(dead) == 1
    row = dead.iloc[0]
    assert row["尝试次数" if zh else "Tries"] == "2"
    assert row["原因" if zh else "Reason"] == ("编码错误" if zh else "Wrong encoding")
    assert row[city] == ("合肥市" if zh else "Hefei")
    assert f"hub.feed.{HEFEI}.incidents" in codes(at)  # the subject, in the technical detail
    assert offences(visible_text(at), lang) == []


def test_other_roles_are_refused_by_the_hub(store, page_env):
    page_env.setenv("HUB_BUS_URL", f"nats://127.0.0.1:{bus.free_port()}")
    hub = Hub(store, load_settings())
    with pytest.raises(AccessDenied):
        bus_view.snapshot(hub, principal(store, "investigator.hf"))
    view = bus_view.snapshot(hub, principal(store, "admin"))
    assert len(view.freshness) == 16 * len(bus.STREAM_DATASETS)
