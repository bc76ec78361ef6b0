// Money on the wire is an integer of nano-dollars (1 USD = 1,000,000,000); this formats it exactly.

const NANOS_PER_USD = 1_000_000_000n;

/**
 * Nano-dollars as dollars for display, with no float on the way: every significant digit, at least
 * two decimals. `12345n` -> `"$0.000012345"`, `1500000000n` -> `"$1.50"`, `-10000000n` -> `"-$0.01"`.
 */
export function formatUsd(nanos: bigint): string {
  if (typeof nanos !== "bigint") {
    throw new TypeError(`formatUsd takes a bigint of nano-dollars, not ${typeof nanos}`);
  }
  const sign = nanos < 0n ? "-" : "";
  const magnitude = nanos < 0n ? -nanos : nanos;
  const dollars = magnitude / NANOS_PER_USD;
  const fraction = (magnitude % NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${sign}$${dollars}.${fraction}`;
}
