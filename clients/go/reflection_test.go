package turnout_test

// grpc-go's reflection client speaks only grpc.reflection.v1: the sidecar must answer it (issue 21;
// grpcio-reflection serves only v1alpha, so the sidecar serves v1 itself).

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

func TestLiveReflectionV1ListsAndDescribesTheService(t *testing.T) {
	conn, err := grpc.NewClient(liveAddress(t), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(request *reflectionv1.ServerReflectionRequest) *reflectionv1.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(request); err != nil {
			t.Fatal(err)
		}
		response, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return response
	}

	listed := ask(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{},
	})
	var names []string
	for _, service := range listed.GetListServicesResponse().GetService() {
		names = append(names, service.GetName())
	}
	for _, want := range []string{"turnout.v1.RouterService", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}

	described := ask(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: "turnout.v1.RouterService",
		},
	})
	var methods []string
	for _, raw := range described.GetFileDescriptorResponse().GetFileDescriptorProto() {
		file := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, file); err != nil {
			t.Fatal(err)
		}
		if file.GetName() != "turnout/v1/router.proto" {
			continue
		}
		for _, method := range file.GetService()[0].GetMethod() {
			methods = append(methods, method.GetName())
		}
	}
	if want := []string{"Route", "Generate", "GenerateStream", "ListModels", "GetBudgets"}; !slices.Equal(methods, want) {
		t.Errorf("RouterService's methods: %v, want %v", methods, want)
	}
}
