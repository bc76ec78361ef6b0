// Package turnout is the Go client of Turnout, the per-pod LLM routing sidecar: route, generate and
// stream over gRPC, with every failure decoded into one typed *Error.
//
//	client, err := turnout.Dial("127.0.0.1:50051", turnout.WithTimeout(30*time.Second))
//	...
//	answer, err := client.Generate(ctx, turnout.Chat("Is this spam?", turnout.TaskType("classify")))
//	fmt.Println(answer.GetOutput().GetText(), answer.GetModel(), turnout.FormatUSD(answer.GetCostUsdNanos()))
//
// The messages are the generated ones of package turnoutv1 (turnout/v1). The client never retries:
// the sidecar already retries, hedges and falls back across models; see the README.
package turnout

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	turnoutv1 "github.com/turnout-router/turnout/clients/go/turnout/v1"
)

// Client calls one sidecar. It is safe for concurrent use; Close it when done.
type Client struct {
	conn    *grpc.ClientConn
	stub    turnoutv1.RouterServiceClient
	timeout time.Duration
}

// Option configures Dial.
type Option func(*settings)

type settings struct {
	token       string
	timeout     time.Duration
	credentials credentials.TransportCredentials
	dialOptions []grpc.DialOption
}

// WithToken sends the token as "authorization: Bearer <token>" on every call, for a sidecar with
// server.auth_token_env set.
func WithToken(token string) Option { return func(s *settings) { s.token = token } }

// WithTimeout is the deadline of every call whose context has none. Without it (or with 0), such a
// call is bounded by the sidecar's server.default_timeout_s only.
func WithTimeout(timeout time.Duration) Option { return func(s *settings) { s.timeout = timeout } }

// WithTransportCredentials replaces the default plaintext connection, e.g. with
// credentials.NewTLS(...) for a sidecar with server.tls.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(s *settings) { s.credentials = creds }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, ...), applied after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// Dial returns a client of the sidecar at target: "host:port" (TCP) or "unix:///absolute/path" (the
// sidecar's unix socket, which is 0600: run as the same user). The connection is made lazily, on
// the first call, so an unreachable sidecar shows as an UNAVAILABLE *Error from that call.
func Dial(target string, opts ...Option) (*Client, error) {
	var s settings
	for _, opt := range opts {
		opt(&s)
	}
	if strings.TrimSpace(target) == "" {
		return nil, fromStatus(status.New(codes.InvalidArgument, "no target: give host:port or unix:///path"))
	}
	if s.timeout < 0 {
		return nil, fromStatus(status.Newf(codes.InvalidArgument, "timeout %v is negative", s.timeout))
	}
	if s.credentials == nil {
		s.credentials = insecure.NewCredentials()
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(s.credentials)}
	if s.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(s.token)))
	}
	conn, err := grpc.NewClient(target, append(dial, s.dialOptions...)...)
	if err != nil {
		return nil, AsError(err)
	}
	return &Client{conn: conn, stub: turnoutv1.NewRouterServiceClient(conn), timeout: s.timeout}, nil
}

// Close closes the connection; calls in flight fail with CANCELLED.
func (c *Client) Close() error { return c.conn.Close() }

// Route returns the routing decision for a request, without calling any model.
func (c *Client) Route(ctx context.Context, request Request) (*turnoutv1.RouteResponse, error) {
	return unary(ctx, c, request, c.stub.Route)
}

// Generate routes the request, calls the chosen model (the sidecar falls back on failure) and
// returns the whole answer with its model, cost, decision and attempts.
func (c *Client) Generate(ctx context.Context, request Request) (*turnoutv1.GenerateResponse, error) {
	return unary(ctx, c, request, c.stub.Generate)
}

// ListModels returns the sidecar's model registry with each model's live health.
func (c *Client) ListModels(ctx context.Context) ([]*turnoutv1.ModelInfo, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	reply, err := c.stub.ListModels(ctx, &turnoutv1.ListModelsRequest{})
	if err != nil {
		return nil, AsError(err)
	}
	return reply.GetModels(), nil
}

// GenerateStream is Generate with the answer streamed: read it with Recv until io.EOF. The call
// ends with the stream (its deadline runs until then); Close it to stop reading early.
func (c *Client) GenerateStream(ctx context.Context, request Request) (*Stream, error) {
	converted, err := convert[turnoutv1.GenerateStreamRequest](request)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.deadline(ctx)
	stream, err := c.stub.GenerateStream(ctx, converted)
	if err != nil {
		cancel()
		return nil, AsError(err)
	}
	return &Stream{stream: stream, cancel: cancel}, nil
}

func unary[T any, P interface {
	*T
	Request
}, R any](ctx context.Context, c *Client, request Request, call func(context.Context, P, ...grpc.CallOption) (R, error)) (R, error) {
	var zero R
	converted, err := convert[T, P](request)
	if err != nil {
		return zero, err
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	reply, err := call(ctx, converted)
	if err != nil {
		return zero, AsError(err)
	}
	return reply, nil
}

// deadline gives ctx the client's default timeout when it has no deadline of its own, and is always
// cancellable (a stream's Close cancels it).
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, has := ctx.Deadline(); !has && c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// Stream is a streamed answer: OutputDelta events, then exactly one StreamEnd with the usage, cost,
// decision and attempts.
type Stream struct {
	stream grpc.ServerStreamingClient[turnoutv1.GenerateStreamResponse]
	cancel context.CancelFunc
	text   strings.Builder
	end    *turnoutv1.StreamEnd
	err    error
}

// Recv returns the next event. After the end event it returns io.EOF; a failure before the end
// event is an *Error (and is returned again by every later Recv).
func (s *Stream) Recv() (*turnoutv1.GenerateStreamResponse, error) {
	if s.err != nil {
		return nil, s.err
	}
	event, err := s.stream.Recv()
	switch {
	case errors.Is(err, io.EOF) && s.end == nil:
		return nil, s.fail(fromStatus(status.New(codes.Internal, "the stream ended without its end event")))
	case err != nil && s.end != nil: // the answer is complete; how the call closed no longer matters
		return nil, s.fail(io.EOF)
	case err != nil:
		return nil, s.fail(AsError(err))
	}
	switch e := event.GetEvent().(type) {
	case *turnoutv1.GenerateStreamResponse_Delta:
		s.text.WriteString(e.Delta.GetText())
	case *turnoutv1.GenerateStreamResponse_End:
		s.end = e.End
	}
	return event, nil
}

// Text is the answer's text received so far: the concatenated text of the deltas.
func (s *Stream) Text() string { return s.text.String() }

// End is the stream's end event, or nil until it has been received.
func (s *Stream) End() *turnoutv1.StreamEnd { return s.end }

// Close stops the call if it is still running: a later Recv returns a CANCELLED *Error, or io.EOF
// once the end event has been received. Reading to io.EOF needs no Close.
func (s *Stream) Close() {
	s.cancel()
}

func (s *Stream) fail(err error) error {
	s.err = err
	s.cancel()
	return err
}

// bearer is the per-call credential of WithToken. It does not require TLS: the sidecar usually
// listens on loopback or a unix socket, where plaintext is the norm.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
