package local

import (
	"context"
	"strings"
	"testing"
)

// TestLoadRefusesImpossibleLoad checks the arguments before touching the
// database (nil here): a mistake must not leave half a load behind.
func TestLoadRefusesImpossibleLoad(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  LoadConfig
		want string
	}{
		{"zero orders", LoadConfig{Orders: 0, ItemsPerOrder: 2, Products: []int64{1, 2}}, "at least 1"},
		{"zero items per order", LoadConfig{Orders: 5, ItemsPerOrder: 0, Products: []int64{1, 2}}, "at least 1"},
		{"a negative rate", LoadConfig{Orders: 5, ItemsPerOrder: 1, Rate: -1, Products: []int64{1}}, "rate must not be negative"},
		{"more items per order than distinct products", LoadConfig{Orders: 5, ItemsPerOrder: 3, Products: []int64{1, 2, 2}}, "3 items per order, but only 2 products"},
	} {
		t.Run("a load with "+c.name+" is refused", func(t *testing.T) {
			_, err := Load(context.Background(), nil, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want %q", err, c.want)
			}
		})
	}
}
