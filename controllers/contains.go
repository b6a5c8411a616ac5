package controllers

import (
	"encoding/json"
	"reflect"
)

// containsFields reports whether every field set in desired has the same value in
// live. Fields the API server or PGO add (defaults, status) do not count, so a
// PostgresCluster that already holds what pgstack would apply is not written
// again: steady state costs no API writes, and drift is still caught.
func containsFields(live, desired map[string]any) bool {
	return containsValue(normalize(live), normalize(desired))
}

func containsValue(live, desired any) bool {
	switch d := desired.(type) {
	case map[string]any:
		if len(d) == 0 && live == nil {
			return true // an empty object is dropped by the server
		}
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, dv := range d {
			if !containsValue(l[k], dv) {
				return false
			}
		}
		return true
	case []any:
		if len(d) == 0 && live == nil {
			return true
		}
		l, ok := live.([]any)
		if !ok || len(l) != len(d) {
			return false
		}
		for i := range d {
			if !containsValue(l[i], d[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(live, desired)
	}
}

// normalize passes v through JSON so that numbers compare alike whatever
// their Go type (int, int64, float64).
func normalize(v map[string]any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return v
	}
	return out
}
