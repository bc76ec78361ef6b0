// Offline tests: the money formatter, the request helpers, the error decoder and the client's own
// plumbing (token, deadline, stream errors) against an in-process fake of the sidecar.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { Any } from "@turnout/client/gen/google/protobuf/any";
import { BadRequest, ErrorInfo, RetryInfo } from "@turnout/client/gen/google/rpc/error_details";
import { Status as RpcStatus } from "@turnout/client/gen/google/rpc/status";
import {
  GenerateRequest,
  type GenerateStreamRequest,
  type GenerateStreamResponse,
  RouteRequest,
  Role,
  STATUS_DETAILS_KEY,
  Status,
  TurnoutClient,
  TurnoutError,
  chat,
  formatUsd,
  message,
  pb,
} from "@turnout/client";

describe("formatUsd", () => {
  const vectors: [bigint, string][] = [
    [0n, "$0.00"],
    [1n, "$0.000000001"],
    [12345n, "$0.000012345"],
    [309300n, "$0.0003093"],
    [1500000000n, "$1.50"],
    [1000000000n, "$1.00"],
    [123456789012n, "$123.456789012"],
    [-10000000n, "-$0.01"],
  ];
  for (const [nanos, expected] of vectors) {
    test(`${nanos} -> ${expected}`, () => assert.equal(formatUsd(nanos), expected));
  }

  test("is exact beyond a double's 53 bits", () => {
    assert.equal(formatUsd(9_007_199_254_740_993_123n), "$9007199254.740993123");
  });

  test("refuses a number, which could not be exact", () => {
    assert.throws(() => formatUsd(12345 as unknown as bigint), TypeError);
  });
});

describe("request helpers", () => {
  test("chat is one user message and nothing else", () => {
    const request = chat("Is this spam?");
    assert.deepEqual(request.messages, [
      {
        role: Role.ROLE_USER,
        content: [{ part: { $case: "text", text: "Is this spam?" } }],
        name: "",
        toolCalls: [],
        toolCallId: "",
      },
    ]);
    assert.equal(request.hints, undefined);
    assert.equal(request.params, undefined);
    assert.deepEqual(request.labels, {});
    assert.equal(request.requestId, "");
  });

  test("chat sets every option where the API has it", () => {
    const request = chat("Summarise this", {
      system: "Be brief.",
      route: "smart",
      taskType: "extract",
      pinnedModel: "gpt-4o",
      maxOutputTokens: 64,
      labels: { team: "search" },
      requestId: "ts-1",
    });
    assert.deepEqual(
      request.messages.map((m) => [
        m.role,
        m.content.map((c) => (c.part?.$case === "text" ? c.part.text : "")),
      ]),
      [
        [Role.ROLE_SYSTEM, ["Be brief."]],
        [Role.ROLE_USER, ["Summarise this"]],
      ],
    );
    assert.equal(request.hints?.route, "smart");
    assert.equal(request.hints?.taskType, "extract");
    assert.equal(request.hints?.pinnedModel, "gpt-4o");
    assert.equal(request.hints?.userTier, "");
    assert.equal(request.params?.maxOutputTokens, 64);
    assert.equal(request.params?.temperature, undefined);
    assert.deepEqual(request.labels, { team: "search" });
    assert.equal(request.requestId, "ts-1");
  });

  test("a chat request survives the wire, as any of the three request messages", () => {
    const request = chat("Hi", { route: "balanced", maxOutputTokens: 5, labels: { a: "b" } });
    const wire = GenerateRequest.encode(request).finish();
    assert.deepEqual(GenerateRequest.decode(wire), request);
    const route = RouteRequest.decode(wire);
    assert.equal(route.hints?.route, "balanced");
    assert.equal(route.params?.maxOutputTokens, 5);
    assert.deepEqual(RouteRequest.encode(RouteRequest.fromPartial(request)).finish(), wire);
  });

  test("message makes text parts in order", () => {
    const m = message(Role.ROLE_ASSISTANT, "Paris.", "France.");
    assert.equal(m.role, Role.ROLE_ASSISTANT);
    assert.deepEqual(m.content, [
      { part: { $case: "text", text: "Paris." } },
      { part: { $case: "text", text: "France." } },
    ]);
  });
});

/** A google.rpc.Status as the sidecar sends it (ErrorInfo, BadRequest, RetryInfo), plus one to ignore. */
function statusDetails(): Uint8Array {
  const pack = (type: string, value: Uint8Array) =>
    Any.fromPartial({ typeUrl: `type.googleapis.com/${type}`, value });
  return RpcStatus.encode({
    code: Status.RESOURCE_EXHAUSTED,
    message: "no capacity for gpt-4o",
    details: [
      pack(
        "google.rpc.ErrorInfo",
        ErrorInfo.encode(
          ErrorInfo.fromPartial({
            reason: "ALL_CANDIDATES_FAILED",
            domain: "turnout.dev",
            metadata: { model: "gpt-4o", failure_class: "RATE_LIMITED" },
          }),
        ).finish(),
      ),
      pack(
        "google.rpc.BadRequest",
        BadRequest.encode(
          BadRequest.fromPartial({
            fieldViolations: [
              { field: "hints.pinned_model", description: "no model named 'x'" },
              { field: "messages[0].content", description: "empty" },
            ],
          }),
        ).finish(),
      ),
      pack(
        "google.rpc.RetryInfo",
        RetryInfo.encode({ retryDelay: { seconds: 2n, nanos: 500_000_000 } }).finish(),
      ),
      pack("google.rpc.DebugInfo", new Uint8Array([10, 1, 120])),
    ],
  }).finish();
}

describe("TurnoutError", () => {
  test("decodes ErrorInfo, BadRequest and RetryInfo from a google.rpc.Status", () => {
    const error = TurnoutError.fromStatus(
      Status.RESOURCE_EXHAUSTED,
      "no capacity for gpt-4o",
      statusDetails(),
    );
    assert.ok(error instanceof Error);
    assert.equal(error.name, "TurnoutError");
    assert.equal(error.code, 8);
    assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
    assert.equal(error.message, "no capacity for gpt-4o");
    assert.equal(error.reason, "ALL_CANDIDATES_FAILED");
    assert.equal(error.domain, "turnout.dev");
    assert.deepEqual(error.metadata, { model: "gpt-4o", failure_class: "RATE_LIMITED" });
    assert.deepEqual(error.fieldViolations, [
      { field: "hints.pinned_model", description: "no model named 'x'" },
      { field: "messages[0].content", description: "empty" },
    ]);
    assert.equal(error.retryDelayMs, 2500);
    assert.equal(
      String(error),
      "TurnoutError: RESOURCE_EXHAUSTED ALL_CANDIDATES_FAILED: no capacity for gpt-4o",
    );
  });

  test("reads the details from a grpc-js error's trailers", () => {
    const trailers = new Metadata();
    trailers.set(STATUS_DETAILS_KEY, Buffer.from(statusDetails()));
    const serviceError = Object.assign(new Error("8 RESOURCE_EXHAUSTED: no capacity for gpt-4o"), {
      code: Status.RESOURCE_EXHAUSTED,
      details: "no capacity for gpt-4o",
      metadata: trailers,
    }) as ServiceError;
    const error = TurnoutError.from(serviceError);
    assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
    assert.equal(error.message, "no capacity for gpt-4o");
    assert.equal(error.reason, "ALL_CANDIDATES_FAILED");
    assert.equal(error.fieldViolations.length, 2);
    assert.equal(error.retryDelayMs, 2500);
    assert.equal(TurnoutError.from(error), error);
  });

  test("a status without details has none", () => {
    const error = TurnoutError.fromStatus(Status.DEADLINE_EXCEEDED, "Deadline exceeded");
    assert.deepEqual(
      [error.codeName, error.reason, error.domain, error.metadata, error.fieldViolations, error.retryDelayMs],
      ["DEADLINE_EXCEEDED", "", "", {}, [], undefined],
    );
    assert.equal(String(error), "TurnoutError: DEADLINE_EXCEEDED: Deadline exceeded");
  });

  test("details that do not decode are dropped, the status kept", () => {
    const error = TurnoutError.fromStatus(Status.INTERNAL, "boom", new Uint8Array([0xff, 0xff, 0xff]));
    assert.deepEqual([error.codeName, error.message, error.reason], ["INTERNAL", "boom", ""]);
  });

  test("anything else is UNKNOWN", () => {
    const error = TurnoutError.from(new TypeError("boom"));
    assert.equal(error.code, Status.UNKNOWN);
    assert.equal(error.message, "boom");
  });
});

describe("TurnoutClient against an in-process fake sidecar", () => {
  const seen: { authorization: unknown[]; deadline: unknown }[] = [];
  const server = new Server();
  let client: TurnoutClient;

  before(async () => {
    server.addService(pb.RouterServiceService, {
      route: (
        call: { metadata: Metadata; getDeadline(): unknown },
        done: (e: null, r: pb.RouteResponse) => void,
      ) => {
        seen.push({ authorization: call.metadata.get("authorization"), deadline: call.getDeadline() });
        done(
          null,
          pb.RouteResponse.fromPartial({
            decision: { model: "fake-model", strategy: "fake" },
            requestId: "r1",
          }),
        );
      },
      generate: () => assert.fail("not called"),
      listModels: () => assert.fail("not called"),
      generateStream: (call: ServerWritableStream<GenerateStreamRequest, GenerateStreamResponse>) => {
        call.write({ event: { $case: "delta", delta: { text: "Hel", toolCalls: [], logprobs: [] } } });
        const trailers = new Metadata();
        trailers.set(STATUS_DETAILS_KEY, Buffer.from(statusDetails()));
        call.emit("error", {
          code: Status.RESOURCE_EXHAUSTED,
          details: "no capacity for gpt-4o",
          metadata: trailers,
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    client = new TurnoutClient(`127.0.0.1:${port}`, { token: "s3cret", timeoutMs: 5_000 });
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  test("sends the token as a bearer and the deadline with every call", async () => {
    const response = await client.route(chat("hi"));
    assert.equal(response.decision?.model, "fake-model");
    assert.equal(response.requestId, "r1");
    assert.deepEqual(seen.at(-1)?.authorization, ["Bearer s3cret"]);
    const deadline = Number(seen.at(-1)?.deadline); // the server's view: epoch milliseconds
    assert.ok(deadline > Date.now() && deadline <= Date.now() + 5_000, `deadline ${deadline}`);
  });

  test("a stream failure is thrown from the loop as a TurnoutError, after the earlier events", async () => {
    const texts: string[] = [];
    await assert.rejects(
      async () => {
        for await (const event of client.generateStream(chat("hi"))) {
          if (event.event?.$case === "delta") texts.push(event.event.delta.text);
        }
      },
      (error: unknown) => {
        assert.ok(error instanceof TurnoutError);
        assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
        assert.equal(error.reason, "ALL_CANDIDATES_FAILED");
        assert.equal(error.retryDelayMs, 2500);
        return true;
      },
    );
    assert.deepEqual(texts, ["Hel"]);
  });

  test("an aborted signal cancels the call", async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.route(chat("hi"), { signal: controller.signal }), (error: unknown) => {
      assert.ok(error instanceof TurnoutError);
      assert.equal(error.codeName, "CANCELLED");
      return true;
    });
  });

  test("a timeout that is not a positive number is refused", () => {
    assert.throws(() => new TurnoutClient("127.0.0.1:1", { timeoutMs: 0 }), RangeError);
    assert.throws(() => client.route(chat("hi"), { timeoutMs: -1 }), RangeError);
  });
});
