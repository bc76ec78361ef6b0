// Request helpers: a plain chat call in one line, and one request shape for all three calls.

import {
  type DeepPartial,
  GenerateRequest,
  type GenerateStreamRequest,
  type Message,
  Role,
  type RouteRequest,
} from "./gen/turnout/v1/router";

/**
 * What `route`, `generate` and `generateStream` take: a GenerateRequest, RouteRequest or
 * GenerateStreamRequest (the three messages have the same fields), or any plain object with some of
 * those fields, e.g. `{ messages: [message(Role.ROLE_USER, "Hi")], hints: { route: "smart" } }`.
 * Fields left out take their protobuf defaults.
 */
export type AnyRequest =
  GenerateRequest | RouteRequest | GenerateStreamRequest | DeepPartial<GenerateRequest>;

/** The optional parts of a `chat` request. */
export interface ChatOptions {
  /** A system message, put before the user's. */
  system?: string;
  /** The named route (routing strategy) to use instead of the config's default route. */
  route?: string;
  /** The kind of task, matched by the route's rules: "classify", "extract", "chat", "code", ... */
  taskType?: string;
  /** Exactly this model, with no fallback to other models. */
  pinnedModel?: string;
  /** An upper bound on the length of the answer. */
  maxOutputTokens?: number;
  /** Free key/value labels, which routing rules may match on. */
  labels?: Record<string, string>;
  /** The caller's id for the request, echoed back and logged. */
  requestId?: string;
}

/**
 * One user message (after an optional system message) as a GenerateRequest:
 *
 *     await client.generate(chat("Is this spam?", { taskType: "classify" }))
 *
 * The same object serves `route` and `generateStream`. For anything more (tools, images, a JSON
 * schema, other routing hints), change the returned object: it is a plain GenerateRequest.
 */
export function chat(text: string, options: ChatOptions = {}): GenerateRequest {
  const messages = options.system === undefined ? [] : [message(Role.ROLE_SYSTEM, options.system)];
  messages.push(message(Role.ROLE_USER, text));
  const hints = { route: options.route, taskType: options.taskType, pinnedModel: options.pinnedModel };
  const anyHint = Object.values(hints).some((value) => value !== undefined);
  return GenerateRequest.fromPartial({
    messages,
    hints: anyHint ? hints : undefined,
    params: options.maxOutputTokens === undefined ? undefined : { maxOutputTokens: options.maxOutputTokens },
    labels: options.labels,
    requestId: options.requestId,
  });
}

/** A message of text parts, e.g. `message(Role.ROLE_ASSISTANT, "Paris.")`. */
export function message(role: Role, ...texts: string[]): Message {
  return {
    role,
    content: texts.map((text) => ({ part: { $case: "text", text } })),
    name: "",
    toolCalls: [],
    toolCallId: "",
  };
}
