package cdctest

import "encoding/json"

// NaiveFlat is the baseline docs/design.md §9 measures the flattening against: a
// DMS record turned into a flat record the obvious way, unmarshalled into
// a map, reshaped into a flat map and marshalled again.
func NaiveFlat(rec []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(rec, &m); err != nil {
		return nil, err
	}
	meta, _ := m["metadata"].(map[string]any)
	data, _ := m["data"].(map[string]any)
	flat := make(map[string]any, len(data)+3)
	for k, v := range data {
		flat[k] = v
	}
	flat["recordType"] = meta["table-name"]
	flat["operation"] = meta["operation"]
	flat["sourceTimestamp"] = meta["timestamp"]
	return json.Marshal(flat)
}
