package refdata

import (
	"fmt"

	"github.com/unified-streaming-etl/etl/internal/order"
)

// CatalogueSize is the number of products in reference-data/products.json.
// Sample data and generated load draw item ids from 1..CatalogueSize.
const CatalogueSize = 1000

var (
	adjectives = []string{"Ergonomic", "Rustic", "Sleek", "Durable", "Compact", "Deluxe", "Classic", "Smart",
		"Portable", "Handcrafted", "Modern", "Vintage", "Lightweight", "Heavy-Duty", "Premium", "Eco"}
	materials = []string{"Steel", "Oak", "Cotton", "Leather", "Bamboo", "Granite", "Wool", "Aluminum",
		"Ceramic", "Glass", "Copper", "Linen", "Walnut", "Carbon", "Marble", "Silk"}
	nouns = []string{"Chair", "Lamp", "Backpack", "Kettle", "Desk", "Blanket", "Speaker", "Mug",
		"Bookshelf", "Jacket", "Bicycle", "Watch", "Notebook", "Umbrella", "Headphones", "Planter"}
)

// Generate returns products 1..n. The catalogue is a pure function of n so
// that the committed file can be regenerated and checked byte for byte.
func Generate(n int) []order.Product {
	products := make([]order.Product, n)
	for i := range products {
		id := int64(i + 1)
		// A multiplicative hash spreads names and prices so that neighbouring
		// ids do not look alike; the constants are arbitrary odd numbers.
		h := uint64(id) * 0x9E3779B97F4A7C15
		name := fmt.Sprintf("%s %s %s",
			adjectives[h>>60], materials[(h>>56)&15], nouns[(h>>52)&15])
		cents := 199 + (h>>20)%49800 // 1.99 .. 499.98
		products[i] = order.Product{
			ProductID:    id,
			ProductName:  name,
			ProductPrice: order.MustDecimal(fmt.Sprintf("%d.%02d", cents/100, cents%100)),
		}
	}
	return products
}
