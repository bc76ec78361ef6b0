package dev.turnout.client;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Parser;
import dev.turnout.v1.ContentPart;
import dev.turnout.v1.GenerateRequest;
import dev.turnout.v1.GenerateStreamRequest;
import dev.turnout.v1.Message;
import dev.turnout.v1.Role;
import dev.turnout.v1.RouteRequest;

/**
 * Request helpers, so that a plain chat call is one line:
 *
 * <pre>{@code
 * client.generate(Requests.chat("Is this spam?"));
 * client.generate(Requests.chatBuilder("Is this spam?").taskType("classify").generateRequest());
 * }</pre>
 *
 * <p>For anything more (tools, images, a JSON schema, other routing hints), build the generated
 * messages yourself, or start from a helper's result with {@code toBuilder()}.
 */
public final class Requests {
  private Requests() {}

  /**
   * A request of one user message, with the config's default route.
   *
   * @param text the user's message
   * @return the request
   */
  public static GenerateRequest chat(String text) {
    return chatBuilder(text).generateRequest();
  }

  /**
   * A builder of a chat request: one user message, after an optional system message, with the
   * common routing hints.
   *
   * @param text the user's message
   * @return a builder that makes any of the three request messages
   */
  public static ChatBuilder chatBuilder(String text) {
    return new ChatBuilder(text);
  }

  /**
   * A message of text.
   *
   * @param role who says it, e.g. {@link Role#ROLE_ASSISTANT} in a conversation's history
   * @param text what is said
   * @return the message
   */
  public static Message message(Role role, String text) {
    return Message.newBuilder().setRole(role).addContent(ContentPart.newBuilder().setText(text)).build();
  }

  /**
   * The same request for {@code GenerateStream}. The three request messages have the same fields
   * under the same numbers, so the conversion goes through the wire format and loses nothing.
   *
   * @param request a Generate request
   * @return the GenerateStream request with its fields
   */
  public static GenerateStreamRequest toStreamRequest(GenerateRequest request) {
    return convert(request, GenerateStreamRequest.parser());
  }

  /**
   * The same request for {@code Route} (see {@link #toStreamRequest}).
   *
   * @param request a Generate request
   * @return the Route request with its fields
   */
  public static RouteRequest toRouteRequest(GenerateRequest request) {
    return convert(request, RouteRequest.parser());
  }

  private static <T> T convert(GenerateRequest request, Parser<T> parser) {
    try {
      return parser.parseFrom(request.toByteString());
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("the request messages no longer share their fields", e);
    }
  }

  /** Builds a chat request; each setter returns the builder. */
  public static final class ChatBuilder {
    private final GenerateRequest.Builder request = GenerateRequest.newBuilder();
    private final String text;
    private String system;

    private ChatBuilder(String text) {
      this.text = text;
    }

    /**
     * Puts a system message before the user's.
     *
     * @param system the system prompt
     * @return this builder
     */
    public ChatBuilder system(String system) {
      this.system = system;
      return this;
    }

    /**
     * Names the route (routing strategy) to use instead of the config's default route.
     *
     * @param route e.g. {@code "support-chat"}
     * @return this builder
     */
    public ChatBuilder route(String route) {
      request.getHintsBuilder().setRoute(route);
      return this;
    }

    /**
     * Tells the route's rules what kind of task this is.
     *
     * @param taskType e.g. {@code "classify"}, {@code "extract"}, {@code "code"}
     * @return this builder
     */
    public ChatBuilder taskType(String taskType) {
      request.getHintsBuilder().setTaskType(taskType);
      return this;
    }

    /**
     * Asks for exactly this model, with no fallback to other models.
     *
     * @param model a model name of the registry
     * @return this builder
     */
    public ChatBuilder pinnedModel(String model) {
      request.getHintsBuilder().setPinnedModel(model);
      return this;
    }

    /**
     * Bounds the length of the answer.
     *
     * @param tokens the most output tokens
     * @return this builder
     */
    public ChatBuilder maxOutputTokens(int tokens) {
      request.getParamsBuilder().setMaxOutputTokens(tokens);
      return this;
    }

    /**
     * Adds a free key/value label, which routing rules may match on.
     *
     * @param key the label's name
     * @param value its value
     * @return this builder
     */
    public ChatBuilder label(String key, String value) {
      request.putLabels(key, value);
      return this;
    }

    /**
     * Sets the caller's id for the request, echoed back and logged.
     *
     * @param requestId the id
     * @return this builder
     */
    public ChatBuilder requestId(String requestId) {
      request.setRequestId(requestId);
      return this;
    }

    /**
     * The request for {@code Generate}.
     *
     * @return a new request
     */
    public GenerateRequest generateRequest() {
      GenerateRequest.Builder built = request.clone();
      if (system != null) {
        built.addMessages(message(Role.ROLE_SYSTEM, system));
      }
      return built.addMessages(message(Role.ROLE_USER, text)).build();
    }

    /**
     * The request for {@code GenerateStream}.
     *
     * @return a new request
     */
    public GenerateStreamRequest generateStreamRequest() {
      return toStreamRequest(generateRequest());
    }

    /**
     * The request for {@code Route}.
     *
     * @return a new request
     */
    public RouteRequest routeRequest() {
      return toRouteRequest(generateRequest());
    }
  }
}
