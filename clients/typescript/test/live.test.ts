// The client against a live sidecar (with the provider simulator): every call, a deadline, the
// errors, the unix socket and the example. `make clients-test` at the repository root starts one and
// sets TURNOUT_ADDRESS and TURNOUT_UNIX_SOCKET.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import {
  AttemptOutcome,
  FinishReason,
  GenerateRequest,
  type GenerateStreamResponse,
  TurnoutClient,
  TurnoutError,
  chat,
} from "@turnout/client";

const address = process.env.TURNOUT_ADDRESS ?? "";
const unixSocket = process.env.TURNOUT_UNIX_SOCKET ?? "";
const why = "no sidecar: TURNOUT_ADDRESS is unset (run `make clients-test` from the repository root)";

if (!address && process.env.TURNOUT_REQUIRE_LIVE === "1") {
  test("a live sidecar is required (TURNOUT_REQUIRE_LIVE=1)", () => assert.fail(why));
}

/** The TurnoutError a call failed with, or a failed assertion if it did not fail so. */
async function failure(call: Promise<unknown>): Promise<TurnoutError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof TurnoutError, `not a TurnoutError: ${error}`);
    return error;
  }
  return assert.fail("the call succeeded");
}

/** The lines a compiled example (build/examples/) printed against the live sidecar. */
async function runExample(name: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, "..", "examples", name)], {
    env: { ...process.env, TURNOUT_ADDRESS: address },
    timeout: 60_000,
  });
  return stdout.trimEnd().split("\n");
}

describe("live", { skip: address ? false : why }, () => {
  let client: TurnoutClient;
  before(() => {
    client = new TurnoutClient(address, { timeoutMs: 30_000 });
  });
  after(() => client?.close());

  test("generate answers with the model, its cost and the attempts", async () => {
    const answer = await client.generate(
      chat("Is this email spam? 'You won a prize!'", { taskType: "classify", requestId: "ts-1" }),
    );
    assert.ok(answer.output?.text.trim());
    assert.equal(answer.requestId, "ts-1");
    assert.ok(answer.model);
    assert.ok(answer.provider);
    assert.equal(answer.finishReason, FinishReason.FINISH_REASON_STOP);
    assert.equal(typeof answer.costUsdNanos, "bigint");
    assert.ok(answer.costUsdNanos > 0n);
    assert.ok(answer.totalCostUsdNanos >= answer.costUsdNanos);
    assert.ok((answer.usage?.inputTokens ?? 0n) > 0n);
    assert.ok((answer.usage?.outputTokens ?? 0n) > 0n);
    // The decision's first choice is tried first; a hedge or a fallback may be the one that answers.
    assert.equal(answer.attempts[0]?.model, answer.decision?.model);
    const succeeded = answer.attempts.filter((a) => a.outcome === AttemptOutcome.ATTEMPT_OUTCOME_SUCCESS);
    assert.deepEqual(
      succeeded.map((a) => a.model),
      [answer.model],
    );
  });

  test("generateStream yields deltas, then one end event", async () => {
    const events: GenerateStreamResponse[] = [];
    for await (const event of client.generateStream(
      chat("Write two sentences about rivers", { maxOutputTokens: 40 }),
    )) {
      events.push(event);
    }
    const last = events.at(-1)?.event;
    const deltas = events.slice(0, -1).map((e) => e.event);
    assert.ok(deltas.length > 0);
    assert.ok(deltas.every((e) => e?.$case === "delta"));
    assert.ok(
      deltas
        .map((e) => (e?.$case === "delta" ? e.delta.text : ""))
        .join("")
        .trim(),
    );
    assert.equal(last?.$case, "end");
    if (last?.$case !== "end") return;
    assert.ok(last.end.model);
    assert.ok(last.end.costUsdNanos > 0n);
    assert.ok((last.end.usage?.outputTokens ?? 0n) > 0n);
  });

  test("route explains its decision", async () => {
    const { decision } = await client.route(chat("Is this spam? win a prize"));
    assert.equal(decision?.model, "gpt-4o-mini");
    assert.equal(decision?.route, "default");
    assert.equal(decision?.strategy, "rules>capability>sla");
    assert.ok(decision.reasons.length > 0);
    assert.ok(decision.reasons.every((reason) => reason.length > 0));
    assert.deepEqual(
      decision.fallbacks.map((f) => f.model),
      ["gemini-2.5-flash", "gpt-4o"],
    );
    assert.ok(decision.estimatedCostUsdNanos > 0n);
  });

  test("listModels gives the registry", async () => {
    const models = new Map((await client.listModels()).map((m) => [m.name, m]));
    for (const name of ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "gemini-2.5-flash"]) {
      assert.ok(models.has(name), `no ${name}`);
    }
    assert.equal(models.get("gpt-4o")?.provider, "openai");
    assert.ok((models.get("gpt-4o")?.inputPriceUsdNanosPerMtok ?? 0n) > 0n);
  });

  test("an expired deadline is a typed error without details", async () => {
    const error = await failure(
      client.generate(chat("Explain circuit breakers at length"), { timeoutMs: 1 }),
    );
    assert.equal(error.codeName, "DEADLINE_EXCEEDED");
    assert.deepEqual([error.reason, error.fieldViolations, error.retryDelayMs], ["", [], undefined]);
  });

  test("an invalid request names the field", async () => {
    const error = await failure(client.generate(GenerateRequest.fromPartial({})));
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.deepEqual([error.reason, error.domain], ["INVALID_REQUEST", "turnout.dev"]);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["messages"],
    );
    assert.match(error.fieldViolations[0]?.description ?? "", /at least one message/);
  });

  test("an unknown model is NOT_FOUND on hints.pinned_model", async () => {
    const error = await failure(client.generate(chat("Hi", { pinnedModel: "no-such-model" })));
    assert.equal(error.codeName, "NOT_FOUND");
    assert.deepEqual([error.reason, error.domain], ["MODEL_NOT_FOUND", "turnout.dev"]);
    assert.ok(
      error.fieldViolations.some((v) => v.field === "hints.pinned_model"),
      JSON.stringify(error.fieldViolations),
    );
  });

  test("no candidate left is FAILED_PRECONDITION, also from a stream", async () => {
    // Any object with some of the request's fields will do; the rest take their defaults.
    const request = { ...chat("Hi"), hints: { allowedModels: ["gpt-4o"], deniedModels: ["gpt-4o"] } };
    const error = await failure(client.route(request));
    assert.equal(error.codeName, "FAILED_PRECONDITION");
    assert.deepEqual([error.reason, error.domain], ["NO_CANDIDATE", "turnout.dev"]);
    const streamed = await failure(
      (async () => {
        for await (const event of client.generateStream(request))
          assert.fail(`an event: ${JSON.stringify(event.event?.$case)}`);
      })(),
    );
    assert.equal(streamed.reason, "NO_CANDIDATE");
  });

  test("a unix socket serves the same API", async () => {
    assert.ok(unixSocket, "TURNOUT_ADDRESS is set but TURNOUT_UNIX_SOCKET is not");
    const local = new TurnoutClient(`unix://${unixSocket}`, { timeoutMs: 30_000 });
    try {
      const { decision } = await local.route(chat("Is this spam? win a prize"));
      assert.equal(decision?.model, "gpt-4o-mini");
    } finally {
      local.close();
    }
  });

  test("the example prints the answer, then the model and its cost", async () => {
    const lines = await runExample("chat.mjs");
    assert.ok(lines.length >= 2, lines.join("\n"));
    assert.ok(lines.slice(0, -1).join("\n").trim(), lines.join("\n"));
    assert.match(lines.at(-1) ?? "", /^model: [A-Za-z0-9._-]+, cost: \$0\.[0-9]{2,9}$/);
  });

  test("the errors example prints what the README says", async () => {
    assert.deepEqual(await runExample("errors.mjs"), [
      "TurnoutError: NOT_FOUND MODEL_NOT_FOUND: pinned model 'no-such-model' is not in the registry",
      "5 NOT_FOUND",
      "MODEL_NOT_FOUND turnout.dev",
      "hints.pinned_model: pinned model 'no-such-model' is not in the registry",
    ]);
  });
});
