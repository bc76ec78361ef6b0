package turnout_test

// The client against an in-process fake RouterService (no sidecar): what it sends and how it reads
// what comes back, trailers included.

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	turnout "github.com/turnout-router/turnout/clients/go"
	turnoutv1 "github.com/turnout-router/turnout/clients/go/turnout/v1"
)

// fake answers from fixed values and records what it was sent.
type fake struct {
	turnoutv1.UnimplementedRouterServiceServer
	route       *turnoutv1.RouteRequest
	stream      *turnoutv1.GenerateStreamRequest
	auth        []string
	deadline    time.Duration
	generateErr error
	events      []*turnoutv1.GenerateStreamResponse
}

func (f *fake) Route(ctx context.Context, r *turnoutv1.RouteRequest) (*turnoutv1.RouteResponse, error) {
	f.route = r
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = md.Get("authorization")
	if deadline, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(deadline)
	}
	return &turnoutv1.RouteResponse{Decision: &turnoutv1.Decision{Model: "gpt-4o-mini"}, RequestId: r.GetRequestId()}, nil
}

func (f *fake) Generate(context.Context, *turnoutv1.GenerateRequest) (*turnoutv1.GenerateResponse, error) {
	return nil, f.generateErr
}

func (f *fake) GenerateStream(r *turnoutv1.GenerateStreamRequest, s grpc.ServerStreamingServer[turnoutv1.GenerateStreamResponse]) error {
	f.stream = r
	for _, event := range f.events {
		if err := s.Send(event); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) ListModels(context.Context, *turnoutv1.ListModelsRequest) (*turnoutv1.ListModelsResponse, error) {
	return &turnoutv1.ListModelsResponse{Models: []*turnoutv1.ModelInfo{{Name: "gpt-4o", Provider: "openai"}}}, nil
}

func serveFake(t *testing.T, f *fake, opts ...turnout.Option) *turnout.Client {
	t.Helper()
	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	turnoutv1.RegisterRouterServiceServer(server, f)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return listener.DialContext(ctx) }
	client, err := turnout.Dial("passthrough:///fake", append(opts, turnout.WithDialOptions(grpc.WithContextDialer(dialer)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// readStream reads a stream to io.EOF: the kind of each event ('d' a delta, 'e' the end event) and
// the deltas' text.
func readStream(t *testing.T, stream *turnout.Stream) (kinds, text string) {
	t.Helper()
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return kinds, text
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := event.GetEvent().(type) {
		case *turnoutv1.GenerateStreamResponse_Delta:
			kinds, text = kinds+"d", text+e.Delta.GetText()
		case *turnoutv1.GenerateStreamResponse_End:
			kinds += "e"
		}
	}
}

func TestOneRequestServesAllThreeCalls(t *testing.T) {
	f := &fake{events: []*turnoutv1.GenerateStreamResponse{{Event: &turnoutv1.GenerateStreamResponse_End{End: &turnoutv1.StreamEnd{Model: "m"}}}}}
	client := serveFake(t, f)
	request := turnout.Chat("hi", turnout.RouteName("smart"), turnout.MaxOutputTokens(7), turnout.RequestID("r-1"))
	request.Tools = []*turnoutv1.Tool{{Name: "lookup"}}
	reply, err := client.Route(t.Context(), request)
	if err != nil || reply.GetDecision().GetModel() != "gpt-4o-mini" || reply.GetRequestId() != "r-1" {
		t.Fatalf("Route = %v, %v", reply, err)
	}
	stream, err := client.GenerateStream(t.Context(), request)
	if err != nil {
		t.Fatal(err)
	}
	readStream(t, stream)
	wire, _ := proto.Marshal(request)
	for name, got := range map[string]proto.Message{"RouteRequest": f.route, "GenerateStreamRequest": f.stream} {
		sent, _ := proto.Marshal(got)
		if string(sent) != string(wire) || got.(turnout.Request).GetHints().GetRoute() != "smart" {
			t.Errorf("the server got the %s %v, want the fields of %v", name, got, request)
		}
	}
	// A message of the call's own type goes as it is.
	if _, err := client.Route(t.Context(), &turnoutv1.RouteRequest{RequestId: "own"}); err != nil || f.route.GetRequestId() != "own" {
		t.Errorf("Route(RouteRequest) = %v, server got %v", err, f.route)
	}
	var failure *turnout.Error
	if _, err := client.Route(t.Context(), nil); !errors.As(err, &failure) || failure.Code != codes.InvalidArgument {
		t.Errorf("Route(nil) = %v, want an INVALID_ARGUMENT *Error", err)
	}
}

func TestTheTokenGoesAsBearerMetadata(t *testing.T) {
	f := &fake{}
	client := serveFake(t, f, turnout.WithToken("tok-123"))
	if _, err := client.Route(t.Context(), turnout.Chat("hi")); err != nil {
		t.Fatal(err)
	}
	if len(f.auth) != 1 || f.auth[0] != "Bearer tok-123" {
		t.Errorf("authorization = %q", f.auth)
	}
}

func TestTheDefaultTimeoutAppliesOnlyWithoutAContextDeadline(t *testing.T) {
	f := &fake{}
	client := serveFake(t, f, turnout.WithTimeout(5*time.Second))
	if _, err := client.Route(t.Context(), turnout.Chat("hi")); err != nil {
		t.Fatal(err)
	}
	if f.deadline <= 4*time.Second || f.deadline > 5*time.Second {
		t.Errorf("without a context deadline the server saw %v, want the default 5s", f.deadline)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	if _, err := client.Route(ctx, turnout.Chat("hi")); err != nil {
		t.Fatal(err)
	}
	if f.deadline < 59*time.Minute {
		t.Errorf("with a context deadline of 1h the server saw %v", f.deadline)
	}
	f.deadline = 0
	if _, err := serveFake(t, f).Route(t.Context(), turnout.Chat("hi")); err != nil || f.deadline != 0 {
		t.Errorf("with neither, the server saw a deadline of %v (%v)", f.deadline, err)
	}
	if _, err := turnout.Dial("127.0.0.1:1", turnout.WithTimeout(-time.Second)); err == nil {
		t.Error("Dial took a negative timeout")
	}
	if _, err := turnout.Dial(" "); err == nil {
		t.Error("Dial took an empty target")
	}
}

func TestErrorDetailsArriveThroughTheTrailer(t *testing.T) {
	st, err := status.New(codes.Unavailable, "every candidate failed").WithDetails(
		&errdetails.ErrorInfo{Reason: "ALL_CANDIDATES_FAILED", Domain: "turnout.dev"},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	client := serveFake(t, &fake{generateErr: st.Err()})
	_, err = client.Generate(t.Context(), turnout.Chat("hi"))
	var failure *turnout.Error
	if !errors.As(err, &failure) {
		t.Fatalf("Generate returned %T %v, want *turnout.Error", err, err)
	}
	if failure.Code != codes.Unavailable || failure.Reason != "ALL_CANDIDATES_FAILED" ||
		!failure.HasRetryDelay || failure.RetryDelay != 1500*time.Millisecond {
		t.Errorf("decoded %+v", failure)
	}
}

func TestAStreamAccumulatesItsTextAndEndsWithTheEndEvent(t *testing.T) {
	delta := func(text string) *turnoutv1.GenerateStreamResponse {
		return &turnoutv1.GenerateStreamResponse{Event: &turnoutv1.GenerateStreamResponse_Delta{Delta: &turnoutv1.OutputDelta{Text: text}}}
	}
	end := &turnoutv1.StreamEnd{Model: "gpt-4o-mini", CostUsdNanos: 309300}
	f := &fake{events: []*turnoutv1.GenerateStreamResponse{
		delta("Rivers "), delta("run."), {Event: &turnoutv1.GenerateStreamResponse_End{End: end}},
	}}
	client := serveFake(t, f)
	stream, err := client.GenerateStream(t.Context(), turnout.Chat("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if stream.End() != nil {
		t.Error("End() is set before the end event")
	}
	kinds, text := readStream(t, stream)
	if kinds != "dde" || text != "Rivers run." || stream.Text() != text || !proto.Equal(stream.End(), end) {
		t.Errorf("events %q, text %q (Text() %q), end %v", kinds, text, stream.Text(), stream.End())
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after the end = %v, want io.EOF", err)
	}
	stream.Close()

	f.events = f.events[:1] // a stream that stops without its end event
	stream, err = client.GenerateStream(t.Context(), turnout.Chat("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	var failure *turnout.Error
	if _, err := stream.Recv(); !errors.As(err, &failure) || failure.Code != codes.Internal {
		t.Errorf("Recv at a stream's end without its end event = %v, want an INTERNAL *Error", err)
	}
}

func TestListModelsGivesTheModels(t *testing.T) {
	models, err := serveFake(t, &fake{}).ListModels(t.Context())
	if err != nil || len(models) != 1 || models[0].GetName() != "gpt-4o" {
		t.Errorf("ListModels = %v, %v", models, err)
	}
}
