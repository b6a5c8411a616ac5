package render

// MergeOverrides applies patch to base with JSON merge patch semantics
// (RFC 7396) and returns the result; neither argument is modified.
//
//   - an object in the patch merges into the object in base, key by key,
//     recursively;
//   - a null value deletes the key;
//   - any other value (string, number, bool, list) replaces what base held,
//     and so does an object where base held a non-object;
//   - keys base has and the patch does not are kept.
//
// Lists replace rather than merge because RFC 7396 has no way to address a
// list element; that is what makes the result predictable.
func MergeOverrides(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = deepCopy(v)
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		patchObject, patchIsObject := pv.(map[string]any)
		baseObject, baseIsObject := out[k].(map[string]any)
		switch {
		case patchIsObject && baseIsObject:
			out[k] = MergeOverrides(baseObject, patchObject)
		case patchIsObject:
			// RFC 7396 applies the patch object to an empty target, so
			// nulls inside it vanish rather than being stored.
			out[k] = MergeOverrides(nil, patchObject)
		default:
			out[k] = deepCopy(pv)
		}
	}
	return out
}

// deepCopy copies the JSON-shaped values the renderer builds, so that the
// merged result shares no maps or slices with its inputs.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
