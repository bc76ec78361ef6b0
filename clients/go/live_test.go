package turnout_test

// The client against a live sidecar (with the provider simulator): every call, a deadline, the
// errors. `make clients-test` at the repository root starts one and sets TURNOUT_ADDRESS and
// TURNOUT_UNIX_SOCKET.

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	turnout "github.com/turnout-router/turnout/clients/go"
	turnoutv1 "github.com/turnout-router/turnout/clients/go/turnout/v1"
)

func liveAddress(t *testing.T) string {
	t.Helper()
	address := os.Getenv("TURNOUT_ADDRESS")
	if address == "" {
		why := "no sidecar: TURNOUT_ADDRESS is unset (run `make clients-test` from the repository root)"
		if os.Getenv("TURNOUT_REQUIRE_LIVE") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return address
}

func live(t *testing.T) *turnout.Client {
	t.Helper()
	client, err := turnout.Dial(liveAddress(t), turnout.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// failure is err as a *turnout.Error, or a test failure.
func failure(t *testing.T, err error) *turnout.Error {
	t.Helper()
	var typed *turnout.Error
	if !errors.As(err, &typed) {
		t.Fatalf("got %T %v, want a *turnout.Error", err, err)
	}
	return typed
}

func fields(violations []turnout.FieldViolation) []string {
	var names []string
	for _, v := range violations {
		names = append(names, v.Field)
	}
	return names
}

func TestLiveGenerate(t *testing.T) {
	answer, err := live(t).Generate(t.Context(), turnout.Chat("Is this email spam? 'You won a prize!'",
		turnout.TaskType("classify"), turnout.RequestID("go-1")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(answer.GetOutput().GetText()) == "" || answer.GetRequestId() != "go-1" ||
		answer.GetModel() == "" || answer.GetProvider() == "" || answer.GetFinishReason() != turnoutv1.FinishReason_FINISH_REASON_STOP {
		t.Errorf("answer %v", answer)
	}
	if answer.GetUsage().GetInputTokens() <= 0 || answer.GetUsage().GetOutputTokens() <= 0 ||
		answer.GetCostUsdNanos() <= 0 || answer.GetTotalCostUsdNanos() < answer.GetCostUsdNanos() {
		t.Errorf("usage %v, cost %d, total %d", answer.GetUsage(), answer.GetCostUsdNanos(), answer.GetTotalCostUsdNanos())
	}
	// The decision's first choice is tried first; a hedge or a fallback may be the one that answers.
	var succeeded []string
	for _, attempt := range answer.GetAttempts() {
		if attempt.GetOutcome() == turnoutv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCESS {
			succeeded = append(succeeded, attempt.GetModel())
		}
	}
	if answer.GetAttempts()[0].GetModel() != answer.GetDecision().GetModel() || !slices.Equal(succeeded, []string{answer.GetModel()}) {
		t.Errorf("attempts %v for the decision %q and the model %q", answer.GetAttempts(), answer.GetDecision().GetModel(), answer.GetModel())
	}
}

func TestLiveStreamReadsDeltasToTheEndEvent(t *testing.T) {
	stream, err := live(t).GenerateStream(t.Context(), turnout.Chat("Write two sentences about rivers", turnout.MaxOutputTokens(40)))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	kinds, text := readStream(t, stream)
	end := stream.End()
	if !regexp.MustCompile(`^d+e$`).MatchString(kinds) || strings.TrimSpace(text) == "" || stream.Text() != text {
		t.Errorf("events %q (d: a delta, e: the end event), text %q, Text() %q", kinds, text, stream.Text())
	}
	if end.GetModel() == "" || end.GetCostUsdNanos() <= 0 || end.GetUsage().GetOutputTokens() <= 0 {
		t.Errorf("end %v", end)
	}
}

func TestLiveRouteExplainsItsDecision(t *testing.T) {
	reply, err := live(t).Route(t.Context(), turnout.Chat("Is this spam? win a prize"))
	if err != nil {
		t.Fatal(err)
	}
	decision := reply.GetDecision()
	if decision.GetModel() != "gpt-4o-mini" || decision.GetRoute() != "default" || decision.GetStrategy() != "rules>capability>sla" {
		t.Errorf("model %q, route %q, strategy %q", decision.GetModel(), decision.GetRoute(), decision.GetStrategy())
	}
	if len(decision.GetReasons()) == 0 || slices.Contains(decision.GetReasons(), "") {
		t.Errorf("reasons %q", decision.GetReasons())
	}
	var fallbacks []string
	for _, c := range decision.GetFallbacks() {
		fallbacks = append(fallbacks, c.GetModel())
	}
	if !slices.Equal(fallbacks, []string{"gemini-2.5-flash", "gpt-4o"}) || decision.GetEstimatedCostUsdNanos() <= 0 {
		t.Errorf("fallbacks %v, estimated cost %d", fallbacks, decision.GetEstimatedCostUsdNanos())
	}
}

func TestLiveListModels(t *testing.T) {
	models, err := live(t).ListModels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*turnoutv1.ModelInfo{}
	for _, m := range models {
		byName[m.GetName()] = m
	}
	for _, name := range []string{"gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "gemini-2.5-flash"} {
		if byName[name] == nil {
			t.Errorf("no %s among %d models", name, len(models))
		}
	}
	if byName["gpt-4o"].GetProvider() != "openai" || byName["gpt-4o"].GetInputPriceUsdNanosPerMtok() <= 0 {
		t.Errorf("gpt-4o: %v", byName["gpt-4o"])
	}
}

func TestLiveAnExpiredDeadlineIsATypedErrorWithoutDetails(t *testing.T) {
	noDetails := func(t *testing.T, err error) {
		t.Helper()
		f := failure(t, err)
		if f.Code != codes.DeadlineExceeded || f.Reason != "" || f.FieldViolations != nil || f.HasRetryDelay {
			t.Errorf("got %+v, want DEADLINE_EXCEEDED without details", f)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	_, err := live(t).Generate(ctx, turnout.Chat("Explain circuit breakers at length"))
	noDetails(t, err)

	// The client's default timeout, when the context has no deadline.
	client, err := turnout.Dial(liveAddress(t), turnout.WithTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Generate(t.Context(), turnout.Chat("Explain circuit breakers at length"))
	noDetails(t, err)
}

func TestLiveAnInvalidRequestNamesTheField(t *testing.T) {
	_, err := live(t).Generate(t.Context(), &turnoutv1.GenerateRequest{})
	f := failure(t, err)
	if f.Code != codes.InvalidArgument || f.Reason != "INVALID_REQUEST" || f.Domain != "turnout.dev" {
		t.Errorf("code %v, reason %q, domain %q", f.Code, f.Reason, f.Domain)
	}
	if !slices.Equal(fields(f.FieldViolations), []string{"messages"}) || !strings.Contains(f.FieldViolations[0].Description, "at least one message") {
		t.Errorf("field violations %+v", f.FieldViolations)
	}
}

func TestLiveAnUnknownModelIsNotFound(t *testing.T) {
	_, err := live(t).Generate(t.Context(), turnout.Chat("hi", turnout.PinnedModel("no-such-model")))
	f := failure(t, err)
	if f.Code != codes.NotFound || f.Reason != "MODEL_NOT_FOUND" || !strings.Contains(f.Message, "no-such-model") {
		t.Errorf("code %v, reason %q, message %q", f.Code, f.Reason, f.Message)
	}
	if !slices.Contains(fields(f.FieldViolations), "hints.pinned_model") {
		t.Errorf("field violations %+v", f.FieldViolations)
	}
}

func TestLiveNoCandidateIsAFailedPrecondition(t *testing.T) {
	request := turnout.Chat("hi")
	request.Hints = &turnoutv1.RoutingHints{AllowedModels: []string{"gpt-4o"}, DeniedModels: []string{"gpt-4o"}}
	_, err := live(t).Generate(t.Context(), request)
	f := failure(t, err)
	if f.Code != codes.FailedPrecondition || f.Reason != "NO_CANDIDATE" || !strings.Contains(f.Message, "denied by hints.denied_models") {
		t.Errorf("code %v, reason %q, message %q", f.Code, f.Reason, f.Message)
	}
}

func TestLiveAStreamErrorIsTypedToo(t *testing.T) {
	stream, err := live(t).GenerateStream(t.Context(), turnout.Chat("hi", turnout.PinnedModel("no-such-model")))
	if err == nil {
		defer stream.Close()
		_, err = stream.Recv()
	}
	if f := failure(t, err); f.Code != codes.NotFound || f.Reason != "MODEL_NOT_FOUND" {
		t.Errorf("code %v, reason %q", f.Code, f.Reason)
	}
}

func TestLiveTheUnixSocket(t *testing.T) {
	liveAddress(t)
	path := os.Getenv("TURNOUT_UNIX_SOCKET")
	if path == "" {
		t.Fatal("TURNOUT_ADDRESS is set but TURNOUT_UNIX_SOCKET is not")
	}
	client, err := turnout.Dial("unix://"+path, turnout.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	reply, err := client.Route(t.Context(), turnout.Chat("hello"))
	if err != nil || reply.GetDecision().GetModel() == "" {
		t.Errorf("Route over %s = %v, %v", path, reply, err)
	}
}
