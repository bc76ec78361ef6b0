// Ask Turnout for one answer: the model it chose and what the answer cost.
import { TurnoutClient, chat, formatUsd } from "@turnout/client";

const client = new TurnoutClient(process.env.TURNOUT_ADDRESS ?? "127.0.0.1:50051", { timeoutMs: 30_000 });
try {
  const answer = await client.generate(
    chat("Is this email spam? 'You won a prize!'", { taskType: "classify" }),
  );
  console.log(answer.output?.text);
  console.log(`model: ${answer.model}, cost: ${formatUsd(answer.costUsdNanos)}`);
} finally {
  client.close();
}
