package preprocess_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc/cdctest"
	"github.com/unified-streaming-etl/etl/kda/preprocess"
)

// viaEncodingJSON answers a payload the way the Lambda runtime does for a
// typed handler: json.Unmarshal into an Event, Handle, and encode the
// response without HTML escaping. Invoke must answer exactly this.
func viaEncodingJSON(h *preprocess.Handler, payload []byte) ([]byte, error) {
	var ev preprocess.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// oddEvent is a preprocessing event whose records are odd in every way a
// record can be without making the event unreadable.
const oddEvent = `{"InvocationID":"i-2","records":[
	null,
	{"recordId":"a","data":null,"kinesisStreamRecordMetadata":null},
	{"recordId":"b","data":"e30=","kinesisStreamRecordMetadata":{"shardId":7}},
	{"recordId":"c","data":"e30","kinesisFirehoseRecordMetadata":{"approximateArrivalTimestamp":"1e3"}},
	{"recordId":"d\u00e9<&>\u2028","data":"e3\n0=","kinesisStreamRecordMetadata":"x","extra":[1,{"z":null}]},
	{"RecordId":"e","recordId":"f","data":["e30="],"DATA":true},
	{"recordId":"g","data":"eyJkYXRhIjp7Im9yZGVySWQiOjEsIml0ZW1JZCI6Mn0sIm1ldGFkYXRhIjp7InRpbWVzdGFtcCI6IjIwMjQtMDMtMThUMDk6NDE6MjcuNTMxODQyWiIsInJlY29yZC10eXBlIjoiZGF0YSIsIm9wZXJhdGlvbiI6Imluc2VydCIsInNjaGVtYS1uYW1lIjoib3JkZXJzIiwidGFibGUtbmFtZSI6Im9yZGVyX2l0ZW0ifX0="}
],"records2":null}`

func TestInvokeAnswersWhatTheRuntimeWouldEncode(t *testing.T) {
	payloads := map[string][]byte{"an event with odd records": []byte(oddEvent)}
	for _, name := range []string{"kda-stream-event.json", "kda-firehose-event.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		payloads["the fixture "+name] = b
	}
	h := preprocess.New(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			want, err := viaEncodingJSON(h, payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.Invoke(context.Background(), payload)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestInvokeRejectsWhatIsNotAnEvent(t *testing.T) {
	h := preprocess.New(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for _, payload := range []string{
		``, `[]`, `"records"`, `{"records":{}}`, `{"records":[5]}`, `{"records":[{"recordId":5}]}`,
		`{"invocationId":true}`, `{"records":[]`, `{"records":[]} {}`,
	} {
		t.Run(payload, func(t *testing.T) {
			if out, err := h.Invoke(context.Background(), []byte(payload)); err == nil {
				t.Fatalf("answered %s", out)
			}
			if _, err := viaEncodingJSON(h, []byte(payload)); err == nil {
				t.Fatal("encoding/json reads it; Invoke should too")
			}
		})
	}
}

// FuzzInvoke checks that Invoke and the encoding/json path agree on every
// payload: both reject it, or both give the same bytes.
func FuzzInvoke(f *testing.F) {
	f.Add([]byte(oddEvent))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"records":[{"recordId":"1","data":"e30=","kinesisStreamRecordMetadata":{"approximateArrivalTimestamp":"-0.5E+3","sequenceNumber":null}}]}`))
	for _, name := range []string{"kda-stream-event.json", "kda-firehose-event.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ev := preprocess.Event{InvocationID: "x"}
	for i, r := range cdctest.Records(3) {
		ev.Records = append(ev.Records, preprocess.EventRecord{RecordID: strings.Repeat("9", i+1), Data: r})
	}
	small, _ := json.Marshal(ev)
	f.Add(small)

	h := preprocess.New(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		want, wantErr := viaEncodingJSON(h, payload)
		got, err := h.Invoke(context.Background(), payload)
		switch {
		case (err != nil) != (wantErr != nil):
			t.Fatalf("Invoke error %v, encoding/json error %v", err, wantErr)
		case err == nil && !bytes.Equal(got, want):
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
