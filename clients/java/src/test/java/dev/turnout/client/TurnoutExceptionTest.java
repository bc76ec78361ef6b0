package dev.turnout.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TurnoutExceptionTest {
  private static com.google.rpc.Status unavailable() {
    return com.google.rpc.Status.newBuilder()
        .setCode(Code.UNAVAILABLE_VALUE)
        .setMessage("every candidate failed")
        .addDetails(Any.pack(ErrorInfo.newBuilder()
            .setReason("ALL_CANDIDATES_FAILED")
            .setDomain("turnout.dev")
            .putMetadata("route", "default")
            .build()))
        .addDetails(Any.pack(BadRequest.newBuilder()
            .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                .setField("hints.pinned_model").setDescription("not in the registry"))
            .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                .setField("messages").setDescription("at least one message is required"))
            .build()))
        .addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(2).setNanos(500_000_000))
            .build()))
        .build();
  }

  @Test
  void decodesErrorInfoBadRequestAndRetryInfoFromTheTrailer() {
    StatusRuntimeException grpc = StatusProto.toStatusRuntimeException(unavailable());
    TurnoutException e = TurnoutException.from(grpc);
    assertEquals(Status.Code.UNAVAILABLE, e.getCode());
    assertEquals("every candidate failed", e.getStatusMessage());
    assertEquals("ALL_CANDIDATES_FAILED", e.getReason());
    assertEquals("turnout.dev", e.getDomain());
    assertEquals(Map.of("route", "default"), e.getMetadata());
    assertEquals(
        List.of(
            new TurnoutException.FieldViolation("hints.pinned_model", "not in the registry"),
            new TurnoutException.FieldViolation("messages", "at least one message is required")),
        e.getFieldViolations());
    assertEquals(Optional.of(Duration.ofMillis(2500)), e.getRetryDelay());
    assertEquals("UNAVAILABLE ALL_CANDIDATES_FAILED: every candidate failed", e.getMessage());
    assertSame(grpc, e.getCause());
  }

  @Test
  void decodesAStatusMessage() {
    TurnoutException e = TurnoutException.fromStatus(unavailable());
    assertEquals(Status.Code.UNAVAILABLE, e.getCode());
    assertEquals("ALL_CANDIDATES_FAILED", e.getReason());
    assertEquals(2, e.getFieldViolations().size());
    assertEquals(Optional.of(Duration.ofMillis(2500)), e.getRetryDelay());
  }

  @Test
  void aStatusWithoutDetailsHasOnlyItsCodeAndMessage() {
    TurnoutException e = TurnoutException.from(
        Status.DEADLINE_EXCEEDED.withDescription("deadline exceeded after 0.001s").asRuntimeException());
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getCode());
    assertEquals("deadline exceeded after 0.001s", e.getStatusMessage());
    assertEquals("", e.getReason());
    assertEquals("", e.getDomain());
    assertTrue(e.getMetadata().isEmpty());
    assertTrue(e.getFieldViolations().isEmpty());
    assertEquals(Optional.empty(), e.getRetryDelay());
    assertEquals("DEADLINE_EXCEEDED: deadline exceeded after 0.001s", e.getMessage());
  }

  @Test
  void undecodableDetailsKeepTheStatus() {
    Metadata trailers = new Metadata();
    trailers.put(Metadata.Key.of("grpc-status-details-bin", Metadata.BINARY_BYTE_MARSHALLER), new byte[] {(byte) 0xff, 1});
    TurnoutException garbled = TurnoutException.from(Status.INTERNAL.withDescription("boom").asRuntimeException(trailers));
    assertEquals(Status.Code.INTERNAL, garbled.getCode());
    assertEquals("boom", garbled.getStatusMessage());
    assertEquals("", garbled.getReason());

    com.google.rpc.Status badAny = com.google.rpc.Status.newBuilder()
        .setCode(Code.NOT_FOUND_VALUE)
        .setMessage("no such model")
        .addDetails(Any.newBuilder()
            .setTypeUrl("type.googleapis.com/google.rpc.ErrorInfo")
            .setValue(ByteString.copyFrom(new byte[] {(byte) 0xff})))
        .build();
    TurnoutException e = TurnoutException.fromStatus(badAny);
    assertEquals(Status.Code.NOT_FOUND, e.getCode());
    assertEquals("", e.getReason());
    assertEquals(1, e.getSuppressed().length);
  }

  @Test
  void otherFailuresAreUnknownAndATurnoutExceptionIsKept() {
    IllegalStateException cause = new IllegalStateException("oops");
    TurnoutException e = TurnoutException.from(cause);
    assertEquals(Status.Code.UNKNOWN, e.getCode());
    assertSame(cause, e.getCause());
    assertSame(e, TurnoutException.from(e));
  }
}
