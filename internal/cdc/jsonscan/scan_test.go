package jsonscan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
)

// valid scans one whole JSON text.
func valid(b []byte) (jsonscan.Token, error) {
	s := jsonscan.New(b)
	t, err := s.Value(1)
	if err == nil {
		err = s.End()
	}
	return t, err
}

func TestScannerAcceptsExactlyValidJSON(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+10`, `1E3`, `true`, `false`, `null`, ` {"a" : [1, {"b":null}, "\u00e9\n"] } `,
		`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `+1`, `1e`, `"\x"`, `"\u12g4"`, "\"a\tb\"", `nul`, `tru`, `{"a"}`,
		`{"a":1 "b":2}`, `[1 2]`, `{} {}`, `"`, `{`, "\xef\xbb\xbf{}", strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), "\"caf\xc3\xa9 \xff\"",
	}
	for _, in := range cases {
		name := in
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(name, func(t *testing.T) {
			_, err := valid([]byte(in))
			if want := json.Valid([]byte(in)); (err == nil) != want {
				t.Fatalf("scanner error %v, json.Valid %v", err, want)
			}
		})
	}
}

func TestStringsDecodeAsEncodingJSONDecodesThem(t *testing.T) {
	cases := []string{
		`"plain"`, `"Jos\u00e9 \"Pepe\" \\ \/ \b\f\n\r\t"`, `"\ud83c\udf32"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`,
		"\"caf\xc3\xa9\"", "\"bad \xff byte\"", "\"cut \xe2\x82\"", `"\u0000"`, `""`,
	}
	for _, in := range cases {
		t.Run(in, func(t *testing.T) {
			tok, err := valid([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			var want string
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
			if got := tok.Text(); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

func TestAppendStringWritesWhatEncodingJSONWrites(t *testing.T) {
	cases := []string{"", "plain", `"quoted" \ back`, "\x00\x01\x1f\t\n\r\b\f\x7f", "Straße 🌲", "a\u2028b\u2029", "<&>", "bad \xff \xe2\x82"}
	for _, in := range cases {
		t.Run(in, func(t *testing.T) {
			want := marshalNoHTML(t, in)
			if got := jsonscan.AppendString(nil, in); string(got) != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

func marshalNoHTML(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// FuzzScanner checks that the scanner accepts exactly what json.Valid
// accepts and reads strings as encoding/json does.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,"x\u00e9",true,null,{}]}`, `"\ud800\udc00"`, "\"\xff\"", `-0`, `[[[]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := valid(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("scanner error %v, json.Valid %v", err, json.Valid(b))
		}
		if err != nil || tok.Kind != jsonscan.String {
			return
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got := tok.Text(); got != want {
			t.Fatalf("read %q, encoding/json reads %q", got, want)
		}
	})
}

// FuzzAppendString checks AppendString against encoding/json.
func FuzzAppendString(f *testing.F) {
	f.Add("Jos\u00e9 \"\\\x00\u2028\xff<")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(jsonscan.AppendString(nil, s)), marshalNoHTML(t, s); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}
