package dev.turnout.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Every failed call: the gRPC status and what the sidecar said about it, decoded from the {@code
 * google.rpc.Status} details (the {@code grpc-status-details-bin} trailer).
 *
 * <p>{@link #getReason()}, {@link #getDomain()} and {@link #getMetadata()} come from {@code
 * google.rpc.ErrorInfo} (domain {@code turnout.dev}; reasons such as {@code INVALID_REQUEST}, {@code
 * MODEL_NOT_FOUND}, {@code ROUTE_NOT_FOUND}, {@code NO_CANDIDATE}, {@code ALL_CANDIDATES_FAILED}),
 * {@link #getFieldViolations()} from {@code google.rpc.BadRequest}, {@link #getRetryDelay()} from
 * {@code google.rpc.RetryInfo}. A deadline that expires on the client side has code {@code
 * DEADLINE_EXCEEDED} and none of these. The gRPC exception it was decoded from is its cause.
 */
public final class TurnoutException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /**
   * One invalid field of a request.
   *
   * @param field the field's path in the request, e.g. {@code hints.pinned_model}
   * @param description what is wrong with it
   */
  public record FieldViolation(String field, String description) implements Serializable {}

  private final Status.Code code;
  private final String statusMessage;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;
  private final List<FieldViolation> fieldViolations;
  private final Duration retryDelay;

  private TurnoutException(
      Status.Code code, String statusMessage, com.google.rpc.Status details, Throwable cause) {
    super(null, cause);
    this.code = code;
    this.statusMessage = statusMessage;
    ErrorInfo info = null;
    List<FieldViolation> violations = new ArrayList<>();
    Duration delay = null;
    for (Any detail : details == null ? List.<Any>of() : details.getDetailsList()) {
      // A detail that does not decode is dropped: the code and the message still say what failed.
      try {
        if (detail.is(ErrorInfo.class)) {
          info = detail.unpack(ErrorInfo.class);
        } else if (detail.is(BadRequest.class)) {
          for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
            violations.add(new FieldViolation(v.getField(), v.getDescription()));
          }
        } else if (detail.is(RetryInfo.class)) {
          RetryInfo retry = detail.unpack(RetryInfo.class);
          if (retry.hasRetryDelay()) {
            delay = Duration.ofSeconds(retry.getRetryDelay().getSeconds(), retry.getRetryDelay().getNanos());
          }
        }
      } catch (InvalidProtocolBufferException undecodable) {
        addSuppressed(undecodable);
      }
    }
    this.reason = info == null ? "" : info.getReason();
    this.domain = info == null ? "" : info.getDomain();
    this.metadata = info == null ? Map.of() : Map.copyOf(info.getMetadataMap());
    this.fieldViolations = List.copyOf(violations);
    this.retryDelay = delay;
  }

  /**
   * Decodes any failure of a call: a gRPC {@code StatusRuntimeException} or {@code StatusException}
   * (with its details), or anything else (as {@code UNKNOWN}, or the status gRPC would give it). A
   * {@code TurnoutException} is returned unchanged. The client's methods already throw {@code
   * TurnoutException}; this is for calls made with the generated stubs directly.
   *
   * @param failure what a call threw
   * @return the decoded exception, with {@code failure} as its cause
   */
  public static TurnoutException from(Throwable failure) {
    if (failure instanceof TurnoutException done) {
      return done;
    }
    Status status = Status.fromThrowable(failure);
    com.google.rpc.Status details;
    try {
      details = StatusProto.fromThrowable(failure);
    } catch (RuntimeException undecodable) { // a trailer that is not a google.rpc.Status
      details = null;
    }
    String message = status.getDescription() != null ? status.getDescription() : "";
    return new TurnoutException(status.getCode(), message, details, failure);
  }

  /**
   * Decodes a {@code google.rpc.Status} message, e.g. one read from elsewhere than a call.
   *
   * @param status the status with its details
   * @return the decoded exception, without a cause
   */
  public static TurnoutException fromStatus(com.google.rpc.Status status) {
    return new TurnoutException(Status.fromCodeValue(status.getCode()).getCode(), status.getMessage(), status, null);
  }

  /** Reads like {@code NOT_FOUND MODEL_NOT_FOUND: pinned model 'x' is not in the registry}. */
  @Override
  public String getMessage() {
    return code.name() + (reason.isEmpty() ? "" : " " + reason) + ": " + statusMessage;
  }

  /**
   * The gRPC status code.
   *
   * @return e.g. {@code NOT_FOUND}
   */
  public Status.Code getCode() {
    return code;
  }

  /**
   * The status message, as the server (or gRPC, for a local failure) wrote it.
   *
   * @return the message, empty when there is none
   */
  public String getStatusMessage() {
    return statusMessage;
  }

  /**
   * The {@code google.rpc.ErrorInfo} reason, a stable UPPER_SNAKE name.
   *
   * @return e.g. {@code MODEL_NOT_FOUND}; empty without an ErrorInfo
   */
  public String getReason() {
    return reason;
  }

  /**
   * The {@code google.rpc.ErrorInfo} domain.
   *
   * @return {@code turnout.dev} for the sidecar's errors; empty without an ErrorInfo
   */
  public String getDomain() {
    return domain;
  }

  /**
   * The {@code google.rpc.ErrorInfo} metadata.
   *
   * @return an unmodifiable map, empty without an ErrorInfo
   */
  public Map<String, String> getMetadata() {
    return metadata;
  }

  /**
   * The {@code google.rpc.BadRequest} field violations: each invalid field of the request.
   *
   * @return an unmodifiable list, empty when the request was not at fault
   */
  public List<FieldViolation> getFieldViolations() {
    return fieldViolations;
  }

  /**
   * The {@code google.rpc.RetryInfo} delay: present when the sidecar says that trying again after
   * it may succeed. The client never retries by itself.
   *
   * @return the delay, or empty
   */
  public Optional<Duration> getRetryDelay() {
    return Optional.ofNullable(retryDelay);
  }
}
