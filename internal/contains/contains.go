// Package contains tells whether a live object already holds every field
// pgstack would apply, so that steady state costs no API writes.
package contains

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationApplied holds a digest of everything pgstack applied to an
// object (Stamp).
const AnnotationApplied = "platform.pgstack.dev/applied"

// Stamp records in obj's AnnotationApplied a digest of obj as it stands
// (that annotation aside). Fields alone cannot see a field pgstack stops
// applying (the live object still holds it, so it contains everything
// desired): with the stamp, whatever pgstack adds, changes or drops changes
// the digest, and Fields tells the difference without keeping a copy of
// what was applied.
func Stamp(obj *unstructured.Unstructured) error {
	annotations := obj.GetAnnotations()
	delete(annotations, AnnotationApplied)
	if len(annotations) == 0 {
		annotations = nil // no metadata.annotations at all, as before the first stamp
	}
	obj.SetAnnotations(annotations)
	data, err := json.Marshal(obj.Object) // map keys in order: the same object, the same bytes
	if err != nil {
		return fmt.Errorf("stamp %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	sum := sha256.Sum256(data)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationApplied] = hex.EncodeToString(sum[:12])
	obj.SetAnnotations(annotations)
	return nil
}

// Fields reports whether every field set in desired has the same value in
// live. Fields the API server or PGO add (defaults, status) do not count, so a
// PostgresCluster that already holds what pgstack would apply is not written
// again, and drift is still caught. Numbers compare by value whatever their
// Go type: the live object's come from JSON (int64, float64), the desired
// one's from Go values.
func Fields(live, desired map[string]any) bool {
	return value(live, desired)
}

func value(live, desired any) bool {
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
			if !value(l[k], dv) {
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
			if !value(l[i], d[i]) {
				return false
			}
		}
		return true
	case nil, string, bool:
		return live == desired
	}
	if dn, ok := number(desired); ok {
		ln, ok := number(live)
		return ok && ln == dn
	}
	// Any other Go value (a typed slice or map set by hand): compare it as
	// the API server would store it.
	if stored, ok := viaJSON(desired); ok {
		return value(live, stored)
	}
	return reflect.DeepEqual(live, desired)
}

// number is v as a float64 when v is a Go number; int64 values beyond 2^53
// do not occur in a PostgresCluster's spec (quantities are strings).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// viaJSON passes v through JSON, which yields only the kinds value handles
// (maps, slices, strings, float64, bool, nil); false when v does not encode.
func viaJSON(v any) (any, bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	return out, json.Unmarshal(data, &out) == nil
}
