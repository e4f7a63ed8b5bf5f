// Package jsonscan reads JSON in one pass over its bytes, validating all of
// it, including the values it skips, so that whatever it accepts is valid
// JSON. The cdc decoder and the preprocess Lambda's event reader are built
// on it: both need only a few members of each object and must beat
// encoding/json by a wide margin (docs/design.md §9).
//
// Against github.com/go-json-experiment/json v1.27.2 (the proposed
// encoding/json/v2) on the same 1,000 DMS records (compare_test.go, 2
// shared cores, three runs): validating a whole record costs the same,
// 2.0-2.5 µs here against 1.5-2.4 µs for jsontext.Decoder.ReadValue, both
// without allocating. The margin is in decoding: cdc.Decode, which reads
// straight into the typed change, takes 5.6-8.7 µs, 173 B and 13
// allocations per record, against 11-21 µs, 916 B and 14 allocations for
// json.Unmarshal into the record's metadata and raw column values, before
// any conversion. That twofold gain on every change record the
// processors decode is why the package stays.
package jsonscan

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the JSON type of a scanned value. The zero Kind means absent.
type Kind uint8

// Kinds of values.
const (
	Absent Kind = iota
	Null
	False
	True
	Number
	String
	Object
	Array
)

// String names the kind for messages: "a number", "an object".
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case False, True:
		return "a boolean"
	case Number:
		return "a number"
	case String:
		return "a string"
	case Object:
		return "an object"
	case Array:
		return "an array"
	}
	return "nothing"
}

// Token is one scanned value. For strings Raw holds the bytes between the
// quotes, still escaped; for numbers and literals it holds their text; for
// objects and arrays it is empty (they are skipped).
type Token struct {
	Kind Kind
	Raw  []byte
	// plain is set for strings whose raw bytes are their value: no escapes
	// and only ASCII.
	plain bool
}

// IsNull reports whether the value is absent or null.
func (t Token) IsNull() bool { return t.Kind == Absent || t.Kind == Null }

// Bytes returns a string's value: its raw bytes when they need no decoding,
// else a decoded copy in which, as encoding/json does, invalid UTF-8 and
// unpaired surrogates become U+FFFD. For other kinds it returns Raw.
func (t Token) Bytes() []byte {
	if t.Kind != String || t.plain || (!hasEscape(t.Raw) && utf8.Valid(t.Raw)) {
		return t.Raw
	}
	return unescape(t.Raw)
}

// Text returns Bytes as a string.
func (t Token) Text() string { return string(t.Bytes()) }

// Quoted renders the value for an error message: strings quoted, other
// scalars as written, objects and arrays by kind; long values are cut short
// so that they cannot flood a log.
func (t Token) Quoted() string {
	const limit = 64
	switch t.Kind {
	case String:
		b := t.Bytes()
		if len(b) > limit {
			return strconv.Quote(string(b[:limit])) + "…"
		}
		return strconv.Quote(string(b))
	case Number, True, False, Null:
		if len(t.Raw) > limit {
			return string(t.Raw[:limit]) + "…"
		}
		return string(t.Raw)
	}
	return t.Kind.String()
}

// MaxDepth bounds nesting as encoding/json does, so hostile input cannot
// exhaust the stack.
const MaxDepth = 10000

var errUnexpectedEnd = errors.New("invalid JSON: unexpected end of input")

// Scanner walks a JSON text. Its methods skip white space before what they
// read. Errors describe the problem and its byte offset.
type Scanner struct {
	buf []byte
	off int
}

// New returns a scanner at the start of b.
func New(b []byte) Scanner { return Scanner{buf: b} }

func (s *Scanner) skipSpace() {
	for s.off < len(s.buf) {
		switch s.buf[s.off] {
		case ' ', '\t', '\n', '\r':
			s.off++
		default:
			return
		}
	}
}

// Peek returns the next byte after white space without consuming it, or 0
// at the end of the input.
func (s *Scanner) Peek() byte {
	s.skipSpace()
	if s.off < len(s.buf) {
		return s.buf[s.off]
	}
	return 0
}

// AtEnd reports whether only white space is left.
func (s *Scanner) AtEnd() bool {
	s.skipSpace()
	return s.off == len(s.buf)
}

// End checks that nothing but white space follows what has been read.
func (s *Scanner) End() error {
	if !s.AtEnd() {
		return s.errorAt(s.off)
	}
	return nil
}

func (s *Scanner) errorAt(off int) error {
	if off >= len(s.buf) {
		return errUnexpectedEnd
	}
	c := s.buf[off]
	if c >= 0x20 && c < 0x7f {
		return fmt.Errorf("invalid JSON: unexpected %q at offset %d", c, off)
	}
	return fmt.Errorf("invalid JSON: unexpected byte 0x%02x at offset %d", c, off)
}

func (s *Scanner) consume(c byte) error {
	if s.Peek() != c {
		return s.errorAt(s.off)
	}
	s.off++
	return nil
}

// OpenObject consumes '{' and reports whether the object is empty, in which
// case its '}' is consumed too. Read members with Key, a value, and
// NextMember.
func (s *Scanner) OpenObject() (empty bool, err error) {
	if err := s.consume('{'); err != nil {
		return false, err
	}
	if s.Peek() == '}' {
		s.off++
		return true, nil
	}
	return false, nil
}

// Key reads a member name and the colon after it.
func (s *Scanner) Key() (Token, error) {
	if s.Peek() != '"' {
		return Token{}, s.errorAt(s.off)
	}
	k, err := s.str()
	if err != nil {
		return Token{}, err
	}
	return k, s.consume(':')
}

// NextMember reads what follows a member's value: ',' (more members follow)
// or '}' (the object is done).
func (s *Scanner) NextMember() (done bool, err error) {
	switch s.Peek() {
	case ',':
		s.off++
		return false, nil
	case '}':
		s.off++
		return true, nil
	}
	return false, s.errorAt(s.off)
}

// OpenArray consumes '[' and reports whether the array is empty, in which
// case its ']' is consumed too. Read elements with a value and NextElement.
func (s *Scanner) OpenArray() (empty bool, err error) {
	if err := s.consume('['); err != nil {
		return false, err
	}
	if s.Peek() == ']' {
		s.off++
		return true, nil
	}
	return false, nil
}

// NextElement reads what follows an element: ',' (more elements follow) or
// ']' (the array is done).
func (s *Scanner) NextElement() (done bool, err error) {
	switch s.Peek() {
	case ',':
		s.off++
		return false, nil
	case ']':
		s.off++
		return true, nil
	}
	return false, s.errorAt(s.off)
}

// Value reads any value. Objects and arrays are validated and skipped;
// depth is the nesting level of the value (1 for a top-level value).
func (s *Scanner) Value(depth int) (Token, error) {
	switch c := s.Peek(); {
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true", True)
	case c == 'f':
		return s.literal("false", False)
	case c == 'n':
		return s.literal("null", Null)
	case c == '{':
		return Token{Kind: Object}, s.skipObject(depth)
	case c == '[':
		return Token{Kind: Array}, s.skipArray(depth)
	}
	return Token{}, s.errorAt(s.off)
}

func (s *Scanner) tooDeep(depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("invalid JSON: nested deeper than %d at offset %d", MaxDepth, s.off)
	}
	return nil
}

func (s *Scanner) skipObject(depth int) error {
	if err := s.tooDeep(depth); err != nil {
		return err
	}
	done, err := s.OpenObject()
	for !done && err == nil {
		if _, err = s.Key(); err != nil {
			return err
		}
		if _, err = s.Value(depth + 1); err != nil {
			return err
		}
		done, err = s.NextMember()
	}
	return err
}

func (s *Scanner) skipArray(depth int) error {
	if err := s.tooDeep(depth); err != nil {
		return err
	}
	done, err := s.OpenArray()
	for !done && err == nil {
		if _, err = s.Value(depth + 1); err != nil {
			return err
		}
		done, err = s.NextElement()
	}
	return err
}

func (s *Scanner) literal(lit string, k Kind) (Token, error) {
	for i := 0; i < len(lit); i++ {
		if s.off+i >= len(s.buf) || s.buf[s.off+i] != lit[i] {
			return Token{}, s.errorAt(s.off + i)
		}
	}
	t := Token{Kind: k, Raw: s.buf[s.off : s.off+len(lit)]}
	s.off += len(lit)
	return t, nil
}

// number reads a number with JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() (Token, error) {
	b, i := s.buf, s.off
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = SkipDigits(b, i)
	default:
		return Token{}, s.errorAt(i)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return Token{}, s.errorAt(i)
		}
		i = SkipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return Token{}, s.errorAt(i)
		}
		i = SkipDigits(b, i)
	}
	t := Token{Kind: Number, Raw: b[s.off:i]}
	s.off = i
	return t, nil
}

// SkipDigits returns the index of the first byte at or after i in b that is
// not an ASCII digit.
func SkipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// safeASCII marks the bytes a string can hold as they are: printable ASCII
// other than '"' and '\\'. str skips runs of them in a tight loop.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string, checking its escapes and rejecting raw control
// characters as JSON requires. The opening quote is next in the input.
func (s *Scanner) str() (Token, error) {
	b := s.buf
	start := s.off + 1
	plain := true
	for i := start; ; i++ {
		for i < len(b) && safeASCII[b[i]] {
			i++
		}
		if i >= len(b) {
			return Token{}, errUnexpectedEnd
		}
		switch c := b[i]; {
		case c == '"':
			s.off = i + 1
			return Token{Kind: String, Raw: b[start:i], plain: plain}, nil
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return Token{}, errUnexpectedEnd
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := hex4(b[i+1:]); !ok {
					if len(b) < i+5 {
						return Token{}, errUnexpectedEnd
					}
					return Token{}, fmt.Errorf("invalid JSON: bad \\u escape at offset %d", i-1)
				}
				i += 4
			default:
				return Token{}, fmt.Errorf("invalid JSON: bad escape \\%c at offset %d", b[i], i-1)
			}
		case c < 0x20:
			return Token{}, fmt.Errorf("invalid JSON: control character 0x%02x in string at offset %d", c, i)
		default: // c >= utf8.RuneSelf
			plain = false
		}
	}
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// unescape decodes the raw bytes of a string the scanner has validated.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, _ := hex4(raw[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2, ok = hex4(raw[i+2:])
					}
					if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out = append(out, e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+n]...)
			}
			i += n
		}
	}
	return out
}

// EqualFold reports whether b equals s, ignoring ASCII case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x != y && lower(x) != lower(y) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
