"""Fast layer (no emulator, no database): the inbox's handler registry and the priority an event
gets when it is accepted."""

from __future__ import annotations

import pytest

from siyu.wecom import inbox

EVENT = "h15_probe_event"  # an event name no app registers


@pytest.fixture
def registry():
    """The registry as the apps left it, restored after the test."""
    saved = {k: list(v) for k, v in inbox.HANDLERS.items()}, set(inbox.REREADS)
    yield inbox
    inbox.HANDLERS.clear()
    inbox.HANDLERS.update(saved[0])
    inbox.REREADS.clear()
    inbox.REREADS.update(saved[1])


def test_handlers_are_found_by_change_type_and_wildcard(registry):
    @registry.handles(EVENT, "add", "edit")
    def on_change(event):
        return None

    @registry.handles(EVENT)
    def on_any(event):
        return None

    assert registry.handlers_for(EVENT, "add") == [on_change, on_any]
    assert registry.handlers_for(EVENT, "edit") == [on_change, on_any]
    assert registry.handlers_for(EVENT, "del") == [on_any]
    assert registry.handlers_for("h15_unknown", "add") == []


def test_rereads_are_declared_per_change_type(registry):
    @registry.handles(EVENT, "edit", rereads=True)
    def on_edit(event):
        return None

    @registry.handles(EVENT, "add")
    def on_add(event):
        return None

    assert registry.rereads(EVENT, "edit") and not registry.rereads(EVENT, "add")
    registry.handles(f"{EVENT}_all", rereads=True)(on_edit)
    assert registry.rereads(f"{EVENT}_all", "anything")


def test_the_apps_register_their_handlers():
    """The product's apps register from their ready(): customers' adds and edits, groups' changes."""
    assert inbox.handlers_for("change_external_contact", "add_external_contact")
    assert inbox.handlers_for("change_external_contact", "edit_external_contact")
    assert inbox.rereads("change_external_contact", "edit_external_contact")
    assert inbox.handlers_for("change_external_chat", "update")


@pytest.mark.parametrize(
    "event,priority",
    [
        ({"Event": "change_external_contact", "ChangeType": "add_external_contact", "WelcomeCode": "w"}, inbox.HIGH),
        (
            {"Event": "change_external_contact", "ChangeType": "add_half_external_contact", "WelcomeCode": "w"},
            inbox.HIGH,
        ),
        ({"Event": "change_external_contact", "ChangeType": "add_external_contact"}, 0),
        ({"Event": "change_external_contact", "ChangeType": "edit_external_contact", "WelcomeCode": "w"}, 0),
        ({"Event": "change_external_chat", "ChangeType": "update"}, 0),
        ({}, 0),
    ],
)
def test_only_adds_with_a_welcome_code_jump_the_queue(event, priority):
    assert inbox.priority_of(event) == priority


def test_a_batched_write_called_alone_runs_its_kind_with_one_item():
    seen = []
    write = inbox.Batched(seen.append, "row-1")
    write()
    assert seen == [["row-1"]]
