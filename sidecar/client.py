"""`turnout route | generate | models`: small gRPC clients for trying a running sidecar by hand.

A sidecar behind `server.auth_token_env` or `server.tls` (README, Access control) is reached with
`--token-env NAME` (the token from that variable: on the command line `ps` would show it to every
user) and `--tls-ca FILE` (and `--tls-cert` / `--tls-key` for mutual TLS).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

_FORMAT_DETAILS = {
    "ErrorInfo": error_details_pb2.ErrorInfo,
    "BadRequest": error_details_pb2.BadRequest,
    "RetryInfo": error_details_pb2.RetryInfo,
}


def add_client_commands(sub: Any, default_target: str) -> None:
    for name, help_text in (
        ("route", "ask a running sidecar for a routing decision"),
        ("generate", "route and answer a prompt through a running sidecar"),
    ):
        c = sub.add_parser(name, help=help_text)
        _common(c, default_target)
        c.add_argument("prompt", nargs="*", help="the user message (default: read stdin; '-' too)")
        c.add_argument("--system", help="a system message")
        c.add_argument("--task-type", default="")
        c.add_argument("--tier", default="")
        c.add_argument("--route", default="", help="named route (default: the config's default)")
        c.add_argument("--model", default="", help="pin this model")
        c.add_argument("--tag", action="append", default=[], help="routing tag (repeatable)")
        c.add_argument("--max-tokens", type=int, help="max output tokens")
        c.add_argument("--json-object", action="store_true", help="ask for a JSON object")
        c.add_argument("--json-schema", metavar="FILE", help="ask for JSON matching this schema file")
        c.add_argument("--request-id", default="")
        if name == "generate":
            c.add_argument("--stream", action="store_true", help="use GenerateStream")
        c.set_defaults(run=_refusing_setup_errors(_route if name == "route" else _generate))
    models = sub.add_parser("models", help="list the registry with live health")
    _common(models, default_target)
    models.set_defaults(run=_refusing_setup_errors(_models))
    budgets = sub.add_parser("budgets", help="list the spend budgets: spend, limit, reset time")
    _common(budgets, default_target)
    budgets.set_defaults(run=_refusing_setup_errors(_budgets))


def _common(c: argparse.ArgumentParser, default_target: str) -> None:
    c.add_argument("--target", default=default_target, help="host:port or unix:/path")
    c.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    c.add_argument("--json", action="store_true", help="print the response as protobuf JSON")
    c.add_argument(
        "--token-env",
        metavar="NAME",
        help="send 'authorization: Bearer <token>' with the token read from this environment variable "
        "(for a sidecar with server.auth_token_env; never give the token itself on the command line)",
    )
    c.add_argument("--tls-ca", metavar="FILE", help="connect over TLS, trusting this CA certificate (PEM)")
    c.add_argument(
        "--tls-cert", metavar="FILE", help="client certificate (PEM) for mutual TLS; with --tls-key"
    )
    c.add_argument("--tls-key", metavar="FILE", help="the client certificate's private key (PEM)")


class ClientSetupError(Exception):
    """A client option that cannot be used: an unset variable, an unreadable file."""


@dataclass(frozen=True)
class Access:
    """How to reach the sidecar: TLS credentials (None: plaintext) and the call metadata."""

    credentials: grpc.ChannelCredentials | None
    metadata: Sequence[tuple[str, str]]


def _access(args: argparse.Namespace) -> Access:
    """The access options as credentials and metadata; ClientSetupError names the option at fault."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ClientSetupError("--tls-cert and --tls-key go together (mutual TLS needs both)")
    metadata: tuple[tuple[str, str], ...] = ()
    if args.token_env:
        token = os.environ.get(args.token_env, "").strip()
        if not token:
            raise ClientSetupError(f"--token-env: environment variable {args.token_env} is not set or empty")
        metadata = (("authorization", f"Bearer {token}"),)
    credentials = None
    if args.tls_ca or args.tls_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read("--tls-ca", args.tls_ca),  # None: the system's roots
            private_key=_read("--tls-key", args.tls_key),
            certificate_chain=_read("--tls-cert", args.tls_cert),
        )
    return Access(credentials, metadata)


def _read(option: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ClientSetupError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def _request_fields(args: argparse.Namespace) -> dict[str, Any]:
    text = " ".join(args.prompt) if args.prompt and args.prompt != ["-"] else sys.stdin.read()
    messages = []
    if args.system:
        messages.append(pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=args.system)]))
    messages.append(pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)]))
    response_format = pb.ResponseFormat()
    if args.json_schema:
        with open(args.json_schema, encoding="utf-8") as f:
            schema = json.load(f)
        response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
        response_format.json_schema.name = "output"
        response_format.json_schema.schema.update(schema)
    elif args.json_object:
        response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    params = pb.GenerationParams()
    if args.max_tokens is not None:
        params.max_output_tokens = args.max_tokens
    hints = pb.RoutingHints(
        task_type=args.task_type,
        user_tier=args.tier,
        route=args.route,
        pinned_model=args.model,
        tags=args.tag,
    )
    return {
        "messages": messages,
        "response_format": response_format,
        "params": params,
        "hints": hints,
        "request_id": args.request_id,
    }


def _stub(args: argparse.Namespace) -> tuple[grpc.Channel, pb_grpc.RouterServiceStub, Access]:
    how = _access(args)
    if how.credentials is None:
        channel = grpc.insecure_channel(args.target)
    else:
        channel = grpc.secure_channel(args.target, how.credentials)
    return channel, pb_grpc.RouterServiceStub(channel), how  # type: ignore[no-untyped-call]


def _refusing_setup_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command that answers a ClientSetupError with one line and exit 2, like a usage error."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ClientSetupError as exc:
            print(f"turnout: {exc}", file=sys.stderr)
            return 2

    return guarded


def _print_json(message: Any) -> None:
    print(json_format.MessageToJson(message, indent=2), flush=True)


def _route(args: argparse.Namespace) -> int:
    channel, stub, how = _stub(args)
    with channel:
        try:
            response = stub.Route(
                pb.RouteRequest(**_request_fields(args)), timeout=args.timeout, metadata=how.metadata
            )
        except grpc.RpcError as exc:
            return _print_error(exc)
    if args.json:
        _print_json(response)
    else:
        _print_decision(response.decision)
    return 0


def _generate(args: argparse.Namespace) -> int:
    channel, stub, how = _stub(args)
    with channel:
        try:
            if args.stream:
                return _generate_stream(args, stub, how)
            response = stub.Generate(
                pb.GenerateRequest(**_request_fields(args)), timeout=args.timeout, metadata=how.metadata
            )
        except grpc.RpcError as exc:
            return _print_error(exc)
    if args.json:
        _print_json(response)
        return 0
    print(response.output.text)
    for call in response.output.tool_calls:
        print(f"tool call {call.name}({call.arguments_json})")
    _print_summary(response.model, response.usage, response.cost_usd_nanos, response.attempts)
    _print_decision(response.decision)
    return 0


def _generate_stream(args: argparse.Namespace, stub: pb_grpc.RouterServiceStub, how: Access) -> int:
    request = pb.GenerateStreamRequest(**_request_fields(args))
    for event in stub.GenerateStream(request, timeout=args.timeout, metadata=how.metadata):
        if args.json:
            _print_json(event)
        elif event.HasField("delta"):
            print(event.delta.text, end="", flush=True)
        else:
            print()
            end = event.end
            _print_summary(end.model, end.usage, end.cost_usd_nanos, end.attempts)
            _print_decision(end.decision)
    return 0


def _models(args: argparse.Namespace) -> int:
    channel, stub, how = _stub(args)
    with channel:
        try:
            response = stub.ListModels(pb.ListModelsRequest(), timeout=args.timeout, metadata=how.metadata)
        except grpc.RpcError as exc:
            return _print_error(exc)
    if args.json:
        _print_json(response)
        return 0
    print(f"{'model':<24} {'provider':<14} {'in $/M':>8} {'out $/M':>8} {'context':>9}  health")
    for m in response.models:
        state = pb.HealthState.Name(m.health.state).removeprefix("HEALTH_STATE_").lower()
        print(
            f"{m.name:<24} {m.provider:<14} {m.input_price_usd_nanos_per_mtok / 1e9:>8.3f} "
            f"{m.output_price_usd_nanos_per_mtok / 1e9:>8.3f} {m.context_window:>9,}  {state}"
        )
    return 0


def _budgets(args: argparse.Namespace) -> int:
    channel, stub, how = _stub(args)
    with channel:
        try:
            response = stub.GetBudgets(pb.GetBudgetsRequest(), timeout=args.timeout, metadata=how.metadata)
        except grpc.RpcError as exc:
            return _print_error(exc)
    if args.json:
        _print_json(response)
        return 0
    if not response.budgets:
        print("no budgets configured (limits.budgets)")
        return 0
    head = f"{'budget':<20} {'scope':<24} {'window':<14} {'spent $':>12} {'limit $':>12} {'used':>6}"
    print(head, " resets (UTC)")
    for b in response.budgets:
        used = b.spent_usd_nanos / b.limit_usd_nanos if b.limit_usd_nanos else 0.0
        mark = " hard" if b.hard and used >= 1 else (" soft" if b.soft_reached else "")
        resets = b.resets_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{b.name:<20} {b.scope or '(all)':<24} {b.window:<14} {b.spent_usd_nanos / 1e9:>12.4f} "
            f"{b.limit_usd_nanos / 1e9:>12.2f} {used:>6.0%}  {resets}{mark}"
        )
    if not response.shared:
        print("note: the shared store is unreachable or not configured: these are this sidecar's figures")
    return 0


def _print_summary(model: str, usage: pb.Usage, cost: int, attempts: Any) -> None:
    print(
        f"\n-- served by {model}: {usage.input_tokens} in / {usage.output_tokens} out tokens, "
        f"${cost / 1e9:.6f}",
        file=sys.stderr,
    )
    for a in attempts:
        outcome = pb.AttemptOutcome.Name(a.outcome).removeprefix("ATTEMPT_OUTCOME_").lower()
        failure = pb.FailureClass.Name(a.failure_class).removeprefix("FAILURE_CLASS_").lower()
        why = f" ({failure}: {a.error_message})" if a.failure_class else ""
        latency = a.latency.ToTimedelta().total_seconds()
        print(f"   attempt {a.number}: {a.model} {outcome} in {latency:.3f}s{why}", file=sys.stderr)


def _print_decision(d: pb.Decision) -> None:
    fallbacks = ", ".join(c.model for c in d.fallbacks) or "none"
    print(
        f"-- decision: {d.model} via route {d.route!r} ({d.strategy}) in {d.decision_time_micros} us; "
        f"fallbacks: {fallbacks}",
        file=sys.stderr,
    )
    for reason in d.reasons:
        print(f"   because {reason}", file=sys.stderr)
    for r in d.rejected:
        print(f"   rejected {r.model}: {r.reason}", file=sys.stderr)


def _print_error(exc: grpc.RpcError) -> int:
    """One line for the status, then its details if they can be read; never a traceback: a status
    that lost its details (a client-side limit, a proxy) or carries odd ones still prints."""
    call: Any = exc
    code = call.code() if callable(getattr(call, "code", None)) else None
    message = call.details() if callable(getattr(call, "details", None)) else str(exc)
    name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    print(f"error: {name}: {' '.join(str(message or '').split())}", file=sys.stderr)
    try:
        status = rpc_status.from_call(call)
    except (ValueError, AttributeError, DecodeError) as why:  # e.g. codes that disagree
        print(f"  (the error details could not be read: {why})", file=sys.stderr)
        return 1
    for detail in status.details if status else []:
        for kind, cls in _FORMAT_DETAILS.items():
            if detail.Is(cls.DESCRIPTOR):
                value = cls()
                try:
                    detail.Unpack(value)
                except DecodeError:
                    continue
                shown = json_format.MessageToJson(value, indent=None)
                print(f"  {kind}: {shown}", file=sys.stderr)
    return 1
