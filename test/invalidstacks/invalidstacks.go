// Package invalidstacks is the one table of invalid PostgresStacks, judged
// by both of pgstack's judges: the API server (the CRD's OpenAPI schema and
// CEL rules, api/v1alpha1/validation_test.go) and the renderer
// (render.Render, which runs render.Validate and then checks the merged
// PostgresCluster, internal/render/render_test.go).
//
// Each file in testdata/ holds one stack, opens with a comment saying what
// is wrong with it, and says under refusedBy which judge refuses it and
// what the refusal must say:
//
//	# A restore and a clone at once.
//	refusedBy:
//	  apiServer: ["postgres.restore and postgres.cloneFrom cannot be used together"]
//	  render: ["postgres.cloneFrom"]
//	stack:
//	  apiVersion: platform.pgstack.dev/v1alpha1
//	  kind: PostgresStack
//	  metadata: {name: restore-and-clone-at-once}
//	  spec: {postgres: {restore: {id: a}, cloneFrom: {clusterName: b, repoName: repo1}}}
//
// A judge left out must admit the stack, so the table says exactly who
// refuses what, and a rule added to either judge shows up here.
package invalidstacks

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

//go:embed testdata/*.yaml
var files embed.FS

// Case is one invalid stack and what each judge must say about it.
type Case struct {
	// Name is the file's name without .yaml.
	Name string
	// Stack is the PostgresStack as the file writes it, in JSON: what a
	// person would send, before any Go type could reshape it.
	Stack []byte
	// APIServer holds what the API server's refusal must contain; nil
	// when the API server admits the stack.
	APIServer []string
	// Render holds what the renderer's refusal (decoding included, as
	// `pgstack render` decodes) must contain; nil when it renders.
	Render []string
}

type file struct {
	RefusedBy struct {
		APIServer []string `json:"apiServer"`
		Render    []string `json:"render"`
	} `json:"refusedBy"`
	Stack json.RawMessage `json:"stack"`
}

// Load reads every case, refusing a file that does not say what it shows,
// names no judge, or expects an empty message.
func Load() ([]Case, error) {
	entries, err := files.ReadDir("testdata")
	if err != nil {
		return nil, err
	}
	var cases []Case
	for _, e := range entries {
		name := path.Join("testdata", e.Name())
		text, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(text, []byte("# ")) {
			return nil, fmt.Errorf("%s does not open with a comment saying what is wrong with the stack", name)
		}
		var f file
		if err := yaml.UnmarshalStrict(text, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c := Case{Name: strings.TrimSuffix(e.Name(), ".yaml"), Stack: f.Stack, APIServer: f.RefusedBy.APIServer, Render: f.RefusedBy.Render}
		if len(c.Stack) == 0 {
			return nil, fmt.Errorf("%s has no stack", name)
		}
		if c.APIServer == nil && c.Render == nil {
			return nil, fmt.Errorf("%s: refusedBy names neither apiServer nor render", name)
		}
		if (c.APIServer != nil && len(c.APIServer) == 0) || (c.Render != nil && len(c.Render) == 0) {
			return nil, fmt.Errorf("%s: a judge that refuses the stack must be given what its refusal says", name)
		}
		for _, want := range append(append([]string{}, c.APIServer...), c.Render...) {
			if want == "" {
				return nil, fmt.Errorf("%s: an empty expected message matches anything", name)
			}
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// Check fails t unless err is the verdict the table expects of the judge
// named who: no error when want is nil (the judge admits the stack), else
// an error saying each of want.
func Check(t testing.TB, who string, want []string, err error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("the table says %s admits this stack, but %s refused it (add what it says under the file's refusedBy): %v", who, who, err)
	case want == nil:
		// Admitted, as the table says.
	case err == nil:
		t.Fatalf("%s admitted this stack; the table says it refuses it", who)
	default:
		t.Logf("%s: %v", who, err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s's refusal does not say %q: %v", who, w, err)
			}
		}
	}
}
