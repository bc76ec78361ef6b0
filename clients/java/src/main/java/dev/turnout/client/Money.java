package dev.turnout.client;

/**
 * Money for display. Costs are {@code long} nano-dollars (1 USD = 1,000,000,000) on the wire and in
 * this client, never a float, so sums are exact; this formats them without a float on the way.
 */
public final class Money {
  /** Nano-dollars in a US dollar. */
  public static final long NANOS_PER_USD = 1_000_000_000L;

  private Money() {}

  /**
   * Formats nano-dollars as US dollars: every significant digit, at least two decimals.
   *
   * <pre>{@code
   * Money.formatUsd(12345)      // "$0.000012345"
   * Money.formatUsd(1500000000) // "$1.50"
   * Money.formatUsd(-10000000)  // "-$0.01"
   * }</pre>
   *
   * @param usdNanos an amount in nano-dollars
   * @return the amount, e.g. {@code "$1.50"}
   */
  public static String formatUsd(long usdNanos) {
    // The magnitude as an unsigned long: exact for Long.MIN_VALUE too.
    long magnitude = usdNanos < 0 ? -usdNanos : usdNanos;
    long dollars = Long.divideUnsigned(magnitude, NANOS_PER_USD);
    long fraction = Long.remainderUnsigned(magnitude, NANOS_PER_USD);
    String decimals = Long.toString(fraction + NANOS_PER_USD).substring(1).replaceFirst("0+$", "");
    if (decimals.length() < 2) {
      decimals = (decimals + "00").substring(0, 2);
    }
    return (usdNanos < 0 ? "-$" : "$") + Long.toUnsignedString(dollars) + "." + decimals;
  }
}
