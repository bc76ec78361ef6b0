// The client: one channel to the sidecar, four calls, every failure thrown as a TurnoutError.
//
// It does not retry. The sidecar already retries within a budget, honours Retry-After, hedges and
// falls back across models behind circuit breakers; a retry here would multiply the load on a
// provider that is already failing and could bill an answer twice. When an error carries
// `retryDelayMs`, the sidecar said when trying again may help: retry then, from your own code.

import {
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";

import { TurnoutError } from "./errors";
import {
  GenerateRequest,
  type GenerateResponse,
  GenerateStreamRequest,
  type GenerateStreamResponse,
  type ListModelsResponse,
  type ModelInfo,
  RouterServiceClient,
  RouteRequest,
  type RouteResponse,
} from "./gen/turnout/v1/router";
import type { AnyRequest } from "./requests";

/** The sidecar's default address. */
export const DEFAULT_TARGET = "127.0.0.1:50051";

/** How to connect; every field is optional. */
export interface TurnoutClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call, when the sidecar has an auth token. */
  token?: string;
  /**
   * The default deadline of every call, in milliseconds; each call may set its own. Without
   * either, the sidecar's own default (`server.default_timeout_s`) bounds the call.
   */
  timeoutMs?: number;
  /** The channel's credentials; insecure (plain TCP or a unix socket) by default. */
  credentials?: ChannelCredentials;
  /** Further grpc-js channel options, e.g. `{ "grpc.keepalive_time_ms": 30000 }`. */
  channelOptions?: ChannelOptions;
}

/** The options of one call. */
export interface CallOptions {
  /** This call's deadline in milliseconds, instead of the client's default. */
  timeoutMs?: number;
  /** Aborting it cancels the call, which then fails with CANCELLED. */
  signal?: AbortSignal;
}

/**
 * A client of the Turnout sidecar: `new TurnoutClient("127.0.0.1:50051")` or
 * `new TurnoutClient("unix:///run/turnout/turnout.sock")`. The channel connects on the first call;
 * `close()` it when done.
 */
export class TurnoutClient {
  readonly target: string;
  readonly #stub: RouterServiceClient;
  readonly #token: string | undefined;
  readonly #timeoutMs: number | undefined;

  constructor(target: string = DEFAULT_TARGET, options: TurnoutClientOptions = {}) {
    this.target = target;
    this.#token = options.token || undefined;
    this.#timeoutMs = checkTimeout(options.timeoutMs);
    this.#stub = new RouterServiceClient(
      target,
      options.credentials ?? grpcCredentials.createInsecure(),
      options.channelOptions,
    );
  }

  /** The routing decision for `request`, with its explanation; no provider is called. */
  route(request: AnyRequest, options: CallOptions = {}): Promise<RouteResponse> {
    const message = RouteRequest.fromPartial(request);
    return this.#unary(options, (metadata, call, done) => this.#stub.route(message, metadata, call, done));
  }

  /** Route, call the chosen model (falling back as the route says) and return the answer. */
  generate(request: AnyRequest, options: CallOptions = {}): Promise<GenerateResponse> {
    const message = GenerateRequest.fromPartial(request);
    return this.#unary(options, (metadata, call, done) => this.#stub.generate(message, metadata, call, done));
  }

  /**
   * The answer as events: `delta`s, then exactly one `end` (`event.event?.$case === "end"`). The
   * call starts when the iteration does; a failure is thrown as a TurnoutError from the iterator;
   * leaving the loop early cancels the call.
   */
  async *generateStream(
    request: AnyRequest,
    options: CallOptions = {},
  ): AsyncGenerator<GenerateStreamResponse, void> {
    const message = GenerateStreamRequest.fromPartial(request);
    const call = this.#stub.generateStream(message, this.#metadata(), this.#callOptions(options));
    const stop = onAbort(options.signal, () => call.cancel());
    try {
      for await (const event of call) yield event as GenerateStreamResponse;
    } catch (error) {
      throw TurnoutError.from(error);
    } finally {
      stop();
      call.cancel(); // a no-op once the stream has ended; stops it when the caller stops early
    }
  }

  /** The sidecar's model registry, with each model's live health. */
  async listModels(options: CallOptions = {}): Promise<ModelInfo[]> {
    const response = await this.#unary<ListModelsResponse>(options, (metadata, call, done) =>
      this.#stub.listModels({}, metadata, call, done),
    );
    return response.models;
  }

  /** Close the channel; calls made after it fail. */
  close(): void {
    this.#stub.close();
  }

  #unary<T>(
    options: CallOptions,
    start: (
      metadata: Metadata,
      call: GrpcCallOptions,
      done: (error: ServiceError | null, response: T) => void,
    ) => ClientUnaryCall,
  ): Promise<T> {
    const callOptions = this.#callOptions(options); // throws a RangeError now, not as a rejection
    return new Promise<T>((resolve, reject) => {
      let stop = (): void => {};
      const call = start(this.#metadata(), callOptions, (error, response) => {
        stop();
        if (error) reject(TurnoutError.from(error));
        else resolve(response);
      });
      stop = onAbort(options.signal, () => call.cancel());
    });
  }

  #metadata(): Metadata {
    const metadata = new Metadata();
    if (this.#token) metadata.set("authorization", `Bearer ${this.#token}`);
    return metadata;
  }

  #callOptions(options: CallOptions): GrpcCallOptions {
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.#timeoutMs;
    return timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
  }
}

function checkTimeout(timeoutMs: number | undefined): number | undefined {
  if (timeoutMs !== undefined && !(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new RangeError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`);
  }
  return timeoutMs;
}

/** Run `cancel` when `signal` aborts (at once if it already has); returns the unsubscribe. */
function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    cancel();
    return () => {};
  }
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}
