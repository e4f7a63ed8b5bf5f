// Package ddblimit holds DynamoDB's limits on what an item can hold, in one
// place for every part of the pipeline that writes DynamoDB: the decoder
// refuses source values the tables cannot store, the sink checks what it
// writes, and the catalogue loader checks product prices.
//
// Number limits, from "Supported data types and naming rules in Amazon
// DynamoDB" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html):
// up to 38 digits of precision, positive numbers from 1E-130 to
// 9.9999999999999999999999999999999999999E+125, negative numbers the same
// range with a minus sign; leading and trailing zeros are trimmed.
//
// Item size, from "DynamoDB item sizes and formats"
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
// and the 400 KB item limit in "Constraints in Amazon DynamoDB"
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html),
// where 1 KB is 1024 bytes: an item is the sum of its attribute names' and
// values' lengths.
package ddblimit

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxNumberDigits is the precision of DynamoDB's Number type: significant
// digits, from the first to the last non-zero digit.
const MaxNumberDigits = 38

// MinNumberExponent and MaxNumberExponent bound the decimal exponent of a
// non-zero number's leading digit: 1E-130 is the smallest magnitude,
// 9.99…E+125 the largest.
const (
	MinNumberExponent = -130
	MaxNumberExponent = 125
)

// MaxItemSize is the largest item this pipeline writes, attribute names
// included. DynamoDB's limit is 400 KB of 1024 bytes (409,600 bytes);
// 400,000 keeps a margin for the size formula, which the documentation
// calls approximate for numbers.
const MaxItemSize = 400_000

// CheckNumber reports why the decimal text s (an optional sign, digits, an
// optional fraction: what order.Decimal renders) cannot be stored as a
// DynamoDB Number, or returns nil. The message starts with s, so callers
// prefix it with the attribute's name.
func CheckNumber(s string) error {
	digits, exp, ok := significant(s)
	switch {
	case !ok:
		return fmt.Errorf("%s is not a decimal number", s)
	case digits == 0:
		return nil
	case digits > MaxNumberDigits:
		return fmt.Errorf("%s has more than %d significant digits (%d), more than a DynamoDB number holds", s, MaxNumberDigits, digits)
	case exp > MaxNumberExponent:
		return fmt.Errorf("%s is beyond the largest DynamoDB number (9.99…E+%d)", s, MaxNumberExponent)
	case exp < MinNumberExponent:
		return fmt.Errorf("%s is below the smallest DynamoDB number (1E%d)", s, MinNumberExponent)
	}
	return nil
}

// SignificantDigits counts the digits of decimal text from its first to its
// last non-zero digit ("0.001" has 1, "120.5" has 4, "1000" has 1): what
// the 38-digit precision counts and what a number's size depends on.
func SignificantDigits(s string) int {
	n, _, _ := significant(s)
	return n
}

// significant returns the significant digits of plain decimal text and the
// decimal exponent of the leading one ("120.5" → 4, 2; "0.001" → 1, -3).
func significant(s string) (digits, exp int, ok bool) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	point := len(s) // index of the decimal point, or the end
	first, last := -1, -1
	n := 0 // digits seen
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && point == len(s):
			point = i
			continue
		case c < '0' || c > '9':
			return 0, 0, false
		}
		if c != '0' {
			if first < 0 {
				first = n
			}
			last = n
		}
		n++
	}
	if n == 0 {
		return 0, 0, false
	}
	if first < 0 {
		return 0, 0, true
	}
	intDigits := min(point, len(s)) // digits before the point
	return last - first + 1, intDigits - 1 - first, true
}

// NumberSize is the size a Number attribute takes in an item: its name's
// bytes, one byte per two significant digits, and one byte.
func NumberSize(name, text string) int {
	return len(name) + (SignificantDigits(text)+1)/2 + 1
}

// StringSize is the size a String attribute takes: its name's and its
// value's UTF-8 bytes (Go strings are those bytes).
func StringSize(name, value string) int { return len(name) + len(value) }

// ItemSize is the size of an item as DynamoDB counts it against
// MaxItemSize.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

// valueSize is an attribute value's size without its name.
func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return NumberSize("", v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		return sumSizes(v.Value, func(s string) int { return len(s) })
	case *types.AttributeValueMemberNS:
		return sumSizes(v.Value, func(s string) int { return NumberSize("", s) })
	case *types.AttributeValueMemberBS:
		return sumSizes(v.Value, func(b []byte) int { return len(b) })
	case *types.AttributeValueMemberL:
		n := 3 // a list or map takes 3 bytes, and 1 more per element
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// CheckItem reports an item DynamoDB would refuse for its size.
func CheckItem(item map[string]types.AttributeValue) error {
	if n := ItemSize(item); n > MaxItemSize {
		return fmt.Errorf("item of %d bytes is larger than DynamoDB's item limit (%d bytes)", n, MaxItemSize)
	}
	return nil
}

// sumSizes adds the sizes of a set's elements.
func sumSizes[E any](set []E, size func(E) int) int {
	n := 0
	for _, e := range set {
		n += size(e)
	}
	return n
}
