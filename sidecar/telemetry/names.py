"""Attribute and metric names: the OpenTelemetry GenAI semantic conventions (v1.41) and Turnout's own.

The GenAI names are written out here rather than imported from `opentelemetry.semconv._incubating`:
that module is private and renames things between releases; dashboards and alerts depend on
these strings, so they change only when we decide to.

The GenAI conventions moved to their own repository (open-telemetry/semantic-conventions-genai),
which renames the client metrics. Those names are emitted when OTEL_SEMCONV_STABILITY_OPT_IN
contains `gen_ai_latest_experimental` (the conventions' own switch; `Names`, chosen once at setup);
v1.41's by default (docs/decisions/031-genai-latest-names.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# --- GenAI semantic conventions (gen_ai.*), v1.41 ------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"  # opt-in content only
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"  # opt-in content only
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

OPERATION_CHAT: Final = "chat"

# gen_ai.provider.name values, by the wire protocol a provider entry speaks.
PROVIDER_BY_KIND: Final = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
}
# openai_compatible entries: by their `flavor` option where the conventions name the service.
PROVIDER_BY_FLAVOR: Final = {"groq": "groq"}

# --- RPC (the server span) ------------------------------------------------------------------------
RPC_SYSTEM: Final = "rpc.system"
RPC_SERVICE: Final = "rpc.service"
RPC_METHOD: Final = "rpc.method"
RPC_GRPC_STATUS_CODE: Final = "rpc.grpc.status_code"
RPC_SERVICE_NAME: Final = "turnout.v1.RouterService"
# The HTTP front door's calls: operations named "POST /v1/chat/completions", HTTP server spans.
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"

# --- Turnout's own attributes ---------------------------------------------------------------------
ROUTE: Final = "turnout.route"
STRATEGY: Final = "turnout.strategy"
MODEL: Final = "turnout.model"  # the registry name (gen_ai.request.model is the provider's name)
PROVIDER: Final = "turnout.provider"  # the provider entry's configured name
TENANT: Final = "turnout.tenant"  # hashed, never the raw id
REQUEST_ID: Final = "turnout.request_id"
DECISION_MODEL: Final = "turnout.decision.model"
DECISION_CANDIDATES: Final = "turnout.decision.candidates"
DECISION_CANDIDATE_COUNT: Final = "turnout.decision.candidate_count"
DECISION_DROPPED: Final = "turnout.decision.dropped"  # how many models the strategies dropped
DECISION_REASONS: Final = "turnout.decision.reasons"
DECISION_TIME_US: Final = "turnout.decision.time_us"
DECISION_CACHE_HIT: Final = "turnout.decision.cache_hit"
DECISION_TRUNCATED: Final = "turnout.decision.truncated"
CLASSIFIER_SCORE: Final = "turnout.classifier.score"
ATTEMPT_NUMBER: Final = "turnout.attempt.number"
ATTEMPT_CAUSE: Final = "turnout.attempt.cause"
ATTEMPT_OUTCOME: Final = "turnout.attempt.outcome"
ATTEMPT_HEDGED: Final = "turnout.attempt.hedged"
ATTEMPT_RETRY_OF: Final = "turnout.attempt.retry_of"
ATTEMPT_STAGE: Final = "turnout.attempt.stage"
FALLBACK_REASON: Final = "turnout.fallback.reason"
BREAKER_STATE: Final = "turnout.breaker.state"
QUEUE_WAIT_S: Final = "turnout.queue.wait_s"
COST_USD: Final = "turnout.cost.usd"
REFERENCE_MODEL: Final = "turnout.reference_model"
ATTEMPTS: Final = "turnout.attempts"
WINNER: Final = "turnout.winner"
RPC_STATUS: Final = "turnout.rpc.status"  # the status name, e.g. UNAVAILABLE

# --- Metrics --------------------------------------------------------------------------------------
# GenAI client metrics, with the bucket boundaries the conventions recommend.
M_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
M_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
M_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
FIRST_CHUNK_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

# The conventions' latest (semantic-conventions-genai): `gen_ai.client.token.usage` split in a counter
# and a histogram per token type, with no gen_ai.token.type attribute.
LATEST_OPT_IN: Final = "gen_ai_latest_experimental"
M_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
M_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
M_INFERENCE_USAGE_INPUT: Final = "gen_ai.client.inference.usage.input_tokens"  # counter
M_INFERENCE_USAGE_OUTPUT: Final = "gen_ai.client.inference.usage.output_tokens"  # counter
M_INFERENCE_OPERATION_INPUT: Final = "gen_ai.client.inference.operation.input_tokens"  # histogram
M_INFERENCE_OPERATION_OUTPUT: Final = "gen_ai.client.inference.operation.output_tokens"  # histogram
# The routing decision, after the open gen_ai.gateway.* proposal (semantic-conventions-genai#299):
# which gateway routed, and the model alias the caller asked for (Turnout's route).
GATEWAY_NAME: Final = "gen_ai.gateway.name"
GATEWAY_VERSION: Final = "gen_ai.gateway.version"
GATEWAY_REQUEST_MODEL: Final = "gen_ai.gateway.request.model"
GATEWAY: Final = "turnout"

# Turnout's own.
M_REQUEST_DURATION: Final = "turnout.request.duration"
M_DECISION_DURATION: Final = "turnout.decision.duration"
M_ATTEMPTS: Final = "turnout.attempts"
M_FALLBACKS: Final = "turnout.fallbacks"
M_HEDGES: Final = "turnout.hedges"
M_HEDGES_WON: Final = "turnout.hedges.won"
M_RETRIES: Final = "turnout.retries"
M_BREAKER_STATE: Final = "turnout.breaker.state"
M_BREAKER_TRANSITIONS: Final = "turnout.breaker.transitions"
M_QUEUE_DEPTH: Final = "turnout.queue.depth"
M_QUEUE_WAIT: Final = "turnout.queue.wait"
M_COST: Final = "turnout.cost.usd"
M_REFERENCE_COST: Final = "turnout.cost.reference.usd"
M_SAVINGS: Final = "turnout.savings.usd"
M_SHADOW_COMPARISONS: Final = "turnout.shadow.comparisons"
M_SHADOW_SKIPPED: Final = "turnout.shadow.skipped"
M_SHADOW_COST: Final = "turnout.shadow.cost.usd"
M_SHADOW_AGREEMENT: Final = "turnout.shadow.agreement"
M_SHADOW_ALERT: Final = "turnout.shadow.alert"
M_LIMITS_STORE_UP: Final = "turnout.limits.store.up"
M_BUDGET_SPENT: Final = "turnout.budget.spent.usd"
M_BUDGET_REMAINING: Final = "turnout.budget.remaining.usd"
M_ESCALATION_SHARE: Final = "turnout.escalation.share"
BUDGET: Final = "turnout.budget"
BUDGET_SCOPE: Final = "turnout.budget.scope"
M_BUILD_INFO: Final = "turnout.build.info"
SERVICE_VERSION: Final = "service.version"
SHADOW_AGREED: Final = "turnout.shadow.agreed"
SHADOW_REASON: Final = "turnout.shadow.reason"
# Decisions take microseconds; requests take from milliseconds to minutes.
DECISION_BUCKETS: Final = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2)
QUEUE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BREAKER_LEVEL: Final = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class Names:
    """The GenAI names one sidecar emits: v1.41's, or the latest conventions' (`latest`)."""

    latest: bool = False

    @property
    def operation_duration(self) -> str:
        return M_INFERENCE_DURATION if self.latest else M_OPERATION_DURATION

    @property
    def time_to_first_chunk(self) -> str:
        return M_INFERENCE_TIME_TO_FIRST_CHUNK if self.latest else M_TIME_TO_FIRST_CHUNK

    def decision(self, route: str, version: str) -> dict[str, str]:
        """The routing decision's gateway attributes (none with v1.41's names)."""
        if not self.latest:
            return {}
        return {GATEWAY_NAME: GATEWAY, GATEWAY_VERSION: version, GATEWAY_REQUEST_MODEL: route}


def names_for(env: Mapping[str, str] | None = None) -> Names:
    """The names OTEL_SEMCONV_STABILITY_OPT_IN asks for (a comma-separated list of opt-ins)."""
    env = os.environ if env is None else env
    opted = {part.strip() for part in env.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")}
    return Names(latest=LATEST_OPT_IN in opted)
