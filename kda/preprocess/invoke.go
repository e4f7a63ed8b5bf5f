package preprocess

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
)

// Invoke answers one invocation from its raw payload; it makes Handler a
// lambda.Handler, which the runtime calls without going through
// encoding/json. Reading a 500-record event with encoding/json costs several
// times more than preprocessing its records, so the event is read and the
// response written in one pass each. The outcome is what Handle gives for
// the event json.Unmarshal reads from payload, and the response is the JSON
// the runtime would encode for it. An error means the payload is not a
// preprocessing event at all.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, err := readEvent(payload)
	if err != nil {
		return nil, fmt.Errorf("reading the preprocessing event: %w", err)
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		return nil, err
	}
	return resp.AppendJSON(nil), nil
}

// AppendJSON appends the response as JSON to dst, as encoding/json writes it
// without HTML escaping (as the Lambda runtime does): data in base64 and
// omitted when empty. A nil list is written as [], which KDA expects.
func (r *Response) AppendJSON(dst []byte) []byte {
	size := len(`{"records":[]}`)
	for i := range r.Records {
		rec := &r.Records[i]
		size += len(`{"recordId":"","result":"","data":""},`) + len(rec.RecordID) + len(rec.Result) +
			base64.StdEncoding.EncodedLen(len(rec.Data))
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"records":[`...)
	for i := range r.Records {
		rec := &r.Records[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"recordId":`...)
		dst = jsonscan.AppendString(dst, rec.RecordID)
		dst = append(dst, `,"result":`...)
		dst = jsonscan.AppendString(dst, rec.Result)
		if len(rec.Data) > 0 {
			dst = append(dst, `,"data":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, rec.Data)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// readEvent reads a preprocessing event as json.Unmarshal would into an
// Event: member names match regardless of case, the last of repeated
// members wins, null leaves a field empty, and a record's odd data or
// metadata affects that record alone (see EventRecord.UnmarshalJSON).
func readEvent(payload []byte) (Event, error) {
	var ev Event
	s := jsonscan.New(payload)
	if s.Peek() == 'n' { // a null event is an empty one, as for encoding/json
		if _, err := s.Value(1); err != nil {
			return ev, err
		}
		return ev, s.End()
	}
	// Every record's data decodes into one buffer, sized for all of it.
	arena := make([]byte, 0, base64.StdEncoding.DecodedLen(len(payload)))
	done, err := s.OpenObject()
	for !done && err == nil {
		var k jsonscan.Token
		if k, err = s.Key(); err != nil {
			return ev, err
		}
		switch name := k.Bytes(); {
		case jsonscan.EqualFold(name, "invocationId"):
			ev.InvocationID, err = readString(&s, "invocationId")
		case jsonscan.EqualFold(name, "applicationArn"):
			ev.ApplicationARN, err = readString(&s, "applicationArn")
		case jsonscan.EqualFold(name, "streamArn"):
			ev.StreamARN, err = readString(&s, "streamArn")
		case jsonscan.EqualFold(name, "records"):
			ev.Records, arena, err = readRecords(&s, arena)
		default:
			_, err = s.Value(2)
		}
		if err != nil {
			return ev, err
		}
		done, err = s.NextMember()
	}
	if err != nil {
		return ev, err
	}
	return ev, s.End()
}

func readString(s *jsonscan.Scanner, name string) (string, error) {
	t, err := s.Value(2)
	switch {
	case err != nil:
		return "", err
	case t.Kind == jsonscan.String:
		return t.Text(), nil
	case t.Kind == jsonscan.Null:
		return "", nil
	}
	return "", fmt.Errorf("%s: expected a string, got %s", name, t.Kind)
}

func readRecords(s *jsonscan.Scanner, arena []byte) ([]EventRecord, []byte, error) {
	if s.Peek() == 'n' {
		_, err := s.Value(2)
		return nil, arena, err
	}
	if s.Peek() != '[' {
		t, err := s.Value(2)
		if err != nil {
			return nil, arena, err
		}
		return nil, arena, fmt.Errorf("records: expected an array, got %s", t.Kind)
	}
	var records []EventRecord
	done, err := s.OpenArray()
	for !done && err == nil {
		var r EventRecord
		if r, arena, err = readRecord(s, arena); err != nil {
			return nil, arena, err
		}
		records = append(records, r)
		done, err = s.NextElement()
	}
	return records, arena, err
}

func readRecord(s *jsonscan.Scanner, arena []byte) (EventRecord, []byte, error) {
	var r EventRecord
	switch s.Peek() {
	case 'n':
		_, err := s.Value(3)
		r.dataErr = errNoData
		return r, arena, err
	case '{':
	default:
		t, err := s.Value(3)
		if err != nil {
			return r, arena, err
		}
		return r, arena, fmt.Errorf("records: expected an object, got %s", t.Kind)
	}
	var data jsonscan.Token
	done, err := s.OpenObject()
	for !done && err == nil {
		var k jsonscan.Token
		if k, err = s.Key(); err != nil {
			return r, arena, err
		}
		switch name := k.Bytes(); {
		case jsonscan.EqualFold(name, "recordId"):
			r.RecordID, err = readString(s, "recordId")
		case jsonscan.EqualFold(name, "data"):
			data, err = s.Value(4)
		case jsonscan.EqualFold(name, "kinesisStreamRecordMetadata"):
			r.KinesisStreamRecordMetadata, err = readStreamMetadata(s)
		case jsonscan.EqualFold(name, "kinesisFirehoseRecordMetadata"):
			r.KinesisFirehoseRecordMetadata, err = readFirehoseMetadata(s)
		default:
			_, err = s.Value(4)
		}
		if err != nil {
			return r, arena, err
		}
		done, err = s.NextMember()
	}
	if err != nil {
		return r, arena, err
	}

	switch data.Kind {
	case jsonscan.Absent, jsonscan.Null:
		r.dataErr = errNoData
	case jsonscan.String:
		start := len(arena)
		arena, err = base64.StdEncoding.AppendDecode(arena, data.Bytes())
		if err != nil {
			arena = arena[:start]
			r.dataErr = fmt.Errorf("%w: %w", errNotBase64, err)
		} else {
			r.Data = arena[start:len(arena):len(arena)]
		}
	default:
		r.dataErr = errNotString
	}
	return r, arena, nil
}

// readStreamMetadata reads kinesisStreamRecordMetadata, or returns nil if it
// does not fit its type: it only helps to find a record in the logs.
func readStreamMetadata(s *jsonscan.Scanner) (*KinesisStreamRecordMetadata, error) {
	fits := true
	var m KinesisStreamRecordMetadata
	isObject, err := readMembers(s, func(name []byte, t jsonscan.Token) {
		switch {
		case jsonscan.EqualFold(name, "shardId"):
			m.ShardID = memberString(t, &fits)
		case jsonscan.EqualFold(name, "partitionKey"):
			m.PartitionKey = memberString(t, &fits)
		case jsonscan.EqualFold(name, "sequenceNumber"):
			m.SequenceNumber = memberString(t, &fits)
		case jsonscan.EqualFold(name, "approximateArrivalTimestamp"):
			m.ApproximateArrivalTimestamp = memberNumber(t, &fits)
		}
	})
	if err != nil || !isObject || !fits {
		return nil, err
	}
	return &m, nil
}

func readFirehoseMetadata(s *jsonscan.Scanner) (*KinesisFirehoseRecordMetadata, error) {
	fits := true
	var m KinesisFirehoseRecordMetadata
	isObject, err := readMembers(s, func(name []byte, t jsonscan.Token) {
		if jsonscan.EqualFold(name, "approximateArrivalTimestamp") {
			m.ApproximateArrivalTimestamp = memberNumber(t, &fits)
		}
	})
	if err != nil || !isObject || !fits {
		return nil, err
	}
	return &m, nil
}

// readMembers reads a metadata value, calling member for each member of an
// object. It reports whether the value was an object; null and other values
// are read and otherwise ignored.
func readMembers(s *jsonscan.Scanner, member func(name []byte, t jsonscan.Token)) (bool, error) {
	if s.Peek() != '{' {
		_, err := s.Value(4)
		return false, err
	}
	done, err := s.OpenObject()
	for !done && err == nil {
		var k, v jsonscan.Token
		if k, err = s.Key(); err != nil {
			return false, err
		}
		if v, err = s.Value(5); err != nil {
			return false, err
		}
		member(k.Bytes(), v)
		done, err = s.NextMember()
	}
	return true, err
}

func memberString(t jsonscan.Token, fits *bool) string {
	switch t.Kind {
	case jsonscan.String:
		return t.Text()
	case jsonscan.Null:
		return ""
	}
	*fits = false
	return ""
}

// memberNumber reads a json.Number: a number, or a string holding one.
func memberNumber(t jsonscan.Token, fits *bool) json.Number {
	switch t.Kind {
	case jsonscan.Number:
		return json.Number(t.Raw)
	case jsonscan.Null:
		return ""
	case jsonscan.String:
		if b := t.Bytes(); isNumber(b) {
			return json.Number(b)
		}
	}
	*fits = false
	return ""
}

// isNumber reports whether b is a number in JSON's grammar.
func isNumber(b []byte) bool {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return false
	}
	s := jsonscan.New(b)
	t, err := s.Value(1)
	return err == nil && t.Kind == jsonscan.Number && s.AtEnd() && len(t.Raw) == len(b)
}
