package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

// Items reads OrderEnriched as decoded items, ordered by key.
func (p *Pipeline) Items(ctx context.Context) ([]sink.Item, error) {
	return sink.ScanItems(ctx, p.DynamoDB, TableName, nil)
}

// Verify compares OrderEnriched with the join of the source tables.
func (p *Pipeline) Verify(ctx context.Context) ([]verify.Difference, []sink.Item, error) {
	products, err := p.Products()
	if err != nil {
		return nil, nil, err
	}
	want, err := verify.Expected(ctx, p.db, products)
	if err != nil {
		return nil, nil, err
	}
	got, err := p.Items(ctx)
	if err != nil {
		return nil, nil, err
	}
	return verify.Compare(want, got), got, nil
}

// Products reads the pipeline's product catalogue.
func (p *Pipeline) Products() (refdata.Catalogue, error) {
	f, err := os.Open(p.cfg.Products)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return refdata.Parse(f)
}

// Dump writes OrderEnriched as a JSON array with one object per item on
// its own line. Attributes are plain JSON values: numbers exactly as
// stored, strings, booleans, null; orderId and itemId first, the rest by
// name.
func (p *Pipeline) Dump(ctx context.Context, w io.Writer) error {
	raw, err := sink.Scan(ctx, p.DynamoDB, TableName, nil)
	if err != nil {
		return err
	}
	return WriteDump(w, raw)
}

// WriteDump is Dump for items already read.
func WriteDump(w io.Writer, items []map[string]types.AttributeValue) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for n, av := range items {
		if n > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n{")
		names := make([]string, 0, len(av))
		for k := range av {
			if k != sink.AttrOrderID && k != sink.AttrItemID {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		names = append([]string{sink.AttrOrderID, sink.AttrItemID}, names...)
		first := true
		for _, k := range names {
			v, ok := av[k]
			if !ok {
				continue
			}
			val, err := plainJSON(v)
			if err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
			if !first {
				buf.WriteString(",")
			}
			first = false
			name, _ := json.Marshal(k)
			buf.Write(name)
			buf.WriteString(":")
			buf.Write(val)
		}
		buf.WriteString("}")
	}
	buf.WriteString("\n]\n")
	_, err := w.Write(buf.Bytes())
	return err
}

// plainJSON renders one DynamoDB attribute value as plain JSON.
func plainJSON(v types.AttributeValue) ([]byte, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		if !json.Valid([]byte(v.Value)) {
			return nil, fmt.Errorf("number %q is not valid JSON", v.Value)
		}
		return []byte(v.Value), nil
	case *types.AttributeValueMemberS:
		return json.Marshal(v.Value)
	case *types.AttributeValueMemberBOOL:
		return json.Marshal(v.Value)
	case *types.AttributeValueMemberNULL:
		return []byte("null"), nil
	case *types.AttributeValueMemberL:
		parts := make([]json.RawMessage, len(v.Value))
		for i, e := range v.Value {
			b, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			parts[i] = b
		}
		return json.Marshal(parts)
	case *types.AttributeValueMemberM:
		m := make(map[string]json.RawMessage, len(v.Value))
		for k, e := range v.Value {
			b, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			m[k] = b
		}
		return json.Marshal(m)
	default:
		return nil, fmt.Errorf("unsupported attribute type %T", v)
	}
}
