package turnout

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	turnoutv1 "github.com/turnout-router/turnout/clients/go/turnout/v1"
)

// Request is any of the three request messages: *turnoutv1.GenerateRequest,
// *turnoutv1.GenerateStreamRequest or *turnoutv1.RouteRequest. They have the same fields under the
// same numbers, so Route, Generate and GenerateStream each take any of them (Chat builds a
// GenerateRequest, and the same value serves all three calls).
type Request interface {
	proto.Message
	GetMessages() []*turnoutv1.Message
	GetTools() []*turnoutv1.Tool
	GetToolChoice() *turnoutv1.ToolChoice
	GetResponseFormat() *turnoutv1.ResponseFormat
	GetParams() *turnoutv1.GenerationParams
	GetHints() *turnoutv1.RoutingHints
	GetRequestId() string
	GetTenantId() string
	GetLabels() map[string]string
}

// ChatOption sets one optional part of a Chat request.
type ChatOption func(*turnoutv1.GenerateRequest)

// Chat is a request of one user message, after an optional system message:
//
//	client.Generate(ctx, turnout.Chat("Is this spam?", turnout.TaskType("classify")))
//
// For anything more (tools, images, a JSON schema, other routing hints), change the returned
// message or build one yourself: it is the generated turnoutv1.GenerateRequest.
func Chat(text string, opts ...ChatOption) *turnoutv1.GenerateRequest {
	request := &turnoutv1.GenerateRequest{Messages: []*turnoutv1.Message{NewMessage(turnoutv1.Role_ROLE_USER, text)}}
	for _, opt := range opts {
		opt(request)
	}
	return request
}

// System puts a system message before the user's.
func System(text string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) {
		r.Messages = append([]*turnoutv1.Message{NewMessage(turnoutv1.Role_ROLE_SYSTEM, text)}, r.Messages...)
	}
}

// RouteName names the route (routing strategy) to use instead of the config's default route.
func RouteName(route string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) { hints(r).Route = route }
}

// TaskType tells the route's rules what kind of task this is, e.g. "classify", "extract", "code".
func TaskType(taskType string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) { hints(r).TaskType = taskType }
}

// PinnedModel asks for exactly this model, with no fallback to other models.
func PinnedModel(model string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) { hints(r).PinnedModel = model }
}

// MaxOutputTokens bounds the length of the answer.
func MaxOutputTokens(tokens int32) ChatOption {
	return func(r *turnoutv1.GenerateRequest) {
		if r.Params == nil {
			r.Params = &turnoutv1.GenerationParams{}
		}
		r.Params.MaxOutputTokens = &tokens
	}
}

// Labels adds free key/value labels, which routing rules may match on.
func Labels(labels map[string]string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) {
		if r.Labels == nil {
			r.Labels = make(map[string]string, len(labels))
		}
		for k, v := range labels {
			r.Labels[k] = v
		}
	}
}

// RequestID sets the caller's id for the request, echoed back and logged.
func RequestID(id string) ChatOption {
	return func(r *turnoutv1.GenerateRequest) { r.RequestId = id }
}

// NewMessage is a message of text parts, e.g. NewMessage(turnoutv1.Role_ROLE_ASSISTANT, "Paris.").
func NewMessage(role turnoutv1.Role, texts ...string) *turnoutv1.Message {
	content := make([]*turnoutv1.ContentPart, len(texts))
	for i, text := range texts {
		content[i] = &turnoutv1.ContentPart{Part: &turnoutv1.ContentPart_Text{Text: text}}
	}
	return &turnoutv1.Message{Role: role, Content: content}
}

func hints(r *turnoutv1.GenerateRequest) *turnoutv1.RoutingHints {
	if r.Hints == nil {
		r.Hints = &turnoutv1.RoutingHints{}
	}
	return r.Hints
}

// convert returns request as a *T. When it is another of the three request messages, its bytes are
// decoded as a T: the messages share their fields and numbers, so nothing is lost (unknown fields
// included), and the caller's message is left untouched.
func convert[T any, P interface {
	*T
	proto.Message
}](request Request) (P, error) {
	if same, ok := request.(P); ok {
		return same, nil
	}
	if request == nil {
		return nil, fromStatus(status.New(codes.InvalidArgument, "no request"))
	}
	wire, err := proto.Marshal(request)
	if err != nil {
		return nil, fromStatus(status.Newf(codes.Internal, "encoding the request: %v", err))
	}
	converted := P(new(T))
	if err := proto.Unmarshal(wire, converted); err != nil {
		return nil, fromStatus(status.Newf(codes.Internal, "decoding the request as %T: %v", converted, err))
	}
	return converted, nil
}
