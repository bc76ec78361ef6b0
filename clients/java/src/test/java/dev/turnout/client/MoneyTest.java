package dev.turnout.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MoneyTest {
  // The vectors every Turnout client formats identically.
  @ParameterizedTest
  @CsvSource({
    "0, $0.00",
    "1, $0.000000001",
    "12345, $0.000012345",
    "309300, $0.0003093",
    "1500000000, $1.50",
    "1000000000, $1.00",
    "123456789012, $123.456789012",
    "-10000000, -$0.01",
    "10, $0.00000001",
    "100000000, $0.10",
    "9223372036854775807, $9223372036.854775807",
    "-9223372036854775808, -$9223372036.854775808",
  })
  void formatsNanoDollarsExactly(long nanos, String expected) {
    assertEquals(expected, Money.formatUsd(nanos));
  }
}
