"""Which OTEL_* settings switch tracing on, to which exporter, and which ones stop start-up."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from deskgate.server import telemetry
from deskgate.server.errors import ConfigError
from deskgate.server.telemetry.tracing import exporter_names, provider_from_environment


def exporters_of(provider: TracerProvider) -> list[object]:
    processors = provider._active_span_processor._span_processors  # the SDK keeps them there
    return [p._batch_processor._exporter for p in processors if isinstance(p, BatchSpanProcessor)]


def test_with_no_otel_variable_tracing_is_off() -> None:
    """Nothing set: no exporter, no provider - deskgate sends nothing anywhere unless told to."""
    assert exporter_names() == []
    assert provider_from_environment() is None


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_alone_switches_otlp_on(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "http://127.0.0.1:4318")
    assert exporter_names() == ["otlp"]
    provider = provider_from_environment()
    assert provider is not None
    (exporter,) = exporters_of(provider)
    assert isinstance(exporter, OTLPSpanExporter)
    provider.shutdown()


@pytest.mark.parametrize(("value", "names"), [("none", []), ("otlp", ["otlp"]), ("console", ["console"]),
                                              (" OTLP , console,otlp", ["otlp", "console"]), ("", [])])
def test_otel_traces_exporter_names_the_exporters(monkeypatch: pytest.MonkeyPatch, value: str,
                                                   names: list[str]) -> None:
    """As the specification spells it: a comma-separated list, `none` for none; an endpoint does not
    override an explicit `none`."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    assert exporter_names() == names


def test_otel_sdk_disabled_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    assert exporter_names() == []
    assert provider_from_environment() is None


@pytest.mark.parametrize(("variable", "value"), [("OTEL_TRACES_EXPORTER", "zipkin"),
                                                 ("OTEL_TRACES_EXPORTER", "otlp,jaeger"),
                                                 ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                                                 ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")])
def test_a_setting_deskgate_cannot_honour_stops_start_up_and_leaves_everything_off(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A ConfigError naming the variable, never a silent fallback; `start` switches nothing on."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        telemetry.start(metrics_port=0)
    assert refused.value.reason.startswith(f"{variable}: ")
    assert telemetry.observed(refused) is refused  # still off: nothing to observe with


def test_the_console_exporter_writes_spans_to_stderr_never_stdout(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """On stdio, stdout is the MCP stream: console spans go to stderr."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = provider_from_environment()
    assert provider is not None
    with provider.get_tracer("test").start_as_current_span("probe"):
        pass
    provider.shutdown()
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err)["name"] == "probe"


def test_the_service_is_named_deskgate_unless_otel_variables_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    default = provider_from_environment()
    assert default is not None
    assert default.resource.attributes["service.name"] == "deskgate"
    assert default.resource.attributes["service.version"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=support-gw,deployment.environment=prod,"
                       "service.version=7")
    named = provider_from_environment()
    assert named is not None
    assert named.resource.attributes["service.name"] == "support-gw"
    assert named.resource.attributes["service.version"] == "7"
    assert named.resource.attributes["deployment.environment"] == "prod"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-gw-eu")
    renamed = provider_from_environment()
    assert renamed is not None and renamed.resource.attributes["service.name"] == "support-gw-eu"
    for provider in (default, named, renamed):
        provider.shutdown()
