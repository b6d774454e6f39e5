"""The one topic module: every shape of SPEC 4 / 9.1 builds and parses; nothing else parses."""

import pytest

from terminal import topics
from terminal.topics import DeviceTopic, SiteTopic, TopicError, Topics

T = Topics("careterm", "main", "pad-w03")


def test_device_topics_have_the_contract_shapes() -> None:
    assert T.status == "careterm/main/pad-w03/status"
    assert T.ack == "careterm/main/pad-w03/ack"
    assert T.reply == "careterm/main/pad-w03/reply"
    assert T.telemetry == "careterm/main/pad-w03/telemetry"
    assert T.commands == "careterm/main/pad-w03/cmd/+"
    assert T.event("rating") == "careterm/main/pad-w03/events/rating"
    assert T.event("alert", "dissatisfied") == "careterm/main/pad-w03/alerts/dissatisfied"
    assert T.command("prompt") == "careterm/main/pad-w03/cmd/prompt"
    assert T.site_document("staff") == "careterm/main/staff"


@pytest.mark.parametrize(
    "topic, parsed",
    [
        (
            "careterm/main/pad-w03/events/rating",
            DeviceTopic("careterm", "main", "pad-w03", "events", "rating"),
        ),
        (
            "careterm/main/pad-w03/alerts/storage",
            DeviceTopic("careterm", "main", "pad-w03", "alerts", "storage"),
        ),
        ("careterm/main/pad-w03/status", DeviceTopic("careterm", "main", "pad-w03", "status")),
        (
            "careterm/main/pad-w03/cmd/resend",
            DeviceTopic("careterm", "main", "pad-w03", "cmd", "resend"),
        ),
        ("careterm/main/roster", SiteTopic("careterm", "main", "roster")),
    ],
)
def test_parse_round_trips(topic, parsed) -> None:
    assert topics.parse(topic, "careterm") == parsed
    assert str(parsed) == topic


@pytest.mark.parametrize(
    "topic",
    [
        # another device's topic nested below one's own (the forging of issue 12)
        "careterm/main/pad-a/events/careterm/main/pad-b/events/rating",
        "careterm/main/pad-a/events/rating/extra",
        "careterm/main/pad-a/events/Rating",
        "careterm/main/pad-a/events/",
        "careterm/main/pad-a/alerts",
        "careterm/main/pad-a/status/x",
        "careterm/main/pad-a/whatever",
        "careterm/main/PAD-A/status",
        "careterm/main/+/status",
        "careterm/main/#",
        "careterm/main/menu",
        "other/main/pad-a/status",
        "careterm/main",
        "careterm/main/pad-a/events/" + "x" * 33,
    ],
)
def test_parse_refuses_every_other_shape(topic) -> None:
    with pytest.raises(TopicError):
        topics.parse(topic, "careterm")


def test_a_root_of_several_levels_is_stripped_before_parsing() -> None:
    t = topics.parse("hosp/a/careterm/main/kiosk-01/events/checkin", "hosp/a/careterm")
    assert t == DeviceTopic("hosp/a/careterm", "main", "kiosk-01", "events", "checkin")


def test_builders_refuse_names_that_would_change_the_shape() -> None:
    for bad in ("a/b", "+", "#", "", "Rating", "rating\n"):
        with pytest.raises(TopicError):
            T.event(bad)
    with pytest.raises(TopicError):
        Topics("careterm", "main", "pad+")
    with pytest.raises(TopicError):
        Topics("care/#", "main", "pad")
    for site, device in (("main\n", "pad"), ("main", "pad\n")):  # `$` matches before a \n
        with pytest.raises(TopicError):
            Topics("careterm", site, device)
    with pytest.raises(TopicError):
        Topics("careterm\n", "main", "pad")


def test_filters_and_acl_patterns_are_one_level_deep() -> None:
    assert topics.device_filter("careterm", "events") == "careterm/+/+/events/+"
    assert topics.device_filter("careterm", "status", site="main") == "careterm/main/+/status"
    assert topics.acl_device_pattern("careterm", "main", "alerts") == "careterm/main/%u/alerts/+"
    assert topics.acl_device_pattern("careterm", "main", "reply") == "careterm/main/%u/reply"
