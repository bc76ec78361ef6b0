package turnout

import (
	"strconv"
	"strings"
)

// NanosPerUSD is the number of nano-dollars in a US dollar: costs on the wire are int64 nano-dollars.
const NanosPerUSD = 1_000_000_000

// FormatUSD formats nano-dollars for display without a float on the way: every significant digit,
// at least two decimals, so that a sum of costs prints exactly what it is.
//
//	FormatUSD(12345)      == "$0.000012345"
//	FormatUSD(1500000000) == "$1.50"
//	FormatUSD(-10000000)  == "-$0.01"
func FormatUSD(nanos int64) string {
	sign := ""
	magnitude := uint64(nanos)
	if nanos < 0 {
		sign = "-"
		magnitude = -magnitude // two's complement: exact for math.MinInt64 too
	}
	dollars, fraction := magnitude/NanosPerUSD, magnitude%NanosPerUSD
	decimals := strings.TrimRight(strconv.FormatUint(fraction+NanosPerUSD, 10)[1:], "0")
	if len(decimals) < 2 {
		decimals += strings.Repeat("0", 2-len(decimals))
	}
	return sign + "$" + strconv.FormatUint(dollars, 10) + "." + decimals
}
