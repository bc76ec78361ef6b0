package dev.turnout.client;

import dev.turnout.v1.GenerateRequest;
import dev.turnout.v1.GenerateResponse;
import dev.turnout.v1.GenerateStreamRequest;
import dev.turnout.v1.ListModelsRequest;
import dev.turnout.v1.ModelInfo;
import dev.turnout.v1.RouteRequest;
import dev.turnout.v1.RouteResponse;
import dev.turnout.v1.RouterServiceGrpc;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * A client of the Turnout sidecar's RouterService.
 *
 * <pre>{@code
 * try (TurnoutClient client = TurnoutClient.connect("127.0.0.1:50051")) {
 *   GenerateResponse answer = client.generate(Requests.chat("Is this spam?"));
 * }
 * }</pre>
 *
 * <p>A target is {@code host:port} (TCP) or {@code unix:///absolute/path} (the sidecar's unix
 * socket). The connection is made on the first call, so an unreachable sidecar is an {@code
 * UNAVAILABLE} {@link TurnoutException} from that call. Every call is blocking; every failure is a
 * {@link TurnoutException}. The client never retries (the sidecar does, within its budget). It is
 * thread-safe: share one per process and {@link #close()} it when done.
 */
public final class TurnoutClient implements AutoCloseable {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Duration CLOSE_GRACE = Duration.ofSeconds(5);

  private final ManagedChannel channel;
  private final RouterServiceGrpc.RouterServiceBlockingStub stub;
  private final Duration timeout; // null: no client-side deadline, the sidecar's default_timeout_s bounds the call
  private final boolean ownsChannel;

  private TurnoutClient(
      ManagedChannel channel, RouterServiceGrpc.RouterServiceBlockingStub stub, Duration timeout, boolean ownsChannel) {
    this.channel = channel;
    this.stub = stub;
    this.timeout = timeout;
    this.ownsChannel = ownsChannel;
  }

  /**
   * Connects with the defaults: plaintext, no token, no client-side deadline.
   *
   * @param target {@code host:port} or {@code unix:///absolute/path}
   * @return the client
   */
  public static TurnoutClient connect(String target) {
    return builder(target).build();
  }

  /**
   * A builder for a client with a token, a default deadline, TLS or other channel settings.
   *
   * @param target {@code host:port} or {@code unix:///absolute/path}
   * @return the builder
   */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /**
   * This client with another deadline for each call: {@code client.withTimeout(Duration.ofSeconds(2)).generate(req)}.
   * The view shares this client's connection; closing the view does nothing, close this client.
   *
   * @param timeout the time each call may take, from its start (a stream's, until it ends)
   * @return a view of this client
   */
  public TurnoutClient withTimeout(Duration timeout) {
    return new TurnoutClient(channel, stub, positive(timeout), false);
  }

  /**
   * The routing decision for a request, without calling any model.
   *
   * @param request the request
   * @return the decision, with its reasons
   * @throws TurnoutException when the call fails
   */
  public RouteResponse route(RouteRequest request) {
    return call(() -> stub().route(request));
  }

  /**
   * The routing decision for a Generate request (see {@link Requests#toRouteRequest}).
   *
   * @param request the request
   * @return the decision, with its reasons
   * @throws TurnoutException when the call fails
   */
  public RouteResponse route(GenerateRequest request) {
    return route(Requests.toRouteRequest(request));
  }

  /**
   * Routes the request, calls the chosen model (falling back as the route says) and returns the
   * whole answer.
   *
   * @param request the request
   * @return the answer with its model, usage, cost, decision and attempts
   * @throws TurnoutException when the call fails
   */
  public GenerateResponse generate(GenerateRequest request) {
    return call(() -> stub().generate(request));
  }

  /**
   * Generate with the answer streamed. The deadline covers the whole stream. Close the stream (or
   * read it to its end) to release the call.
   *
   * @param request the request
   * @return the stream of events: deltas, then one end event
   * @throws TurnoutException when the call fails to start; later failures come from the stream
   */
  public ResponseStream generateStream(GenerateStreamRequest request) {
    RouterServiceGrpc.RouterServiceBlockingStub deadlined = stub();
    return new ResponseStream(Context.current().withCancellation(), () -> deadlined.generateStream(request));
  }

  /**
   * Generate with the answer streamed, for a Generate request (see {@link Requests#toStreamRequest}).
   *
   * @param request the request
   * @return the stream of events: deltas, then one end event
   * @throws TurnoutException when the call fails to start; later failures come from the stream
   */
  public ResponseStream generateStream(GenerateRequest request) {
    return generateStream(Requests.toStreamRequest(request));
  }

  /**
   * The model registry, with each model's live health.
   *
   * @return the models
   * @throws TurnoutException when the call fails
   */
  public List<ModelInfo> listModels() {
    return call(() -> stub().listModels(ListModelsRequest.getDefaultInstance()).getModelsList());
  }

  /**
   * The channel, with the token attached, for other services the sidecar serves (e.g. {@code
   * grpc.health.v1}) or for the generated stubs; errors of those calls decode with {@link
   * TurnoutException#from}.
   *
   * @return the channel
   */
  public Channel channel() {
    return stub.getChannel();
  }

  /** Closes the connection, waiting a few seconds for calls in flight. Does nothing on a view. */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdown();
    try {
      if (!channel.awaitTermination(CLOSE_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  // The deadline is set per call, from the call's start (a stub's withDeadlineAfter fixes it when made).
  private RouterServiceGrpc.RouterServiceBlockingStub stub() {
    return timeout == null ? stub : stub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private static <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw TurnoutException.from(e);
    }
  }

  private static Duration positive(Duration timeout) {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("a timeout must be positive, not " + timeout);
    }
    return timeout;
  }

  /** Builds a {@link TurnoutClient}; each setter returns the builder. */
  public static final class Builder {
    private final String target;
    private String token;
    private Duration timeout;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private Consumer<ManagedChannelBuilder<?>> configure = channel -> {};

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /**
     * The sidecar's token ({@code server.auth_token_env}), sent as {@code authorization: Bearer ...}.
     *
     * @param token the token
     * @return this builder
     */
    public Builder token(String token) {
      this.token = Objects.requireNonNull(token, "token");
      return this;
    }

    /**
     * The default deadline of each call; without one, the sidecar's {@code server.default_timeout_s}
     * bounds a call. {@link TurnoutClient#withTimeout} overrides it per call.
     *
     * @param timeout the time each call may take
     * @return this builder
     */
    public Builder timeout(Duration timeout) {
      this.timeout = positive(timeout);
      return this;
    }

    /**
     * TLS with the system's trusted roots, for a sidecar with {@code server.tls}.
     *
     * @return this builder
     */
    public Builder tls() {
      return credentials(TlsChannelCredentials.create());
    }

    /**
     * The channel's credentials, e.g. {@code TlsChannelCredentials.newBuilder().trustManager(caFile).build()}.
     *
     * @param credentials the credentials (plaintext by default)
     * @return this builder
     */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /**
     * Anything else gRPC offers on the channel builder (message sizes, keepalive, a user agent...).
     *
     * @param configure called with the channel builder before the channel is built
     * @return this builder
     */
    public Builder configure(Consumer<ManagedChannelBuilder<?>> configure) {
      this.configure = Objects.requireNonNull(configure, "configure");
      return this;
    }

    /**
     * The client. No connection is made yet.
     *
     * @return the client
     */
    public TurnoutClient build() {
      ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, credentials);
      if (target.startsWith("unix:") && builder instanceof NettyChannelBuilder netty) {
        // gRPC asks every Netty socket for SO_KEEPALIVE, which a unix socket does not have; Netty
        // then logs a warning on each connection. Unset it (LiveTest checks that nothing is logged).
        netty.withOption(ChannelOption.SO_KEEPALIVE, null);
      }
      configure.accept(builder);
      ManagedChannel channel = builder.build();
      RouterServiceGrpc.RouterServiceBlockingStub stub = RouterServiceGrpc.newBlockingStub(channel);
      if (token != null) {
        stub = stub.withInterceptors(new BearerToken(token));
      }
      return new TurnoutClient(channel, stub, timeout, true);
    }
  }

  private static final class BearerToken implements ClientInterceptor {
    private final String value;

    BearerToken(String token) {
      this.value = "Bearer " + token;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          headers.put(AUTHORIZATION, value);
          super.start(listener, headers);
        }
      };
    }
  }
}
