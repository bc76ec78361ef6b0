/**
 * The Turnout client: {@link dev.turnout.client.TurnoutClient} (connect, route, generate,
 * generateStream, listModels, per-call deadlines), {@link dev.turnout.client.Requests} (a chat call
 * in one line), {@link dev.turnout.client.TurnoutException} (every failure, decoded from the
 * google.rpc.Status details) and {@link dev.turnout.client.Money} (nano-dollars for display). The
 * messages and the service are the generated code in {@code dev.turnout.v1}.
 */
package dev.turnout.client;
