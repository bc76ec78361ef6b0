/**
 * Turnout's TypeScript client: route, generate and stream through the Turnout sidecar over gRPC.
 *
 *     import { TurnoutClient, chat, formatUsd } from "@turnout/client";
 *
 *     const client = new TurnoutClient("127.0.0.1:50051");
 *     const answer = await client.generate(chat("Is this spam? Win a prize now", { taskType: "classify" }));
 *     console.log(answer.output?.text, answer.model, formatUsd(answer.costUsdNanos));
 *     client.close();
 *
 * Messages are plain objects of the generated types (ts-proto), all of them exported under `pb`;
 * int64 fields (money in nano-dollars, token counts) are exact `bigint`s.
 *
 * @packageDocumentation
 */

export { status as Status } from "@grpc/grpc-js";
export { type CallOptions, DEFAULT_TARGET, TurnoutClient, type TurnoutClientOptions } from "./client";
export { type FieldViolation, STATUS_DETAILS_KEY, TurnoutError, type TurnoutErrorInit } from "./errors";
export * as pb from "./gen/turnout/v1/router";
export {
  AttemptOutcome,
  Decision,
  FinishReason,
  GenerateRequest,
  GenerateResponse,
  GenerateStreamRequest,
  GenerateStreamResponse,
  Message,
  ModelInfo,
  Role,
  RouteRequest,
  RouteResponse,
  RouterServiceClient,
  StreamEnd,
} from "./gen/turnout/v1/router";
export { formatUsd } from "./money";
export { type AnyRequest, type ChatOptions, chat, message } from "./requests";

/** This package's version; it follows the proto package (turnout.v1 is served by 1.x). */
export const VERSION = "1.0.0";
