// What a failed call tells: the status, ErrorInfo, BadRequest and RetryInfo, as one TurnoutError.
import { TurnoutClient, TurnoutError, chat } from "@turnout/client";

const client = new TurnoutClient(process.env.TURNOUT_ADDRESS ?? "127.0.0.1:50051", { timeoutMs: 30_000 });
try {
  await client.generate(chat("hi", { pinnedModel: "no-such-model" }));
} catch (error) {
  if (!(error instanceof TurnoutError)) throw error;
  // TurnoutError: NOT_FOUND MODEL_NOT_FOUND: pinned model 'no-such-model' is not in the registry
  console.log(String(error));
  // 5 NOT_FOUND: the grpc-js status number (re-exported as Status) and its name
  console.log(error.code, error.codeName);
  // MODEL_NOT_FOUND turnout.dev: google.rpc.ErrorInfo (and error.metadata)
  console.log(error.reason, error.domain);
  for (const { field, description } of error.fieldViolations) {
    console.log(`${field}: ${description}`); // google.rpc.BadRequest: hints.pinned_model: ...
  }
  if (error.retryDelayMs !== undefined) {
    console.log(`retry after ${error.retryDelayMs} ms`); // google.rpc.RetryInfo: when trying may help
  }
} finally {
  client.close();
}
