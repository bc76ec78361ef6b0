// Command example asks Turnout for one answer: the model it chose and what the answer cost.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	turnout "github.com/turnout-router/turnout/clients/go"
)

func main() {
	client, err := turnout.Dial(cmp.Or(os.Getenv("TURNOUT_ADDRESS"), "127.0.0.1:50051"), turnout.WithTimeout(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	answer, err := client.Generate(context.Background(), turnout.Chat("Is this email spam? 'You won a prize!'", turnout.TaskType("classify")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer.GetOutput().GetText())
	fmt.Printf("model: %s, cost: %s\n", answer.GetModel(), turnout.FormatUSD(answer.GetCostUsdNanos()))
}
