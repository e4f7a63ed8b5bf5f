package ddblimit_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
)

func TestSignificantDigits(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "0.001": 1, "120.5": 4, "1000": 1, "-12.34": 4, "10.01": 4, "0.0": 0} {
		if got := ddblimit.SignificantDigits(s); got != want {
			t.Errorf("SignificantDigits(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestCheckNumber(t *testing.T) {
	nines38 := strings.Repeat("9", 38)
	tests := []struct {
		name, in, wantErr string
	}{
		{"an everyday amount is fine", "959.18", ""},
		{"zero is fine", "0", ""},
		{"38 significant digits are fine", "1234567890123456789012345678901234567.8", ""},
		{"trailing zeros of an integer do not count", "12345678901234567890123456789012345678" + strings.Repeat("0", 80), ""},
		{"39 significant digits are refused", "-123456789012345678901234567890123456.789", "has more than 38 significant digits (39)"},
		{"a 40-digit amount is refused", "12345678901234567890123456789012345678.91", "has more than 38 significant digits (40)"},
		{"the largest number is fine", nines38 + strings.Repeat("0", 88), ""},
		{"1E+126 is too large", "1" + strings.Repeat("0", 126), "beyond the largest DynamoDB number"},
		{"1E-130 is the smallest positive number", "0." + strings.Repeat("0", 129) + "1", ""},
		{"1E-131 is too small", "-0." + strings.Repeat("0", 130) + "1", "below the smallest DynamoDB number"},
		{"text that is not a number is named", "12a", "12a is not a decimal number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ddblimit.CheckNumber(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckNumber = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckNumber = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestItemSize(t *testing.T) {
	t.Run("counts names and values as the DynamoDB documentation does", func(t *testing.T) {
		item := map[string]types.AttributeValue{
			"pk":      &types.AttributeValueMemberS{Value: "1001"},                                                            // 2 + 4
			"amount":  &types.AttributeValueMemberN{Value: "959.18"},                                                          // 6 + 5 digits → 3 + 1
			"deleted": &types.AttributeValueMemberBOOL{Value: true},                                                           // 7 + 1
			"tags":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "ab"}}}, // 4 + 3 + 1 + 2
		}
		if got, want := ddblimit.ItemSize(item), 6+10+8+10; got != want {
			t.Errorf("ItemSize = %d, want %d", got, want)
		}
	})
	t.Run("sets count the sum of their elements", func(t *testing.T) {
		item := map[string]types.AttributeValue{
			"ss": &types.AttributeValueMemberSS{Value: []string{"a", "bcd"}},        // 2 + 1 + 3
			"ns": &types.AttributeValueMemberNS{Value: []string{"12", "959.18"}},    // 2 + (2 digits → 1 + 1) + (5 digits → 3 + 1)
			"bs": &types.AttributeValueMemberBS{Value: [][]byte{{1, 2}, {3, 4, 5}}}, // 2 + 2 + 3
		}
		if got, want := ddblimit.ItemSize(item), 6+8+7; got != want {
			t.Errorf("ItemSize = %d, want %d", got, want)
		}
	})
	t.Run("an item over the limit is refused, one at the limit is not", func(t *testing.T) {
		item := map[string]types.AttributeValue{"s": &types.AttributeValueMemberS{Value: strings.Repeat("x", ddblimit.MaxItemSize-1)}}
		if err := ddblimit.CheckItem(item); err != nil {
			t.Errorf("CheckItem at the limit = %v", err)
		}
		item["t"] = &types.AttributeValueMemberBOOL{Value: true}
		if err := ddblimit.CheckItem(item); err == nil || !strings.Contains(err.Error(), "larger than DynamoDB's item limit") {
			t.Errorf("CheckItem over the limit = %v", err)
		}
	})
}
