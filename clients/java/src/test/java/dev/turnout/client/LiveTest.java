package dev.turnout.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.turnout.v1.GenerateRequest;
import dev.turnout.v1.GenerateResponse;
import dev.turnout.v1.GenerateStreamResponse;
import dev.turnout.v1.ModelInfo;
import dev.turnout.v1.RouteResponse;
import dev.turnout.v1.RoutingHints;
import dev.turnout.v1.StreamEnd;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The client against a running sidecar (examples/turnout.yaml with the built-in simulator), at
 * TURNOUT_ADDRESS and TURNOUT_UNIX_SOCKET. `make clients-test` at the repository root starts one.
 * Without TURNOUT_ADDRESS these tests are skipped, or fail when TURNOUT_REQUIRE_LIVE=1.
 */
class LiveTest {
  private static final String HINT = "run 'make clients-test' from the repository root";
  private static final String SPAM = "Is this email spam? 'You won a prize!'";

  private static TurnoutClient client;

  private static String required(String variable) {
    String value = System.getenv(variable);
    if (value == null || value.isEmpty()) {
      String why = "no sidecar: " + variable + " is unset (" + HINT + ")";
      if ("1".equals(System.getenv("TURNOUT_REQUIRE_LIVE"))) {
        fail(why + ", and TURNOUT_REQUIRE_LIVE=1");
      }
      Assumptions.abort(why);
    }
    return value;
  }

  @BeforeAll
  static void connect() {
    client = TurnoutClient.builder(required("TURNOUT_ADDRESS")).timeout(Duration.ofSeconds(30)).build();
  }

  @AfterAll
  static void close() {
    if (client != null) {
      client.close();
    }
  }

  private static TurnoutException failure(Runnable call) {
    return assertThrows(TurnoutException.class, call::run);
  }

  @Test
  void generateAnswersWithModelUsageAndCost() {
    GenerateResponse answer = client.generate(Requests.chatBuilder(SPAM).taskType("classify").generateRequest());
    assertFalse(answer.getOutput().getText().isBlank(), "an answer");
    assertEquals(answer.getDecision().getModel(), answer.getModel());
    assertTrue(answer.getUsage().getInputTokens() > 0, "input tokens counted");
    assertTrue(answer.getCostUsdNanos() > 0, "a cost");
    assertTrue(answer.getAttemptsCount() >= 1, "the attempts");
    assertFalse(answer.getRequestId().isEmpty(), "a request id");
  }

  @Test
  void streamReadsDeltasThenOneEndEvent() {
    StringBuilder text = new StringBuilder();
    List<StreamEnd> ends = new ArrayList<>();
    try (ResponseStream stream = client.generateStream(Requests.chat("Write a haiku about the sea."))) {
      while (stream.hasNext()) {
        GenerateStreamResponse event = stream.next();
        assertTrue(ends.isEmpty(), "nothing after the end event");
        if (event.hasDelta()) {
          text.append(event.getDelta().getText());
        } else {
          assertTrue(event.hasEnd(), "a delta or the end event");
          ends.add(event.getEnd());
        }
      }
      assertThrows(NoSuchElementException.class, stream::next);
    }
    assertFalse(text.toString().isBlank(), "streamed text");
    assertEquals(1, ends.size(), "exactly one end event");
    StreamEnd end = ends.get(0);
    assertFalse(end.getModel().isEmpty(), "the model");
    assertTrue(end.getCostUsdNanos() > 0, "a cost");
    assertTrue(end.getUsage().getOutputTokens() > 0, "output tokens counted");
    assertEquals(end.getModel(), end.getDecision().getModel());
  }

  @Test
  void streamFailuresAreTurnoutExceptions() {
    GenerateRequest request = Requests.chatBuilder("hi").pinnedModel("no-such-model").generateRequest();
    try (ResponseStream stream = client.generateStream(request)) {
      TurnoutException e = failure(stream::hasNext);
      assertEquals(Status.Code.NOT_FOUND, e.getCode());
      assertEquals("MODEL_NOT_FOUND", e.getReason());
    }
  }

  @Test
  void closingAStreamEarlyCancelsIt() {
    ResponseStream stream = client.generateStream(Requests.chat("Write a long story about a lighthouse."));
    assertTrue(stream.hasNext());
    assertTrue(stream.next().hasDelta(), "the first event is a delta");
    stream.close();
    TurnoutException e = failure(() -> {
      while (stream.hasNext()) {
        stream.next();
      }
    });
    assertEquals(Status.Code.CANCELLED, e.getCode());
  }

  @Test
  void routeExplainsTheDecision() {
    RouteResponse route = client.route(Requests.chatBuilder("Is this spam? win a prize").routeRequest());
    assertEquals("gpt-4o-mini", route.getDecision().getModel());
    assertEquals("rules>capability>sla", route.getDecision().getStrategy());
    assertFalse(route.getDecision().getReasonsList().isEmpty(), "reasons");
    // The same through the GenerateRequest overload.
    assertEquals("gpt-4o-mini", client.route(Requests.chat("Is this spam? win a prize")).getDecision().getModel());
  }

  @Test
  void listModelsReturnsTheRegistry() {
    List<String> names = client.listModels().stream().map(ModelInfo::getName).collect(Collectors.toList());
    assertTrue(names.containsAll(List.of("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "gemini-2.5-flash")), names::toString);
  }

  @Test
  void anExpiredDeadlineIsDeadlineExceededWithoutDetails() {
    TurnoutException e = failure(() -> client.withTimeout(Duration.ofMillis(1)).generate(Requests.chat(SPAM)));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getCode());
    assertEquals("", e.getReason());
    assertEquals("", e.getDomain());
    assertTrue(e.getFieldViolations().isEmpty());
    assertEquals(Optional.empty(), e.getRetryDelay());
    assertInstanceOf(StatusRuntimeException.class, e.getCause());
  }

  @Test
  void anInvalidRequestNamesTheField() {
    TurnoutException e = failure(() -> client.generate(GenerateRequest.getDefaultInstance()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertEquals("INVALID_REQUEST", e.getReason());
    assertEquals("turnout.dev", e.getDomain());
    assertTrue(e.getFieldViolations().stream().anyMatch(v -> v.field().equals("messages")), e.getFieldViolations()::toString);
  }

  @Test
  void anUnknownModelIsNotFound() {
    TurnoutException e = failure(() -> client.generate(Requests.chatBuilder("hi").pinnedModel("no-such-model").generateRequest()));
    assertEquals(Status.Code.NOT_FOUND, e.getCode());
    assertEquals("MODEL_NOT_FOUND", e.getReason());
    assertEquals("turnout.dev", e.getDomain());
    assertTrue(
        e.getFieldViolations().stream().anyMatch(v -> v.field().equals("hints.pinned_model") && !v.description().isEmpty()),
        e.getFieldViolations()::toString);
    assertTrue(e.getMessage().startsWith("NOT_FOUND MODEL_NOT_FOUND: "), e.getMessage());
  }

  @Test
  void noCandidateIsAFailedPrecondition() {
    GenerateRequest request = Requests.chat("hi").toBuilder()
        .setHints(RoutingHints.newBuilder().addAllowedModels("gpt-4o").addDeniedModels("gpt-4o"))
        .build();
    TurnoutException e = failure(() -> client.generate(request));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getCode());
    assertEquals("NO_CANDIDATE", e.getReason());
    assertEquals("turnout.dev", e.getDomain());
  }

  @Test
  void connectsOverTheUnixSocketWithoutNettyWarnings() {
    String socket = required("TURNOUT_UNIX_SOCKET");
    Logger netty = Logger.getLogger("io.grpc.netty.shaded.io.netty");
    List<String> warnings = new CopyOnWriteArrayList<>();
    Handler capture = new Handler() {
      @Override
      public void publish(LogRecord record) {
        if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
          warnings.add(record.getLoggerName() + ": " + record.getMessage());
        }
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    netty.addHandler(capture);
    try (TurnoutClient unix = TurnoutClient.connect("unix://" + socket)) {
      RouteResponse route = unix.withTimeout(Duration.ofSeconds(10)).route(Requests.chat("Is this spam? win a prize"));
      assertEquals("gpt-4o-mini", route.getDecision().getModel());
    } finally {
      netty.removeHandler(capture);
    }
    assertEquals(List.of(), warnings);
  }
}
