// One typed error for every failed call, decoded from the google.rpc.Status in the trailers.

import { type Metadata, status as Status } from "@grpc/grpc-js";

import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details";
import { Status as RpcStatus } from "./gen/google/rpc/status";

/** The trailer that carries the serialized google.rpc.Status with the error's details. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** One invalid field of a request: its path (e.g. `hints.pinned_model`) and what is wrong. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** What a TurnoutError is made of; everything but `code` and `message` may be left out. */
export interface TurnoutErrorInit {
  code: Status;
  message: string;
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  fieldViolations?: readonly FieldViolation[];
  retryDelayMs?: number;
}

/**
 * A call that failed: the gRPC status and what the sidecar said about it. `message` is the status
 * message.
 *
 * `reason`, `domain` and `metadata` come from google.rpc.ErrorInfo (domain `turnout.dev`, reasons
 * such as `INVALID_REQUEST`, `MODEL_NOT_FOUND`, `NO_CANDIDATE`); `fieldViolations` from
 * google.rpc.BadRequest; `retryDelayMs` from google.rpc.RetryInfo, set only when the sidecar says
 * that trying again after that long may succeed. A deadline that expired on the client side has code
 * DEADLINE_EXCEEDED and none of these.
 */
export class TurnoutError extends Error {
  /** The gRPC status code (`Status.NOT_FOUND`, that is 5); `codeName` is its name. */
  readonly code: Status;
  readonly codeName: string;
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly fieldViolations: readonly FieldViolation[];
  readonly retryDelayMs: number | undefined;

  constructor(init: TurnoutErrorInit) {
    super(init.message);
    this.name = "TurnoutError";
    this.code = init.code;
    this.codeName = Status[init.code] ?? `CODE_${init.code}`;
    this.reason = init.reason ?? "";
    this.domain = init.domain ?? "";
    this.metadata = init.metadata ?? {};
    this.fieldViolations = init.fieldViolations ?? [];
    this.retryDelayMs = init.retryDelayMs;
  }

  /** Reads like "TurnoutError: NOT_FOUND MODEL_NOT_FOUND: unknown model 'x'". */
  override toString(): string {
    return `${this.name}: ${this.codeName}${this.reason ? ` ${this.reason}` : ""}: ${this.message}`;
  }

  /**
   * The error for a status code, its message and the serialized google.rpc.Status (the
   * `grpc-status-details-bin` trailer), if any.
   */
  static fromStatus(code: Status, message: string, details?: Uint8Array): TurnoutError {
    const init: TurnoutErrorInit = { code, message };
    try {
      decodeDetails(details, init);
    } catch {
      // Details that do not decode are dropped: the code and the message still say what failed.
    }
    return new TurnoutError(init);
  }

  /**
   * Any error of a call as a TurnoutError: a grpc-js ServiceError (with its details), a TurnoutError
   * unchanged, anything else as UNKNOWN. The client's methods already throw TurnoutError; this is for
   * errors of the generated RouterServiceClient used directly.
   */
  static from(error: unknown): TurnoutError {
    if (error instanceof TurnoutError) return error;
    if (isServiceError(error)) {
      const details = error.metadata?.get(STATUS_DETAILS_KEY)[0];
      return TurnoutError.fromStatus(
        error.code,
        error.details ?? "",
        typeof details === "string" ? undefined : details,
      );
    }
    return new TurnoutError({
      code: Status.UNKNOWN,
      message: error instanceof Error ? error.message : String(error),
    });
  }
}

interface ServiceErrorLike {
  code: Status;
  details?: string;
  metadata?: Metadata;
}

function isServiceError(error: unknown): error is ServiceErrorLike {
  return (
    typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "number"
  );
}

/** Set `init`'s reason, domain, metadata, field violations and retry delay from a google.rpc.Status. */
function decodeDetails(details: Uint8Array | undefined, init: TurnoutErrorInit): void {
  if (!details || details.length === 0) return;
  for (const detail of RpcStatus.decode(details).details) {
    const type = detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1);
    if (type === "google.rpc.ErrorInfo") {
      const info = ErrorInfo.decode(detail.value);
      Object.assign(init, { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } });
    } else if (type === "google.rpc.BadRequest") {
      const violations = BadRequest.decode(detail.value).fieldViolations;
      init.fieldViolations = violations.map((v) => ({ field: v.field, description: v.description }));
    } else if (type === "google.rpc.RetryInfo") {
      const delay = RetryInfo.decode(detail.value).retryDelay;
      if (delay) init.retryDelayMs = Number(delay.seconds) * 1000 + delay.nanos / 1e6;
    }
  }
}
