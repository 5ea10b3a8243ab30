"""The run-time settings (Orthanc's wildcard matching of transfer syntaxes, encoding names) and the metrics
registry (Orthanc's max-over-10-seconds durations, Prometheus text), in-process."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pacsbox.core.config import config_from_mapping
from pacsbox.core.errors import OutOfRange
from pacsbox.core.metrics import Metrics, labelled, prometheus_text
from pacsbox.core.settings import KNOWN_TRANSFER_SYNTAXES, RuntimeSettings, encoding_name, match_transfer_syntaxes


def test_wildcards_match_as_orthanc_does():
    assert match_transfer_syntaxes(["*"]) == KNOWN_TRANSFER_SYNTAXES
    assert match_transfer_syntaxes(["1.2.840.10008.1.2.?"]) == (
        "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5")
    assert match_transfer_syntaxes(["1.2.840.10008.1.2", "1.2.840.10008.1.2"]) == ("1.2.840.10008.1.2",)
    assert match_transfer_syntaxes(["[1]*", "1.2.840.10008.1.2.[1]"]) == ()  # brackets are literal
    assert match_transfer_syntaxes([]) == match_transfer_syntaxes([""]) == ()
    jpeg = match_transfer_syntaxes(["1.2.840.10008.1.2.4.*"])
    assert jpeg[0] == "1.2.840.10008.1.2.4.50" and jpeg[-1] == "1.2.840.10008.1.2.4.108" and len(jpeg) == 35


def test_settings_come_from_the_configuration_and_change_at_run_time():
    settings = RuntimeSettings(config_from_mapping({
        "DefaultEncoding": "utf8", "AcceptedTransferSyntaxes": "1.2.840.10008.1.2.1", "UnknownSopClassAccepted": True,
        "MetricsEnabled": False}))
    assert settings.default_encoding == "Utf8" and settings.accepted_transfer_syntaxes == ("1.2.840.10008.1.2.1",)
    assert settings.unknown_sop_class_accepted and not settings.metrics_enabled
    assert settings.set_default_encoding("LATIN2") == "Latin2" and encoding_name("bogus") is None
    with pytest.raises(OutOfRange):
        settings.set_default_encoding("utf-8")
    with pytest.raises(ValueError, match="AcceptedTransferSyntaxes"):
        config_from_mapping({"AcceptedTransferSyntaxes": 12})


def test_metrics_text_parses_and_durations_keep_the_largest_of_the_window():
    metrics = Metrics()
    metrics.observe_max("orthanc_rest_api_duration_ms", 5)
    metrics.observe_max("orthanc_rest_api_duration_ms", 3)
    metrics.add(labelled("pacsbox_dimse_requests_total", operation="C-ECHO"), 2)
    metrics.set("orthanc_disk_size_mb", 0.0373096466)
    families = {f.name: f.samples[0] for f in text_string_to_metric_families(prometheus_text(metrics.samples()))}
    assert families["orthanc_rest_api_duration_ms"].value == 5
    assert families["pacsbox_dimse_requests_total"].labels == {"operation": "C-ECHO"}
    assert families["orthanc_disk_size_mb"].value == pytest.approx(0.0373096466)
    switched_off = Metrics(lambda: False)
    switched_off.add("x")
    assert switched_off.samples() == []
