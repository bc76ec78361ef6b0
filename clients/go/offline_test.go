package turnout_test

// What needs no sidecar: the money formatter, the error decoder, the request helpers.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	turnout "github.com/turnout-router/turnout/clients/go"
	turnoutv1 "github.com/turnout-router/turnout/clients/go/turnout/v1"
)

func TestFormatUSDIsExact(t *testing.T) {
	for nanos, want := range map[int64]string{
		0:             "$0.00",
		1:             "$0.000000001",
		12345:         "$0.000012345",
		309300:        "$0.0003093",
		1500000000:    "$1.50",
		1000000000:    "$1.00",
		123456789012:  "$123.456789012",
		-10000000:     "-$0.01",
		math.MaxInt64: "$9223372036.854775807",
		math.MinInt64: "-$9223372036.854775808",
	} {
		if got := turnout.FormatUSD(nanos); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", nanos, got, want)
		}
	}
}

// statusError is the error a call returns when the sidecar answers with these details.
func statusError(t *testing.T, code codes.Code, message string, details ...proto.Message) error {
	t.Helper()
	st := &spb.Status{Code: int32(code), Message: message}
	for _, detail := range details {
		packed, err := anypb.New(detail)
		if err != nil {
			t.Fatal(err)
		}
		st.Details = append(st.Details, packed)
	}
	return status.FromProto(st).Err()
}

func TestAsErrorDecodesEveryDetail(t *testing.T) {
	err := statusError(t, codes.Unavailable, "every candidate failed",
		&errdetails.ErrorInfo{
			Reason:   "ALL_CANDIDATES_FAILED",
			Domain:   "turnout.dev",
			Metadata: map[string]string{"attempt.1.gpt-4o": "rate_limited"},
		},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "hints.route", Description: "unknown"},
		}},
		&errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: 2, Nanos: 500_000_000}},
	)
	wrapped := fmt.Errorf("asking: %w", turnout.AsError(err))

	var failure *turnout.Error
	if !errors.As(wrapped, &failure) {
		t.Fatalf("errors.As found no *turnout.Error in %v", wrapped)
	}
	if failure.Code != codes.Unavailable || failure.Message != "every candidate failed" {
		t.Errorf("code, message = %v, %q", failure.Code, failure.Message)
	}
	if failure.Reason != "ALL_CANDIDATES_FAILED" || failure.Domain != "turnout.dev" {
		t.Errorf("reason, domain = %q, %q", failure.Reason, failure.Domain)
	}
	if want := map[string]string{"attempt.1.gpt-4o": "rate_limited"}; !reflect.DeepEqual(failure.Metadata, want) {
		t.Errorf("metadata = %v, want %v", failure.Metadata, want)
	}
	if want := []turnout.FieldViolation{{Field: "hints.route", Description: "unknown"}}; !reflect.DeepEqual(failure.FieldViolations, want) {
		t.Errorf("field violations = %v, want %v", failure.FieldViolations, want)
	}
	if !failure.HasRetryDelay || failure.RetryDelay != 2500*time.Millisecond {
		t.Errorf("retry delay = %v (has %v), want 2.5s", failure.RetryDelay, failure.HasRetryDelay)
	}
	if got, want := failure.Error(), "turnout: UNAVAILABLE ALL_CANDIDATES_FAILED: every candidate failed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// The status stays reachable, details included.
	if status.Code(wrapped) != codes.Unavailable || len(failure.GRPCStatus().Details()) != 3 {
		t.Errorf("status.Code = %v, %d details", status.Code(wrapped), len(failure.GRPCStatus().Details()))
	}
	if errors.Unwrap(failure) == nil || status.Convert(errors.Unwrap(failure)).Message() != "every candidate failed" {
		t.Errorf("Unwrap() = %v, want the status error", errors.Unwrap(failure))
	}
	if turnout.AsError(failure) != failure {
		t.Error("AsError changed an *Error")
	}
}

func TestAsErrorWithoutDetailsLeavesThemEmpty(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{status.Error(codes.Internal, "boom"), codes.Internal},
		{statusError(t, codes.Internal, "boom", durationpb.New(time.Second)), codes.Internal}, // a detail it does not know
		{statusError(t, codes.Unavailable, "later", &errdetails.RetryInfo{}), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{fmt.Errorf("dialing: %w", context.Canceled), codes.Canceled},
		{errors.New("something else"), codes.Unknown},
	} {
		failure := turnout.AsError(tc.err)
		if failure.Code != tc.code {
			t.Errorf("AsError(%v).Code = %v, want %v", tc.err, failure.Code, tc.code)
		}
		if failure.Reason != "" || failure.Domain != "" || failure.Metadata != nil || failure.FieldViolations != nil ||
			failure.HasRetryDelay || failure.RetryDelay != 0 {
			t.Errorf("AsError(%v) has details: %+v", tc.err, failure)
		}
	}
	if turnout.AsError(nil) != nil {
		t.Error("AsError(nil) is not nil")
	}
}

func TestChatBuildsAPlainRequest(t *testing.T) {
	request := turnout.Chat("Is this spam?",
		turnout.System("Answer yes or no."),
		turnout.RouteName("smart"),
		turnout.TaskType("classify"),
		turnout.PinnedModel("gpt-4o"),
		turnout.MaxOutputTokens(5),
		turnout.Labels(map[string]string{"team": "mail"}),
		turnout.RequestID("r-1"),
	)
	want := &turnoutv1.GenerateRequest{
		Messages: []*turnoutv1.Message{
			{Role: turnoutv1.Role_ROLE_SYSTEM, Content: []*turnoutv1.ContentPart{{Part: &turnoutv1.ContentPart_Text{Text: "Answer yes or no."}}}},
			{Role: turnoutv1.Role_ROLE_USER, Content: []*turnoutv1.ContentPart{{Part: &turnoutv1.ContentPart_Text{Text: "Is this spam?"}}}},
		},
		Hints:     &turnoutv1.RoutingHints{Route: "smart", TaskType: "classify", PinnedModel: "gpt-4o"},
		Params:    &turnoutv1.GenerationParams{MaxOutputTokens: proto.Int32(5)},
		Labels:    map[string]string{"team": "mail"},
		RequestId: "r-1",
	}
	if !proto.Equal(request, want) {
		t.Errorf("Chat(...) = %v\nwant %v", request, want)
	}
	bare := turnout.Chat("hi")
	if bare.Hints != nil || bare.Params != nil || bare.Labels != nil || len(bare.Messages) != 1 {
		t.Errorf("Chat(\"hi\") = %v, want one user message only", bare)
	}
	if got := turnout.NewMessage(turnoutv1.Role_ROLE_ASSISTANT, "a", "b"); len(got.Content) != 2 || got.Content[1].GetText() != "b" {
		t.Errorf("NewMessage = %v", got)
	}
}
