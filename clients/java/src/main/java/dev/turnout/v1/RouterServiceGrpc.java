package dev.turnout.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * RouterService is the sidecar's API.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class RouterServiceGrpc {

  private RouterServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "turnout.v1.RouterService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.turnout.v1.RouteRequest,
      dev.turnout.v1.RouteResponse> getRouteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Route",
      requestType = dev.turnout.v1.RouteRequest.class,
      responseType = dev.turnout.v1.RouteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.turnout.v1.RouteRequest,
      dev.turnout.v1.RouteResponse> getRouteMethod() {
    io.grpc.MethodDescriptor<dev.turnout.v1.RouteRequest, dev.turnout.v1.RouteResponse> getRouteMethod;
    if ((getRouteMethod = RouterServiceGrpc.getRouteMethod) == null) {
      synchronized (RouterServiceGrpc.class) {
        if ((getRouteMethod = RouterServiceGrpc.getRouteMethod) == null) {
          RouterServiceGrpc.getRouteMethod = getRouteMethod =
              io.grpc.MethodDescriptor.<dev.turnout.v1.RouteRequest, dev.turnout.v1.RouteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Route"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.RouteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.RouteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RouterServiceMethodDescriptorSupplier("Route"))
              .build();
        }
      }
    }
    return getRouteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.turnout.v1.GenerateRequest,
      dev.turnout.v1.GenerateResponse> getGenerateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Generate",
      requestType = dev.turnout.v1.GenerateRequest.class,
      responseType = dev.turnout.v1.GenerateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.turnout.v1.GenerateRequest,
      dev.turnout.v1.GenerateResponse> getGenerateMethod() {
    io.grpc.MethodDescriptor<dev.turnout.v1.GenerateRequest, dev.turnout.v1.GenerateResponse> getGenerateMethod;
    if ((getGenerateMethod = RouterServiceGrpc.getGenerateMethod) == null) {
      synchronized (RouterServiceGrpc.class) {
        if ((getGenerateMethod = RouterServiceGrpc.getGenerateMethod) == null) {
          RouterServiceGrpc.getGenerateMethod = getGenerateMethod =
              io.grpc.MethodDescriptor.<dev.turnout.v1.GenerateRequest, dev.turnout.v1.GenerateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Generate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GenerateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GenerateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RouterServiceMethodDescriptorSupplier("Generate"))
              .build();
        }
      }
    }
    return getGenerateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.turnout.v1.GenerateStreamRequest,
      dev.turnout.v1.GenerateStreamResponse> getGenerateStreamMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GenerateStream",
      requestType = dev.turnout.v1.GenerateStreamRequest.class,
      responseType = dev.turnout.v1.GenerateStreamResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.turnout.v1.GenerateStreamRequest,
      dev.turnout.v1.GenerateStreamResponse> getGenerateStreamMethod() {
    io.grpc.MethodDescriptor<dev.turnout.v1.GenerateStreamRequest, dev.turnout.v1.GenerateStreamResponse> getGenerateStreamMethod;
    if ((getGenerateStreamMethod = RouterServiceGrpc.getGenerateStreamMethod) == null) {
      synchronized (RouterServiceGrpc.class) {
        if ((getGenerateStreamMethod = RouterServiceGrpc.getGenerateStreamMethod) == null) {
          RouterServiceGrpc.getGenerateStreamMethod = getGenerateStreamMethod =
              io.grpc.MethodDescriptor.<dev.turnout.v1.GenerateStreamRequest, dev.turnout.v1.GenerateStreamResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GenerateStream"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GenerateStreamRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GenerateStreamResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RouterServiceMethodDescriptorSupplier("GenerateStream"))
              .build();
        }
      }
    }
    return getGenerateStreamMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.turnout.v1.ListModelsRequest,
      dev.turnout.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = dev.turnout.v1.ListModelsRequest.class,
      responseType = dev.turnout.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.turnout.v1.ListModelsRequest,
      dev.turnout.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<dev.turnout.v1.ListModelsRequest, dev.turnout.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = RouterServiceGrpc.getListModelsMethod) == null) {
      synchronized (RouterServiceGrpc.class) {
        if ((getListModelsMethod = RouterServiceGrpc.getListModelsMethod) == null) {
          RouterServiceGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<dev.turnout.v1.ListModelsRequest, dev.turnout.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RouterServiceMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.turnout.v1.GetBudgetsRequest,
      dev.turnout.v1.GetBudgetsResponse> getGetBudgetsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetBudgets",
      requestType = dev.turnout.v1.GetBudgetsRequest.class,
      responseType = dev.turnout.v1.GetBudgetsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.turnout.v1.GetBudgetsRequest,
      dev.turnout.v1.GetBudgetsResponse> getGetBudgetsMethod() {
    io.grpc.MethodDescriptor<dev.turnout.v1.GetBudgetsRequest, dev.turnout.v1.GetBudgetsResponse> getGetBudgetsMethod;
    if ((getGetBudgetsMethod = RouterServiceGrpc.getGetBudgetsMethod) == null) {
      synchronized (RouterServiceGrpc.class) {
        if ((getGetBudgetsMethod = RouterServiceGrpc.getGetBudgetsMethod) == null) {
          RouterServiceGrpc.getGetBudgetsMethod = getGetBudgetsMethod =
              io.grpc.MethodDescriptor.<dev.turnout.v1.GetBudgetsRequest, dev.turnout.v1.GetBudgetsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetBudgets"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GetBudgetsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.turnout.v1.GetBudgetsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RouterServiceMethodDescriptorSupplier("GetBudgets"))
              .build();
        }
      }
    }
    return getGetBudgetsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static RouterServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RouterServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RouterServiceStub>() {
        @java.lang.Override
        public RouterServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RouterServiceStub(channel, callOptions);
        }
      };
    return RouterServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static RouterServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RouterServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RouterServiceBlockingV2Stub>() {
        @java.lang.Override
        public RouterServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RouterServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return RouterServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static RouterServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RouterServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RouterServiceBlockingStub>() {
        @java.lang.Override
        public RouterServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RouterServiceBlockingStub(channel, callOptions);
        }
      };
    return RouterServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static RouterServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RouterServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RouterServiceFutureStub>() {
        @java.lang.Override
        public RouterServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RouterServiceFutureStub(channel, callOptions);
        }
      };
    return RouterServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Route returns the routing decision for a request without calling any provider.
     * </pre>
     */
    default void route(dev.turnout.v1.RouteRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.RouteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRouteMethod(), responseObserver);
    }

    /**
     * <pre>
     * Generate decides, calls the chosen model (falling back to the next candidate on a retryable
     * failure) and returns the complete answer.
     * </pre>
     */
    default void generate(dev.turnout.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateMethod(), responseObserver);
    }

    /**
     * <pre>
     * GenerateStream is Generate with the answer streamed as deltas, then exactly one final `end`
     * event that carries usage, cost, the decision and every attempt. A stream that ends without an
     * `end` event ended with an error status.
     * </pre>
     */
    default void generateStream(dev.turnout.v1.GenerateStreamRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateStreamResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateStreamMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListModels returns the model registry with each model's live health.
     * </pre>
     */
    default void listModels(dev.turnout.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetBudgets returns the spend budgets in force: per budget and scope, the spend in the current
     * window, the limit and when the window resets.
     * </pre>
     */
    default void getBudgets(dev.turnout.v1.GetBudgetsRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GetBudgetsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetBudgetsMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service RouterService.
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public static abstract class RouterServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return RouterServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service RouterService.
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public static final class RouterServiceStub
      extends io.grpc.stub.AbstractAsyncStub<RouterServiceStub> {
    private RouterServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RouterServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RouterServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Route returns the routing decision for a request without calling any provider.
     * </pre>
     */
    public void route(dev.turnout.v1.RouteRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.RouteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRouteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Generate decides, calls the chosen model (falling back to the next candidate on a retryable
     * failure) and returns the complete answer.
     * </pre>
     */
    public void generate(dev.turnout.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGenerateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GenerateStream is Generate with the answer streamed as deltas, then exactly one final `end`
     * event that carries usage, cost, the decision and every attempt. A stream that ends without an
     * `end` event ended with an error status.
     * </pre>
     */
    public void generateStream(dev.turnout.v1.GenerateStreamRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateStreamResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getGenerateStreamMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListModels returns the model registry with each model's live health.
     * </pre>
     */
    public void listModels(dev.turnout.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetBudgets returns the spend budgets in force: per budget and scope, the spend in the current
     * window, the limit and when the window resets.
     * </pre>
     */
    public void getBudgets(dev.turnout.v1.GetBudgetsRequest request,
        io.grpc.stub.StreamObserver<dev.turnout.v1.GetBudgetsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetBudgetsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service RouterService.
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public static final class RouterServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<RouterServiceBlockingV2Stub> {
    private RouterServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RouterServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RouterServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Route returns the routing decision for a request without calling any provider.
     * </pre>
     */
    public dev.turnout.v1.RouteResponse route(dev.turnout.v1.RouteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRouteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Generate decides, calls the chosen model (falling back to the next candidate on a retryable
     * failure) and returns the complete answer.
     * </pre>
     */
    public dev.turnout.v1.GenerateResponse generate(dev.turnout.v1.GenerateRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GenerateStream is Generate with the answer streamed as deltas, then exactly one final `end`
     * event that carries usage, cost, the decision and every attempt. A stream that ends without an
     * `end` event ended with an error status.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.turnout.v1.GenerateStreamResponse>
        generateStream(dev.turnout.v1.GenerateStreamRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getGenerateStreamMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListModels returns the model registry with each model's live health.
     * </pre>
     */
    public dev.turnout.v1.ListModelsResponse listModels(dev.turnout.v1.ListModelsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetBudgets returns the spend budgets in force: per budget and scope, the spend in the current
     * window, the limit and when the window resets.
     * </pre>
     */
    public dev.turnout.v1.GetBudgetsResponse getBudgets(dev.turnout.v1.GetBudgetsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetBudgetsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service RouterService.
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public static final class RouterServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<RouterServiceBlockingStub> {
    private RouterServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RouterServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RouterServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Route returns the routing decision for a request without calling any provider.
     * </pre>
     */
    public dev.turnout.v1.RouteResponse route(dev.turnout.v1.RouteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRouteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Generate decides, calls the chosen model (falling back to the next candidate on a retryable
     * failure) and returns the complete answer.
     * </pre>
     */
    public dev.turnout.v1.GenerateResponse generate(dev.turnout.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GenerateStream is Generate with the answer streamed as deltas, then exactly one final `end`
     * event that carries usage, cost, the decision and every attempt. A stream that ends without an
     * `end` event ended with an error status.
     * </pre>
     */
    public java.util.Iterator<dev.turnout.v1.GenerateStreamResponse> generateStream(
        dev.turnout.v1.GenerateStreamRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getGenerateStreamMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListModels returns the model registry with each model's live health.
     * </pre>
     */
    public dev.turnout.v1.ListModelsResponse listModels(dev.turnout.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetBudgets returns the spend budgets in force: per budget and scope, the spend in the current
     * window, the limit and when the window resets.
     * </pre>
     */
    public dev.turnout.v1.GetBudgetsResponse getBudgets(dev.turnout.v1.GetBudgetsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetBudgetsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service RouterService.
   * <pre>
   * RouterService is the sidecar's API.
   * </pre>
   */
  public static final class RouterServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<RouterServiceFutureStub> {
    private RouterServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RouterServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RouterServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Route returns the routing decision for a request without calling any provider.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.turnout.v1.RouteResponse> route(
        dev.turnout.v1.RouteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRouteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Generate decides, calls the chosen model (falling back to the next candidate on a retryable
     * failure) and returns the complete answer.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.turnout.v1.GenerateResponse> generate(
        dev.turnout.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGenerateMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListModels returns the model registry with each model's live health.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.turnout.v1.ListModelsResponse> listModels(
        dev.turnout.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetBudgets returns the spend budgets in force: per budget and scope, the spend in the current
     * window, the limit and when the window resets.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.turnout.v1.GetBudgetsResponse> getBudgets(
        dev.turnout.v1.GetBudgetsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetBudgetsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_ROUTE = 0;
  private static final int METHODID_GENERATE = 1;
  private static final int METHODID_GENERATE_STREAM = 2;
  private static final int METHODID_LIST_MODELS = 3;
  private static final int METHODID_GET_BUDGETS = 4;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_ROUTE:
          serviceImpl.route((dev.turnout.v1.RouteRequest) request,
              (io.grpc.stub.StreamObserver<dev.turnout.v1.RouteResponse>) responseObserver);
          break;
        case METHODID_GENERATE:
          serviceImpl.generate((dev.turnout.v1.GenerateRequest) request,
              (io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateResponse>) responseObserver);
          break;
        case METHODID_GENERATE_STREAM:
          serviceImpl.generateStream((dev.turnout.v1.GenerateStreamRequest) request,
              (io.grpc.stub.StreamObserver<dev.turnout.v1.GenerateStreamResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((dev.turnout.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<dev.turnout.v1.ListModelsResponse>) responseObserver);
          break;
        case METHODID_GET_BUDGETS:
          serviceImpl.getBudgets((dev.turnout.v1.GetBudgetsRequest) request,
              (io.grpc.stub.StreamObserver<dev.turnout.v1.GetBudgetsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getRouteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.turnout.v1.RouteRequest,
              dev.turnout.v1.RouteResponse>(
                service, METHODID_ROUTE)))
        .addMethod(
          getGenerateMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.turnout.v1.GenerateRequest,
              dev.turnout.v1.GenerateResponse>(
                service, METHODID_GENERATE)))
        .addMethod(
          getGenerateStreamMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.turnout.v1.GenerateStreamRequest,
              dev.turnout.v1.GenerateStreamResponse>(
                service, METHODID_GENERATE_STREAM)))
        .addMethod(
          getListModelsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.turnout.v1.ListModelsRequest,
              dev.turnout.v1.ListModelsResponse>(
                service, METHODID_LIST_MODELS)))
        .addMethod(
          getGetBudgetsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.turnout.v1.GetBudgetsRequest,
              dev.turnout.v1.GetBudgetsResponse>(
                service, METHODID_GET_BUDGETS)))
        .build();
  }

  private static abstract class RouterServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    RouterServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.turnout.v1.RouterProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("RouterService");
    }
  }

  private static final class RouterServiceFileDescriptorSupplier
      extends RouterServiceBaseDescriptorSupplier {
    RouterServiceFileDescriptorSupplier() {}
  }

  private static final class RouterServiceMethodDescriptorSupplier
      extends RouterServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    RouterServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (RouterServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new RouterServiceFileDescriptorSupplier())
              .addMethod(getRouteMethod())
              .addMethod(getGenerateMethod())
              .addMethod(getGenerateStreamMethod())
              .addMethod(getListModelsMethod())
              .addMethod(getGetBudgetsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
