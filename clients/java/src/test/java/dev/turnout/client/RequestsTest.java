package dev.turnout.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.turnout.v1.GenerateRequest;
import dev.turnout.v1.GenerateStreamRequest;
import dev.turnout.v1.Role;
import dev.turnout.v1.RouteRequest;
import org.junit.jupiter.api.Test;

class RequestsTest {
  @Test
  void chatIsOneUserMessageAndNothingElse() {
    GenerateRequest request = Requests.chat("Is this spam?");
    assertEquals(1, request.getMessagesCount());
    assertEquals(Role.ROLE_USER, request.getMessages(0).getRole());
    assertEquals("Is this spam?", request.getMessages(0).getContent(0).getText());
    assertFalse(request.hasHints());
    assertFalse(request.hasParams());
  }

  @Test
  void builderSetsTheSystemMessageHintsAndParams() {
    GenerateRequest request = Requests.chatBuilder("Summarize this.")
        .system("Be brief.")
        .route("smart")
        .taskType("summarize")
        .pinnedModel("gpt-4o-mini")
        .maxOutputTokens(64)
        .label("team", "search")
        .requestId("req-1")
        .generateRequest();
    assertEquals(2, request.getMessagesCount());
    assertEquals(Role.ROLE_SYSTEM, request.getMessages(0).getRole());
    assertEquals("Be brief.", request.getMessages(0).getContent(0).getText());
    assertEquals(Role.ROLE_USER, request.getMessages(1).getRole());
    assertEquals("Summarize this.", request.getMessages(1).getContent(0).getText());
    assertEquals("smart", request.getHints().getRoute());
    assertEquals("summarize", request.getHints().getTaskType());
    assertEquals("gpt-4o-mini", request.getHints().getPinnedModel());
    assertTrue(request.getParams().hasMaxOutputTokens());
    assertEquals(64, request.getParams().getMaxOutputTokens());
    assertEquals("search", request.getLabelsOrThrow("team"));
    assertEquals("req-1", request.getRequestId());
  }

  @Test
  void theThreeRequestsCarryTheSameFields() {
    Requests.ChatBuilder chat = Requests.chatBuilder("Hi").system("S").route("balanced").maxOutputTokens(8);
    GenerateRequest generate = chat.generateRequest();
    GenerateStreamRequest stream = chat.generateStreamRequest();
    RouteRequest route = chat.routeRequest();
    assertEquals(generate.getMessagesList(), stream.getMessagesList());
    assertEquals(generate.getMessagesList(), route.getMessagesList());
    assertEquals("balanced", stream.getHints().getRoute());
    assertEquals("balanced", route.getHints().getRoute());
    assertEquals(8, route.getParams().getMaxOutputTokens());
    assertEquals(generate.toByteString(), stream.toByteString());
    assertEquals(generate.toByteString(), route.toByteString());
  }

  @Test
  void builderCanBeReusedWithoutSharingState() {
    Requests.ChatBuilder chat = Requests.chatBuilder("Hi");
    GenerateRequest first = chat.generateRequest();
    GenerateRequest second = chat.taskType("classify").generateRequest();
    assertFalse(first.hasHints());
    assertEquals("classify", second.getHints().getTaskType());
    assertEquals(1, second.getMessagesCount());
  }

  @Test
  void messageIsOneTextPart() {
    var message = Requests.message(Role.ROLE_ASSISTANT, "Paris.");
    assertEquals(Role.ROLE_ASSISTANT, message.getRole());
    assertEquals(1, message.getContentCount());
    assertEquals("Paris.", message.getContent(0).getText());
  }
}
