package cdc

import (
	"fmt"
	"math"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// columnReader turns scanned column values into typed fields. It keeps the
// first error, so a record's columns read as a flat list of assignments;
// after an error every method returns a zero value.
type columnReader struct {
	// cols is a copy: a pointer to the record's array would make the
	// record escape to the heap along with err (escape analysis does not
	// tell fields apart), costing an 800-byte allocation per record.
	cols [numColumns]jsonscan.Token
	err  error
}

func (d *columnReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// present returns the column's value unless it is absent or null.
func (d *columnReader) present(c column) (jsonscan.Token, bool) {
	t := d.cols[c]
	return t, d.err == nil && !t.IsNull()
}

// numberText returns the text of a column given as a JSON number or as a
// string holding one (DMS writes either, depending on the task settings);
// what names the expected value in the error for any other kind.
func (d *columnReader) numberText(c column, what string) (jsonscan.Token, []byte, bool) {
	t, ok := d.present(c)
	if !ok {
		return t, nil, false
	}
	switch t.Kind {
	case jsonscan.Number:
		return t, t.Raw, true
	case jsonscan.String:
		return t, trimSpace(t.Bytes()), true
	}
	d.fail("data.%s: expected %s, got %s", columnNames[c], what, t.Kind)
	return t, nil, false
}

// required reads a key column, which must be present.
func (d *columnReader) required(c column) int64 {
	if d.cols[c].IsNull() {
		d.fail("data.%s is missing", columnNames[c])
		return 0
	}
	if v := d.integer(c); v != nil {
		return *v
	}
	return 0
}

// integer reads an integer given as a JSON number or a string holding one.
// Exponent forms are fine when the value is integral ("1.5e3"); nothing goes
// through float64, so large BIGINTs in DMS's scientific notation stay exact.
func (d *columnReader) integer(c column) *int64 {
	t, text, ok := d.numberText(c, "an integer")
	if !ok {
		return nil
	}
	v, problem := parseInteger(text)
	if problem != "" {
		d.fail("data.%s: %s %s", columnNames[c], t.Quoted(), problem)
		return nil
	}
	return &v
}

// parseInteger parses decimal text that must denote an int64: an optional
// sign, digits with an optional fraction, and an optional exponent. The
// value is computed exactly, never through float64. It returns what is wrong
// with the text, or "".
func parseInteger(b []byte) (int64, string) {
	if v, ok := parseSmallInt(b); ok {
		return v, ""
	}
	const notInteger, outOfRange = "is not an integer", "is out of range"
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	i := jsonscan.SkipDigits(b, 0)
	intDigits := b[:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		j := jsonscan.SkipDigits(b, i+1)
		frac = b[i+1 : j]
		i = j
	}
	if len(intDigits) == 0 && len(frac) == 0 {
		return 0, notInteger
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		expNeg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			expNeg = b[i] == '-'
			i++
		}
		j := jsonscan.SkipDigits(b, i)
		if j == i {
			return 0, notInteger
		}
		for _, c := range b[i:j] {
			if exp < 1_000_000 { // saturate: past this the outcome is decided
				exp = exp*10 + int(c-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
		i = j
	}
	if i != len(b) {
		return 0, notInteger
	}

	// The value is digits × 10^shift, with digits = intDigits frac.
	digits := make([]byte, 0, len(intDigits)+len(frac))
	digits = append(append(digits, intDigits...), frac...)
	shift := exp - len(frac)
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, ""
	}
	for digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		shift++
	}
	if shift < 0 {
		return 0, notInteger
	}
	if len(digits)+shift > 19 {
		return 0, outOfRange
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for ; shift > 0; shift-- {
		u *= 10
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), ""
	case neg && u <= 1<<63:
		return int64(-u), ""
	}
	return 0, outOfRange
}

// parseSmallInt is the fast path for the usual case: an optional minus sign
// and up to 18 digits, which cannot overflow int64.
func parseSmallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// decimal reads an exact decimal given as a JSON number or a string.
func (d *columnReader) decimal(c column) *order.Decimal {
	t, text, ok := d.numberText(c, "a decimal")
	if !ok {
		return nil
	}
	v, err := order.ParseDecimal(string(text))
	if err != nil {
		d.fail("data.%s: %s is not a decimal", columnNames[c], t.Quoted())
		return nil
	}
	return &v
}

// string reads a text column. A number is taken as its literal text, since
// a numeric-looking VARCHAR (a ZIP code, say) may arrive either way.
func (d *columnReader) string(c column) *string {
	t, ok := d.present(c)
	if !ok {
		return nil
	}
	if t.Kind != jsonscan.String && t.Kind != jsonscan.Number {
		d.fail("data.%s: expected a string, got %s", columnNames[c], t.Kind)
		return nil
	}
	s := t.Text()
	return &s
}

// dateTime reads a DATETIME column and renders it as KDA SQL parses a
// TIMESTAMP: "YYYY-MM-DD HH:MM:SS.fff" (order.OrderDateTimeLayout).
func (d *columnReader) dateTime(c column) *string {
	t, ok := d.present(c)
	if !ok {
		return nil
	}
	if t.Kind != jsonscan.String {
		d.fail("data.%s: expected a datetime string, got %s", columnNames[c], t.Kind)
		return nil
	}
	v, ok := parseDateTime(t.Bytes())
	if !ok {
		d.fail("data.%s: %s is not a datetime", columnNames[c], t.Quoted())
		return nil
	}
	var buf [32]byte
	s := string(appendDateTime(buf[:0], v, 3))
	return &s
}
