// Ask Turnout for one answer: the model it chose and what the answer cost.
import dev.turnout.client.Money;
import dev.turnout.client.Requests;
import dev.turnout.client.TurnoutClient;
import dev.turnout.v1.GenerateResponse;
import java.time.Duration;
import java.util.Objects;

public class Chat {
  public static void main(String[] args) {
    String address = Objects.requireNonNullElse(System.getenv("TURNOUT_ADDRESS"), "127.0.0.1:50051");
    try (TurnoutClient client = TurnoutClient.builder(address).timeout(Duration.ofSeconds(30)).build()) {
      GenerateResponse answer = client.generate(
          Requests.chatBuilder("Is this email spam? 'You won a prize!'").taskType("classify").generateRequest());
      System.out.println(answer.getOutput().getText());
      System.out.println("model: " + answer.getModel() + ", cost: " + Money.formatUsd(answer.getCostUsdNanos()));
    }
  }
}
