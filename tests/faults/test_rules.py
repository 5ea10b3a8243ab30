"""Fault rules in-process: the format's checks (each bad rule refused with its reason), matching, and when a rule
fires (always, first N, after N, a seeded probability that replays the same way)."""

from __future__ import annotations

import pytest

from pacsbox.faults.rules import ASSOCIATION, FaultRules, Request, RuleError, parse_rule

UPLOAD = Request("orthanc", method="POST", path="/instances")


@pytest.mark.parametrize(("rule", "reason"), [
    ({"face": "nope", "action": {"http_status": 503}}, "face must be one of"),
    ({"action": {"http_status": 503}}, "face must be one of"),
    ({"face": "orthanc", "action": {"http_status": 99}}, "action.http_status must be between 200 and 599"),
    ({"face": "orthanc", "action": {"http_status": "503"}}, "action.http_status must be an integer"),
    ({"face": "orthanc", "first": -1, "action": {"http_status": 503}}, "first must be at least 0"),
    ({"face": "orthanc", "after": -3, "action": {"http_status": 503}}, "after must be at least 0"),
    ({"face": "orthanc", "probability": 1.5, "action": {"http_status": 503}}, "probability must be a number"),
    ({"face": "orthanc", "seed": 3, "action": {"http_status": 503}}, "seed needs a probability"),
    ({"face": "orthanc", "action": {}}, "action needs http_status, delay or close"),
    ({"face": "orthanc", "action": {"dimse_status": 42752}}, "action.dimse_status does not apply to face orthanc"),
    ({"face": "orthanc", "path": "instances", "action": {"http_status": 503}}, "path must start with '/'"),
    ({"face": "orthanc", "operation": "C-STORE", "action": {"http_status": 503}}, "operation applies to face dimse"),
    ({"face": "orthanc", "colour": "red", "action": {"http_status": 503}}, "unknown key 'colour'"),
    ({"face": "orthanc", "action": {"delay": -1}}, "action.delay must be a number of seconds"),
    ({"face": "dimse", "operation": "C-PUSH", "action": {"dimse_status": 42752}}, "operation must be one of"),
    ({"face": "dimse", "action": {"dimse_status": 0}}, "is not a failure or warning status"),
    ({"face": "dimse", "action": {"dimse_status": 0xFF00}}, "is not a failure or warning status"),
    ({"face": "dimse", "action": {"dimse_status": 70000}}, "action.dimse_status must be between 0 and 65535"),
    ({"face": "dimse", "operation": "C-STORE", "action": {"reject": True}}, "operation must be \"association\""),
    ({"face": "dimse", "operation": "C-STORE", "action": {"failed_suboperations": 1}}, "needs operation C-MOVE"),
    ({"face": "dimse", "operation": "C-MOVE", "action": {"failed_suboperations": 0}},
     "action.failed_suboperations must be at least 1"),
    ({"face": "dimse", "action": {"reject": {"result": 7}}}, "action.reject.result must be 1"),
    ({"face": "dimse", "action": {"dimse_status": 42752, "abort": True}}, "choose one of"),
    ({"face": "dimse", "method": "GET", "action": {"abort": True}}, "method applies to HTTP faces"),
    ([1, 2], "a rule must be a JSON object"),
])
def test_a_bad_rule_is_refused_with_its_reason(rule, reason):
    with pytest.raises(RuleError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        parse_rule(rule, "1")


def test_the_issue_examples_parse_with_their_spellings():
    upload = parse_rule({"face": "orthanc", "method": "POST", "path": "/instances", "first": 2,
                         "action": {"http_status": 503}}, "1")
    store = parse_rule({"face": "dimse", "operation": "C-STORE", "action": {"dimse_status": 42752}}, "2")
    assert (upload.first, upload.action.http_status, store.action.dimse_status) == (2, 503, 0xA700)
    assert parse_rule({"face": "dimse", "action": {"reject": True}}, "3").operation == ASSOCIATION


def test_paths_are_globs_one_star_within_a_segment_two_across():
    rules = FaultRules()
    rules.add({"face": "orthanc", "path": "/instances/*/file", "action": {"http_status": 500}})
    assert rules.fire(Request("orthanc", method="GET", path="/instances/abc/file"))
    assert not rules.fire(Request("orthanc", method="GET", path="/instances/abc/def/file"))
    rules.clear()
    rules.add({"face": "xnat", "path": "/data/**", "action": {"http_status": 500}})
    assert rules.fire(Request("xnat", method="GET", path="/data/projects/P/subjects"))
    assert not rules.fire(Request("orthanc", method="GET", path="/data/projects"))


def test_first_after_and_always():
    rules = FaultRules([{"face": "orthanc", "method": "POST", "path": "/instances", "first": 2,
                         "action": {"http_status": 503}}])
    assert [rules.fire(UPLOAD) is not None for _ in range(4)] == [True, True, False, False]
    assert rules.list()[0]["fired"] == 2 and rules.list()[0]["matched"] == 4
    rules = FaultRules([{"face": "orthanc", "after": 2, "action": {"http_status": 503}}])
    assert [rules.fire(UPLOAD) is not None for _ in range(4)] == [False, False, True, True]
    rules = FaultRules([{"face": "orthanc", "method": "GET", "action": {"http_status": 503}}])
    assert rules.fire(UPLOAD) is None and rules.fire(Request("orthanc", method="HEAD", path="/x")) is not None


def test_a_seeded_probability_fires_on_the_same_requests_every_time():
    def pattern(seed: int) -> list[bool]:
        rules = FaultRules([{"face": "orthanc", "probability": 0.3, "seed": seed, "action": {"http_status": 503}}])
        return [rules.fire(UPLOAD) is not None for _ in range(200)]

    first = pattern(23)
    assert first == pattern(23)
    assert first != pattern(24)
    assert 30 < sum(first) < 90  # about 30 %


def test_a_probability_without_seed_gets_one_shown_for_replay():
    rules = FaultRules()
    shown = rules.add({"face": "orthanc", "probability": 0.5, "action": {"http_status": 503}})
    assert isinstance(shown["seed"], int)
    again = FaultRules([{"face": "orthanc", "probability": 0.5, "seed": shown["seed"], "action": {"http_status": 503}}])
    assert [rules.fire(UPLOAD) is not None for _ in range(50)] == [again.fire(UPLOAD) is not None for _ in range(50)]


def test_dimse_rules_match_operation_aets_and_sop_class():
    rules = FaultRules([{"face": "dimse", "operation": "C-STORE", "calling_aet": "MODALITY",
                         "sop_class": "1.2.840.10008.5.1.4.1.1.2", "action": {"dimse_status": 42752}}])
    store = Request("dimse", operation="C-STORE", calling_aet="MODALITY", called_aet="PACSBOX",
                    sop_classes=("1.2.840.10008.5.1.4.1.1.2",))
    assert rules.fire(store).action.dimse_status == 0xA700
    assert rules.fire(Request("dimse", operation="C-STORE", calling_aet="OTHER",
                              sop_classes=("1.2.840.10008.5.1.4.1.1.2",))) is None
    assert rules.fire(Request("dimse", operation="C-FIND", calling_aet="MODALITY",
                              sop_classes=("1.2.840.10008.5.1.4.1.1.2",))) is None
    assert rules.fire(Request("dimse", operation=ASSOCIATION, calling_aet="MODALITY",
                              sop_classes=("1.2.840.10008.5.1.4.1.1.2",))) is None  # messages only


def test_the_first_rule_that_fires_wins_and_active_follows_the_rules():
    rules = FaultRules()
    assert not rules.active
    first = rules.add({"face": "orthanc", "first": 1, "action": {"http_status": 500}})
    rules.add({"face": "orthanc", "action": {"http_status": 502}})
    assert rules.active
    assert [rules.fire(UPLOAD).action.http_status for _ in range(3)] == [500, 502, 502]
    assert rules.remove(first["id"]) and not rules.remove(first["id"])
    rules.clear()
    assert not rules.active and rules.fire(UPLOAD) is None
