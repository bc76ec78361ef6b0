package turnout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is every failed call: the gRPC status and what the sidecar said about it, decoded from the
// google.rpc.Status details (the grpc-status-details-bin trailer). Match it with errors.As:
//
//	var failure *turnout.Error
//	if errors.As(err, &failure) && failure.Reason == "MODEL_NOT_FOUND" { ... }
//
// A deadline that expires on the client side has Code codes.DeadlineExceeded and no details.
type Error struct {
	// Code is the gRPC status code, Message the status message.
	Code    codes.Code
	Message string
	// Reason, Domain and Metadata come from google.rpc.ErrorInfo: domain "turnout.dev", reasons such
	// as INVALID_REQUEST, MODEL_NOT_FOUND, ROUTE_NOT_FOUND, NO_CANDIDATE, ALL_CANDIDATES_FAILED.
	Reason   string
	Domain   string
	Metadata map[string]string
	// FieldViolations come from google.rpc.BadRequest: each invalid field of the request.
	FieldViolations []FieldViolation
	// RetryDelay comes from google.rpc.RetryInfo, when the sidecar says that trying again after it
	// may succeed; HasRetryDelay tells a zero delay from none.
	RetryDelay    time.Duration
	HasRetryDelay bool

	status *status.Status
}

// FieldViolation is one invalid field of a request: its path (e.g. "hints.pinned_model") and what
// is wrong with it.
type FieldViolation struct {
	Field       string
	Description string
}

// Error reads like "turnout: NOT_FOUND MODEL_NOT_FOUND: unknown model 'x'".
func (e *Error) Error() string {
	reason := ""
	if e.Reason != "" {
		reason = " " + e.Reason
	}
	return fmt.Sprintf("turnout: %s%s: %s", codeName(e.Code), reason, e.Message)
}

// Unwrap returns the gRPC status error, so status.FromError and status.Code see through an *Error.
func (e *Error) Unwrap() error { return e.status.Err() }

// GRPCStatus is the status the error was decoded from, details included.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// AsError decodes any error of a call into an *Error: a gRPC status error (with its details), a
// context error (as DEADLINE_EXCEEDED or CANCELLED), or anything else (as UNKNOWN). It returns nil
// for nil, and an *Error unchanged. The client's methods already return *Error; this is for errors
// from the generated RouterServiceClient used directly.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var done *Error
	if errors.As(err, &done) {
		return done
	}
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			st = status.FromContextError(err)
		} else {
			st = status.New(codes.Unknown, err.Error())
		}
	}
	return fromStatus(st)
}

func fromStatus(st *status.Status) *Error {
	failure := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			failure.Reason, failure.Domain, failure.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				failure.FieldViolations = append(failure.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				failure.RetryDelay, failure.HasRetryDelay = d.GetRetryDelay().AsDuration(), true
			}
		}
	}
	return failure
}

// codeName is the canonical UPPER_SNAKE name of a status code, as the other clients print it.
func codeName(code codes.Code) string {
	if int(code) < len(codeNames) {
		return codeNames[code]
	}
	return code.String()
}

var codeNames = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}
