package render_test

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pgstack/pgstack/internal/render"
)

// One row per RFC 7396 rule, plus the guarantees pgstack adds (inputs are
// never modified; the result shares nothing with them).
func TestMergeOverrides(t *testing.T) {
	tests := []struct {
		name  string
		base  map[string]any
		patch map[string]any
		want  map[string]any
	}{
		{
			name:  "a new key is added",
			base:  map[string]any{"a": "b"},
			patch: map[string]any{"c": "d"},
			want:  map[string]any{"a": "b", "c": "d"},
		},
		{
			name:  "a scalar replaces a scalar",
			base:  map[string]any{"postgresVersion": int64(16)},
			patch: map[string]any{"postgresVersion": int64(17)},
			want:  map[string]any{"postgresVersion": int64(17)},
		},
		{
			name:  "null deletes a key",
			base:  map[string]any{"a": "b", "c": "d"},
			patch: map[string]any{"a": nil},
			want:  map[string]any{"c": "d"},
		},
		{
			name:  "null for a missing key is a no-op",
			base:  map[string]any{"a": "b"},
			patch: map[string]any{"x": nil},
			want:  map[string]any{"a": "b"},
		},
		{
			name:  "objects merge recursively",
			base:  map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"repos": []any{"r1"}, "image": "i"}}},
			patch: map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"image": "j", "manual": map[string]any{"repoName": "repo1"}}}},
			want:  map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"repos": []any{"r1"}, "image": "j", "manual": map[string]any{"repoName": "repo1"}}}},
		},
		{
			name:  "null deletes a nested key",
			base:  map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"repoHost": map[string]any{"x": "y"}, "repos": []any{"r1"}}}},
			patch: map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"repoHost": nil}}},
			want:  map[string]any{"backups": map[string]any{"pgbackrest": map[string]any{"repos": []any{"r1"}}}},
		},
		{
			name:  "a list replaces a list, never merges element by element",
			base:  map[string]any{"instances": []any{map[string]any{"name": "instance1", "replicas": int64(1)}}},
			patch: map[string]any{"instances": []any{map[string]any{"name": "big"}}},
			want:  map[string]any{"instances": []any{map[string]any{"name": "big"}}},
		},
		{
			name:  "an object replaces a scalar",
			base:  map[string]any{"a": "b"},
			patch: map[string]any{"a": map[string]any{"c": "d"}},
			want:  map[string]any{"a": map[string]any{"c": "d"}},
		},
		{
			name:  "a scalar replaces an object",
			base:  map[string]any{"a": map[string]any{"c": "d"}},
			patch: map[string]any{"a": "b"},
			want:  map[string]any{"a": "b"},
		},
		{
			name:  "nulls inside an object that replaces a non-object are dropped",
			base:  map[string]any{"a": "b"},
			patch: map[string]any{"a": map[string]any{"c": nil, "d": "e"}},
			want:  map[string]any{"a": map[string]any{"d": "e"}},
		},
		{
			name:  "an empty patch changes nothing",
			base:  map[string]any{"a": "b"},
			patch: map[string]any{},
			want:  map[string]any{"a": "b"},
		},
		{
			name:  "an empty object in the patch leaves a base object alone",
			base:  map[string]any{"a": map[string]any{"b": "c"}},
			patch: map[string]any{"a": map[string]any{}},
			want:  map[string]any{"a": map[string]any{"b": "c"}},
		},
		{
			name:  "a patch into a nil base builds the object",
			base:  nil,
			patch: map[string]any{"a": map[string]any{"b": "c"}},
			want:  map[string]any{"a": map[string]any{"b": "c"}},
		},
		{
			name:  "false and zero are values, not deletions",
			base:  map[string]any{"paused": true, "port": int64(5432)},
			patch: map[string]any{"paused": false, "port": int64(0)},
			want:  map[string]any{"paused": false, "port": int64(0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseBefore := deepCopyJSON(tt.base)
			patchBefore := deepCopyJSON(tt.patch)
			got := render.MergeOverrides(tt.base, tt.patch)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MergeOverrides(%v, %v)\n got %v\nwant %v", tt.base, tt.patch, got, tt.want)
			}
			if !reflect.DeepEqual(tt.base, baseBefore) || !reflect.DeepEqual(tt.patch, patchBefore) {
				t.Errorf("MergeOverrides modified its inputs: base %v, patch %v", tt.base, tt.patch)
			}
		})
	}
}

func TestMergeOverridesSharesNothingWithItsInputs(t *testing.T) {
	list := []any{"x"}
	inner := map[string]any{"k": "v"}
	base := map[string]any{"list": list, "inner": inner}
	got := render.MergeOverrides(base, map[string]any{"other": "y"})
	got["list"].([]any)[0] = "changed"
	got["inner"].(map[string]any)["k"] = "changed"
	if list[0] != "x" || inner["k"] != "v" {
		t.Errorf("changing the result changed the base: list %v, inner %v", list, inner)
	}
}

func deepCopyJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return runtime.DeepCopyJSON(m)
}
