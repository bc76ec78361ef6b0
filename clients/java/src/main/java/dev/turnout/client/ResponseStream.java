package dev.turnout.client;

import dev.turnout.v1.GenerateStreamResponse;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Supplier;

/**
 * A streamed answer: the deltas (pieces of text and tool calls), then exactly one {@code end} event
 * with the usage, cost, decision and attempts. A failure, before or during the stream, is thrown by
 * {@link #hasNext()} or {@link #next()} as a {@link TurnoutException}; a stream that ends without an
 * {@code end} event ended with such an exception.
 *
 * <pre>{@code
 * try (ResponseStream stream = client.generateStream(Requests.chat("Tell me a story"))) {
 *   while (stream.hasNext()) {
 *     GenerateStreamResponse event = stream.next();
 *     if (event.hasDelta()) System.out.print(event.getDelta().getText());
 *   }
 * }
 * }</pre>
 *
 * <p>{@link #close()} cancels the call (the sidecar stops the model's stream) when you leave early;
 * after the end event it does nothing. Read it from one thread at a time.
 */
public final class ResponseStream implements Iterator<GenerateStreamResponse>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<GenerateStreamResponse> responses;

  ResponseStream(Context.CancellableContext context, Supplier<Iterator<GenerateStreamResponse>> start) {
    this.context = context;
    // gRPC ties the call to the context current when it starts: cancelling this one cancels it.
    Context previous = context.attach();
    try {
      this.responses = start.get();
    } catch (StatusRuntimeException e) {
      context.cancel(e);
      throw TurnoutException.from(e);
    } finally {
      context.detach(previous);
    }
  }

  /**
   * Waits for the next event, or the end of the stream.
   *
   * @return whether there is another event
   * @throws TurnoutException when the call failed
   */
  @Override
  public boolean hasNext() {
    try {
      boolean more = responses.hasNext();
      if (!more) {
        context.cancel(null); // the call is over: this only releases the context
      }
      return more;
    } catch (StatusRuntimeException e) {
      context.cancel(null);
      throw TurnoutException.from(e);
    }
  }

  /**
   * The next event, waiting for it.
   *
   * @return a delta, or the end event
   * @throws TurnoutException when the call failed
   * @throws NoSuchElementException after the end of the stream
   */
  @Override
  public GenerateStreamResponse next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the stream has ended");
    }
    return responses.next();
  }

  /** Cancels the call if it is still running. */
  @Override
  public void close() {
    context.cancel(null);
  }
}
