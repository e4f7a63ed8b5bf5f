package order_test

import (
	"encoding/json"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/order"
)

func TestDecimalKeepsEveryDigit(t *testing.T) {
	cases := []struct{ in, want string }{
		{"12.50", "12.5"},
		{"0012.00", "12"},
		{"-0.00", "0"},
		{"99999999.99", "99999999.99"},
		{"1.25E+1", "12.5"},
		{"125e-2", "1.25"},
		{".5", "0.5"},
		{"+7", "7"},
		{"12345678901234567890.123456789", "12345678901234567890.123456789"},
	}
	for _, c := range cases {
		t.Run(c.in+" reads as "+c.want, func(t *testing.T) {
			d, err := order.ParseDecimal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != c.want {
				t.Fatalf("got %s", d)
			}
		})
	}
}

func TestDecimalRejectsWhatIsNotANumber(t *testing.T) {
	for _, in := range []string{"", "-", ".", "1.2.3", "12a", "1e", "NaN", "1e99999", "0x10", " 1"} {
		t.Run(in, func(t *testing.T) {
			if _, err := order.ParseDecimal(in); err == nil {
				t.Fatalf("%q accepted", in)
			}
		})
	}
}

func TestDecimalJSONAcceptsNumbersAndStringsAndWritesNumbers(t *testing.T) {
	var v struct{ A, B order.Decimal }
	if err := json.Unmarshal([]byte(`{"A":19.90,"B":"0.10"}`), &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	if string(out) != `{"A":19.9,"B":0.1}` {
		t.Fatalf("got %s", out)
	}
}
