package refdata_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/refdata"
)

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommittedCatalogueIsWhatTheGeneratorWrites(t *testing.T) {
	var want bytes.Buffer
	if err := refdata.Write(&want, refdata.Generate(refdata.CatalogueSize)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(repoFile(t, "reference-data/products.json"), want.Bytes()) {
		t.Fatal("reference-data/products.json is stale: run go run ./cmd/genproducts > reference-data/products.json")
	}
}

func TestCatalogueCoversEveryItemOfTheSampleData(t *testing.T) {
	cat, err := refdata.Parse(bytes.NewReader(repoFile(t, "reference-data/products.json")))
	if err != nil {
		t.Fatal(err)
	}
	sql := string(repoFile(t, "sql/orders-data-setup.sql"))
	values := sql[strings.Index(sql, "INSERT INTO orders.order_item"):]
	values = values[:strings.Index(values, ";")]
	rows := regexp.MustCompile(`\(\s*(\d+),\s*(\d+),`).FindAllStringSubmatch(values, -1)
	if len(rows) == 0 {
		t.Fatal("no order_item rows found in the sample data")
	}
	for _, r := range rows {
		id, _ := strconv.ParseInt(r[2], 10, 64)
		if _, ok := cat[id]; !ok {
			t.Errorf("order %s item %d has no product in the catalogue", r[1], id)
		}
	}
}

func TestParseRejectsABrokenFileNamingTheLine(t *testing.T) {
	cases := map[string]string{
		"not JSON":        "{\"productId\":1,\"productName\":\"A\",\"productPrice\":1}\n{oops\n",
		"missing name":    "{\"productId\":1,\"productPrice\":1}\n",
		"duplicate id":    "{\"productId\":1,\"productName\":\"A\",\"productPrice\":1}\n{\"productId\":1,\"productName\":\"B\",\"productPrice\":2}\n",
		"price not exact": "{\"productId\":1,\"productName\":\"A\",\"productPrice\":\"1,5\"}\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := refdata.Parse(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), "line") {
				t.Fatalf("got %v, want an error naming the line", err)
			}
		})
	}
}

func TestParseReadsPricesExactly(t *testing.T) {
	cat, err := refdata.Parse(strings.NewReader("\n{\"productId\":7,\"productName\":\"Lamp\",\"productPrice\":\"19.90\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cat[7].ProductPrice.String(); got != "19.9" {
		t.Fatalf("price %s", got)
	}
}

func TestParseRefusesAnEmptyCatalogue(t *testing.T) {
	for name, in := range map[string]string{"an empty file": "", "blank lines only": "\n  \n\n"} {
		t.Run(name, func(t *testing.T) {
			cat, err := refdata.Parse(strings.NewReader(in))
			if !errors.Is(err, refdata.ErrEmpty) || cat != nil {
				t.Fatalf("Parse = %v, %v; want ErrEmpty", cat, err)
			}
		})
	}
}

func TestParseRefusesAPriceDynamoDBCannotStore(t *testing.T) {
	in := "{\"productId\":1,\"productName\":\"A\",\"productPrice\":1}\n" +
		"{\"productId\":2,\"productName\":\"B\",\"productPrice\":\"1234567890123456789012345678901234567.891\"}\n"
	_, err := refdata.Parse(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "products line 2: productPrice") || !strings.Contains(err.Error(), "38 significant digits") {
		t.Fatalf("Parse = %v, want line 2's price refused", err)
	}
}
