// The official openai Node SDK against Turnout's HTTP front door: only baseURL changes.
// Run by tests/http_api/test_node_sdk.py with TURNOUT_HTTP_URL and TURNOUT_SIM_URL set.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

const root = process.env.TURNOUT_HTTP_URL;
const sim = process.env.TURNOUT_SIM_URL;
assert.ok(root && sim, "TURNOUT_HTTP_URL and TURNOUT_SIM_URL must be set");
const client = new OpenAI({ baseURL: `${root}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
const hello = [{ role: "user", content: "Say hello to the routing sidecar." }];

async function fault(body) {
  const response = await fetch(`${sim}/_sim/faults`, { method: "POST", body: JSON.stringify(body) });
  assert.ok(response.ok, await response.text());
}

test("a completion names the model that answered, in the body and the headers", async () => {
  const { data, response } = await client.chat.completions
    .create({ model: "auto", messages: hello, max_tokens: 20 })
    .withResponse();
  assert.equal(data.object, "chat.completion");
  assert.ok(data.choices[0].message.content.length > 0);
  assert.equal(data.model, "gpt-4o-mini");
  assert.equal(response.headers.get("x-turnout-model"), data.model);
  assert.equal(response.headers.get("x-turnout-route"), "default");
});

test("a stream yields text chunks and ends with the usage", async () => {
  const stream = await client.chat.completions.create({
    model: "auto",
    messages: hello,
    max_tokens: 30,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  assert.ok(text.length > 0);
  assert.ok(usage.completion_tokens > 0);
});

test("logprobs come back per token, with their top alternatives, in a stream too", async () => {
  const completion = await client.chat.completions.create({
    model: "auto",
    messages: hello,
    max_tokens: 10,
    logprobs: true,
    top_logprobs: 2,
  });
  const tokens = completion.choices[0].logprobs.content;
  assert.equal(tokens.map((t) => t.token).join(""), completion.choices[0].message.content);
  assert.ok(tokens.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2));

  const stream = await client.chat.completions.create({
    model: "auto",
    messages: hello,
    max_tokens: 10,
    logprobs: true,
    stream: true,
  });
  let text = "";
  let streamed = "";
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    streamed += (chunk.choices[0]?.logprobs?.content ?? []).map((t) => t.token).join("");
  }
  assert.ok(text.length > 0);
  assert.equal(streamed, text);
});

test("tools come back as tool calls whose arguments parse", async () => {
  const completion = await client.chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: "Weather in Paris?" }],
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ],
    tool_choice: "required",
  });
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.equal(typeof JSON.parse(call.function.arguments).city, "string");
});

test("a failed first choice falls back, and the headers say so", async () => {
  await fault({ model: "gpt-4o-mini", kind: "server_error", count: 1 });
  const { data, response } = await client.chat.completions.create({ model: "auto", messages: hello }).withResponse();
  assert.equal(data.model, "gemini-2.5-flash");
  assert.equal(response.headers.get("x-turnout-attempts"), "2");
});

test("a stream broken after its first chunk throws an APIError", async () => {
  await fault({ model: "gpt-4o-mini", kind: "stream_cut", after_chunks: 2, count: 1 });
  const stream = await client.chat.completions.create({ model: "auto", messages: hello, max_tokens: 60, stream: true });
  let chunks = 0;
  await assert.rejects(
    async () => {
      for await (const _ of stream) chunks += 1;
    },
    (error) => error instanceof OpenAI.APIError && /the stream from gpt-4o-mini failed/.test(error.message),
  );
  assert.ok(chunks > 0);
});

test("errors are the SDK's types", async () => {
  await assert.rejects(client.chat.completions.create({ model: "auto", messages: hello, n: 3 }), OpenAI.BadRequestError);
  await assert.rejects(client.chat.completions.create({ model: "gpt-9", messages: hello }), OpenAI.NotFoundError);
});

test("what Turnout cannot honour is a BadRequestError naming the field, not ignored", async () => {
  const legacy = { model: "auto", messages: hello, functions: [{ name: "f", parameters: { type: "object" } }] };
  await assert.rejects(
    client.chat.completions.create(legacy),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "functions",
  );
  const audio = { model: "auto", messages: hello, modalities: ["text", "audio"] };
  await assert.rejects(
    client.chat.completions.create(audio),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "modalities",
  );
  const penalised = { model: "auto", messages: hello, max_tokens: 10, frequency_penalty: 0.5 };
  assert.ok((await client.chat.completions.create(penalised)).choices[0].message.content);
});

test("models.retrieve returns a model or a route, and NotFoundError for others", async () => {
  assert.equal((await client.models.retrieve("gpt-4o-mini")).owned_by, "openai");
  assert.equal((await client.models.retrieve("default")).owned_by, "turnout");
  await assert.rejects(client.models.retrieve("gpt-9"), OpenAI.NotFoundError);
});
