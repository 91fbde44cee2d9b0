"""OpenTelemetry traces, configured only by the standard `OTEL_*` environment variables.

Tracing is on when an exporter is named, and deskgate never sends data anywhere unless told to:

    OTEL_SDK_DISABLED=true                 off, whatever else is set
    OTEL_TRACES_EXPORTER=otlp[,console]    on: OTLP over HTTP/protobuf and/or JSON lines on stderr
    OTEL_TRACES_EXPORTER=none              off
    OTEL_TRACES_EXPORTER unset             on (otlp) only when OTEL_EXPORTER_OTLP_ENDPOINT or
                                           OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; else off

Everything else is read by the SDK itself, as the specification says: the endpoint, headers,
timeout, compression and certificates (`OTEL_EXPORTER_OTLP_[TRACES_]*`), the sampler
(`OTEL_TRACES_SAMPLER[_ARG]`), batching (`OTEL_BSP_*`), span limits and the resource
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`; `service.name` defaults to `deskgate`). A value
deskgate cannot honour (another exporter, the gRPC protocol) stops start-up with a `ConfigError`.

The console exporter writes to stderr: on stdio, stdout is the MCP stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from deskgate.server.errors import ConfigError

_EXPORTERS = ("otlp", "console")
_PROTOCOL = "http/protobuf"


def exporter_names() -> list[str]:
    """The exporters the environment asks for; empty when tracing is off."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = env.get("OTEL_TRACES_EXPORTER")
    if named is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    names = list(dict.fromkeys(n.strip().lower() for n in named.split(",") if n.strip()))
    if names == ["none"] or not names:
        return []
    unknown = [n for n in names if n not in _EXPORTERS]
    if unknown:
        raise ConfigError(f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not available; deskgate exports traces "
                          "with otlp (HTTP/protobuf) or console, or none")
    return names


def provider_from_environment(span_exporters: Sequence[SpanExporter] | None = None) -> TracerProvider | None:
    """A tracer provider as the `OTEL_*` variables ask for, or None when tracing is off.

    `span_exporters`, when given, replace the exporters the environment names (tests hand in the SDK's
    `InMemorySpanExporter`); they export each span as it ends. Exporters named by the environment
    send theirs in batches, off the caller's thread (`OTEL_BSP_*`).
    """
    processors: list[SpanProcessor]
    if span_exporters is not None:
        processors = [SimpleSpanProcessor(exporter) for exporter in span_exporters]
    else:
        processors = [BatchSpanProcessor(_exporter(name)) for name in exporter_names()]
    if not processors:
        return None
    provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    # The signal's own variable wins over the general one, as the specification says.
    named = [(v, os.environ.get(v, "").strip()) for v in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                                          "OTEL_EXPORTER_OTLP_PROTOCOL")]
    variable, protocol = next(((v, p) for v, p in named if p), ("", _PROTOCOL))
    if protocol != _PROTOCOL:
        raise ConfigError(f"{variable}: {protocol!r} is not available; deskgate sends OTLP as {_PROTOCOL}")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression, TLS: from OTEL_EXPORTER_OTLP_*


def _resource() -> Resource:
    """The SDK's resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; by default deskgate's name and version."""
    try:
        defaults = Resource({SERVICE_VERSION: version("deskgate")})
    except PackageNotFoundError:
        defaults = Resource({})
    resource = defaults.merge(Resource.create())
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "deskgate"}))
    return resource


__all__ = ["exporter_names", "provider_from_environment"]
