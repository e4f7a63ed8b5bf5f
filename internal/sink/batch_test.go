package sink_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unified-streaming-etl/etl/internal/order"
)

// streamARN and shard are where generated events claim to come from.
const (
	streamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/UnifiedStreamETLProcessStack-EnrichedStream7C4B1F5E-Xq3kD9mA2LzR"
	shard     = "shardId-000000000004"
)

var seqBase, _ = new(big.Int).SetString("49654226190374217584376545318930211358523283025355424000", 10)

// kinesisEvent wraps payloads as Lambda delivers them: one record each,
// consecutive sequence numbers from first, partition key = orderId.
func kinesisEvent(first int, payloads [][]byte, partitionKeys []string) events.KinesisEvent {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(payloads))}
	arrival := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, p := range payloads {
		seq := new(big.Int).Add(seqBase, big.NewInt(int64(first+i)*16)).String()
		ev.Records[i] = events.KinesisEventRecord{
			AwsRegion:      "us-east-1",
			EventID:        shard + ":" + seq,
			EventName:      "aws:kinesis:record",
			EventSource:    "aws:kinesis",
			EventSourceArn: streamARN,
			EventVersion:   "1.0",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival.Add(time.Duration(first+i) * time.Millisecond)},
				Data:                        p,
				PartitionKey:                partitionKeys[i],
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		}
	}
	return ev
}

// enrichedBatch generates n enriched records from the Go processor over
// orders starting at firstOrder, three items per order, with versions from
// version up. Every fifth record repeats an earlier key with new content,
// as an update in the same batch would. It returns the event and the last
// record per key, which is what the table must hold afterwards.
func enrichedBatch(first, n int, firstOrder int64, version int64, op string) (events.KinesisEvent, map[itemKey]order.Enriched) {
	payloads := make([][]byte, n)
	pks := make([]string, n)
	want := map[itemKey]order.Enriched{}
	var keys []itemKey
	for i := range n {
		var k itemKey
		if i%5 == 4 {
			k = keys[len(keys)-2] // an update to a key already in the batch
		} else {
			k = itemKey{firstOrder + int64(len(keys)/3), int64(len(keys)%3 + 1)}
			keys = append(keys, k)
		}
		e := enrichedRecord(k, i, version+int64(i), op)
		b, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		payloads[i], pks[i] = b, strconv.FormatInt(k.orderID, 10)
		e.Op = ""
		want[k] = e
	}
	return kinesisEvent(first, payloads, pks), want
}

func enrichedRecord(k itemKey, i int, version int64, op string) order.Enriched {
	// Amounts up to DECIMAL(10,2)'s range with cents that float64 would
	// not keep exactly.
	amount := order.MustDecimal(fmt.Sprintf("%d.%02d", (k.orderID*7919+int64(i)*104729)%99999999, (k.orderID+int64(i))%100))
	item := order.MustDecimal(fmt.Sprintf("%d.%02d", (k.itemID*31+int64(i))%100000, (k.itemID*7+int64(i))%100))
	price := order.MustDecimal("19.99")
	qty := int64(i%4 + 1)
	s := func(v string) *string { return &v }
	zip := "98101"
	if i%97 == 0 {
		zip = "" // DynamoDB stores empty strings outside keys
	}
	return order.Enriched{
		EventTS:       s("2026-03-01 12:00:00.250"),
		OrderID:       k.orderID,
		OrderAmount:   &amount,
		OrderStatus:   s([]string{"PLACED", "UPDATED", "SHIPPED"}[i%3]),
		OrderDateTime: s("2026-03-01 11:59:58.250"),
		ShipToName:    s("Customer " + strconv.FormatInt(k.orderID, 10)),
		ShipToAddress: s(strconv.Itoa(i) + " Pine St"),
		ShipToCity:    s("Seattle"),
		ShipToState:   s("WA"),
		ShipToZip:     &zip,
		ItemID:        k.itemID,
		ItemAmount:    &item,
		ItemQuantity:  &qty,
		ItemStatus:    s("PLACED"),
		ProductName:   s("Product " + strconv.FormatInt(k.itemID, 10)),
		ProductPrice:  &price,
		Op:            op,
		Version:       version,
	}
}
