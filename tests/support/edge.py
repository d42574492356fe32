"""Edge limits for protocol tests: roomy enough that no test trips one it is not about."""

from __future__ import annotations

from voice_gateway.ops.edge_protocol import EdgeLimits

ROOMY_LIMITS = EdgeLimits(
    max_header_bytes=8192,
    header_read_timeout_s=10,
    body_read_timeout_s=10,
    max_connections=100,
    max_requests_in_flight=100,
)
