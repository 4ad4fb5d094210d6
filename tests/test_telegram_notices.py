"""Notices: usage, expiry and node events reach clients and admins, once each."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta

import pytest

from plugins.telegram_bot.models import TelegramOutbox
from tests.telegram_standin import ADMIN
from tests.telegram_standin import CLIENT
from tests.telegram_standin import Harness
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.services import clients as service
from webpanel.services import sync
from webpanel.services.inputs import GB
from webpanel.services.invites import make_invite
from xray.simulator import Simulator

# The panel's own jobs would race the test for the same events: keep them idle.
QUIET = {"POLL_SECONDS": "3600", "RECOVER_SECONDS": "3600", "ENFORCE_SECONDS": "3600"}


def start_quiet(start_bot: Callable[..., Harness]) -> Harness:
    return start_bot(**QUIET)


@pytest.fixture
def quiet(start_bot: Callable[..., Harness]) -> Iterator[Harness]:
    harness = start_quiet(start_bot)
    with harness.app.app_context(), db.connection_context():
        yield harness


def bind(harness: Harness, **limits) -> Client:
    client = service.create_client("Erin", **limits)
    harness.say(CLIENT, f"/start {make_invite(client).code}")
    return client


def use(client: Client, amount: int) -> None:
    Client.update(uplink=amount).where(Client.id == client.id).execute()


def notices(harness: Harness, chat_id: int, word: str, count: int = 1) -> list[str]:
    """Wait until `count` messages containing word reached the chat."""

    def found() -> list[str]:
        texts = [m.plain for m in harness.api.sent(chat_id, "text")]
        matching = [text for text in texts if word in text]
        return matching if len(matching) >= count else []

    return harness.api.wait_for(found, what=f"{count} × {word!r} to {chat_id}")


def test_it_warns_client_and_admins_at_80_percent_once(quiet: Harness):
    client = bind(quiet, data_limit=10 * GB)
    use(client, 8 * GB + 1)

    assert quiet.bot.notices.check() == 1
    assert quiet.bot.notices.check() == 0

    mine = notices(quiet, CLIENT, "80 %")
    admins = notices(quiet, ADMIN, "80 %")
    assert mine == ["⚠️ You have used 80 % of your traffic: 8.00 GB of 10.00 GB."]
    assert admins == ["⚠️ Erin has used 80 % of the limit: 8.00 GB of 10.00 GB."]
    assert (
        quiet.api.sent(ADMIN, "text")[-1].button("Open Erin") == f"a:open:{client.id}"
    )


def test_it_tells_both_when_enforcement_finds_the_limit_used_up(quiet: Harness):
    client = bind(quiet, data_limit=GB)
    use(client, GB)

    service.enforce_limits()

    assert notices(quiet, CLIENT, "used up") == [
        "⛔ Your traffic (1.00 GB) is used up; the connection is paused."
    ]
    assert notices(quiet, ADMIN, "used up") == [
        "⛔ Erin used up the limit of 1.00 GB and was paused."
    ]


def test_it_warns_three_days_and_one_day_before_expiry_then_on_expiry(quiet: Harness):
    client = bind(quiet, days=2)
    expire_at = Client.get_by_id(client.id).expire_at

    quiet.bot.notices.check()
    quiet.bot.notices.check(now=expire_at - timedelta(hours=12))
    service.enforce_limits(now=expire_at + timedelta(minutes=1))

    ends = notices(quiet, CLIENT, "subscription ends", count=2)
    assert "(in 2 d)" in ends[0] and "(in 12 h)" in ends[1]
    assert len(notices(quiet, ADMIN, "expires", count=2)) == 2
    assert notices(quiet, CLIENT, "has expired") and notices(
        quiet, ADMIN, "expired and"
    )


def test_it_sends_only_the_nearest_expiry_warning(quiet: Harness):
    client = bind(quiet, days=30)
    expire_at = Client.get_by_id(client.id).expire_at

    assert quiet.bot.notices.check(now=expire_at - timedelta(hours=20)) == 1
    assert quiet.bot.notices.check(now=expire_at - timedelta(hours=10)) == 0

    ends = notices(quiet, CLIENT, "subscription ends")
    assert len(ends) == 1 and "(in 20 h)" in ends[0]


def test_it_warns_again_after_a_usage_reset(quiet: Harness):
    client = bind(quiet, data_limit=10 * GB)
    use(client, 9 * GB)
    quiet.bot.notices.check()
    notices(quiet, CLIENT, "90 %")

    service.reset_usage(Client.get_by_id(client.id))
    use(client, 9 * GB)
    quiet.bot.notices.check()

    notices(quiet, CLIENT, "90 %", count=2)


def test_it_sends_a_notice_once_even_across_a_panel_restart(
    start_bot: Callable[..., Harness],
):
    first = start_quiet(start_bot)
    with first.app.app_context(), db.connection_context():
        client = bind(first, data_limit=10 * GB)
        use(client, 9 * GB)
        first.bot.notices.check()
    notices(first, CLIENT, "90 %")
    first.stop()

    again = start_quiet(start_bot)
    with again.app.app_context(), db.connection_context():
        assert again.bot.notices.check() == 0

    assert len(notices(again, ADMIN, "90 %")) == 1


def test_it_tells_admins_of_a_node_restart_and_the_users_restored(
    quiet: Harness, simulator: Simulator
):
    for name in ("a", "b", "c"):
        service.create_client(name)

    simulator.advance_uptime(100)  # so that the restart shows in the uptime
    sync.recover_node(Node.get())
    simulator.restart()
    sync.recover_node(Node.get())

    assert notices(quiet, ADMIN, "restarted") == ["🔄 Node main restarted."]
    restored = notices(quiet, ADMIN, "restored")
    assert restored[0].startswith("✅ Node main: 3 users restored in ")
    assert quiet.api.sent(CLIENT) == []


def test_it_tells_admins_once_that_a_node_is_down_and_when_it_is_back(
    quiet: Harness, simulator: Simulator
):
    service.create_client("someone")

    simulator.stop()
    sync.recover_node(Node.get())
    sync.recover_node(Node.get())  # still down: no second notice
    simulator.start()
    # The gRPC channel reconnects about a second after the daemon is back.
    quiet.api.wait_for(lambda: sync.recover_node(Node.get()).online, what="the node")

    assert notices(quiet, ADMIN, "is down") == [
        "🔴 Node main is down: its Xray API does not answer."
    ]
    assert notices(quiet, ADMIN, "answers again") == ["🟢 Node main answers again."]


def test_it_drops_a_notice_to_a_chat_that_blocked_the_bot(quiet: Harness):
    client = bind(quiet, data_limit=10 * GB)
    quiet.api.blocked.add(CLIENT)
    use(client, 9 * GB)

    quiet.bot.notices.check()

    notices(quiet, ADMIN, "90 %")
    quiet.api.wait_for(
        lambda: TelegramOutbox.select().count() == 0, what="the outbox to empty"
    )
    assert not [m for m in quiet.api.sent(CLIENT) if "90 %" in m.plain]


def test_it_notifies_in_the_readers_language(quiet: Harness):
    client = service.create_client("Фёдор", data_limit=10 * GB)
    quiet.say(CLIENT, f"/start {make_invite(client).code}", language_code="ru")
    use(client, 8 * GB + 1)

    quiet.bot.notices.check()

    assert notices(quiet, CLIENT, "Израсходовано") == [
        "⚠️ Израсходовано 80 % трафика: 8,00 ГБ из 10,00 ГБ."
    ]
