package argocd_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// actionsKey is the argocd-cm key Argo CD reads the resource actions from.
const actionsKey = "resource.customizations.actions.platform.pgstack.dev_PostgresStack"

// tokenPattern is the CRD's pattern for an operation token
// (api/v1alpha1/operations_types.go).
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$`)

// actionsConfig is the actions value of argocd-cm, as Argo CD reads it.
type actionsConfig struct {
	Discovery   string `json:"discovery.lua"`
	Definitions []struct {
		Name   string `json:"name"`
		Action string `json:"action.lua"`
	} `json:"definitions"`
}

func TestArgoCDConfigMapPatchCarriesTheActions(t *testing.T) {
	var cfg actionsConfig
	if err := yaml.UnmarshalStrict([]byte(configMapPatch(t)[actionsKey]), &cfg); err != nil {
		t.Fatalf("%s: %v", actionsKey, err)
	}
	if cfg.Discovery != readFile(t, "actions/discovery.lua") {
		t.Errorf("the patch's discovery.lua differs from actions/discovery.lua; copy it into the patch")
	}
	var names []string
	for _, d := range cfg.Definitions {
		names = append(names, d.Name)
		if d.Action != readFile(t, "actions/"+d.Name+".lua") {
			t.Errorf("the patch's action %s differs from actions/%s.lua; copy it into the patch", d.Name, d.Name)
		}
	}
	if fmt.Sprint(names) != "[backup-now restart switchover]" {
		t.Errorf("the patch defines actions %v, want backup-now, restart, switchover", names)
	}
}

// Discovery offers what the stack would take, and each action writes a new
// token the API server's schema admits, keeping what else the stack says.
func TestArgoCDActions(t *testing.T) {
	stack := func(spec, status string) map[string]any {
		u := map[string]any{}
		text := "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: hippo, namespace: team-a, generation: 3}\nspec: " + spec + "\nstatus: " + status
		if err := yaml.Unmarshal([]byte(text), &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ha := stack(`{postgres: {replicas: 2}, operations: {backup: {token: b1, repoName: repo1, options: ["--type=full"]}, switchover: {token: s1, targetInstance: hippo-instance1-abcd}}}`,
		`{cluster: {instances: 2}}`)
	single := stack(`{postgres: {backups: {enabled: false}}}`, `{cluster: {instances: 1}}`)
	fresh := stack(`{}`, `{}`)

	t.Run("discovery", func(t *testing.T) {
		for _, tt := range []struct {
			name         string
			obj          map[string]any
			wantDisabled map[string]bool
		}{
			{"an HA stack with backups", ha, map[string]bool{"backup-now": false, "restart": false, "switchover": false}},
			{"one instance without backups", single, map[string]bool{"backup-now": true, "restart": false, "switchover": true}},
			{"a stack without status", fresh, map[string]bool{"backup-now": false, "restart": false, "switchover": true}},
		} {
			got := runLua(t, readFile(t, "actions/discovery.lua"), tt.obj).(map[string]any)
			disabled := map[string]bool{}
			for name, a := range got {
				disabled[name] = a.(map[string]any)["disabled"] == true
			}
			if fmt.Sprint(disabled) != fmt.Sprint(tt.wantDisabled) {
				t.Errorf("%s: disabled %v, want %v", tt.name, disabled, tt.wantDisabled)
			}
		}
	})

	for _, tt := range []struct {
		action string
		obj    map[string]any
		// check reads the operation the action set, and what must stay.
		token func(*platformv1alpha1.Operations) platformv1alpha1.OperationToken
		kept  func(*platformv1alpha1.Operations) string
	}{
		{"backup-now", ha, func(o *platformv1alpha1.Operations) platformv1alpha1.OperationToken { return o.Backup.Token },
			func(o *platformv1alpha1.Operations) string {
				return fmt.Sprintf("%s %v %s %s", o.Backup.RepoName, o.Backup.Options, o.Switchover.Token, o.Switchover.TargetInstance)
			}},
		{"backup-now", fresh, func(o *platformv1alpha1.Operations) platformv1alpha1.OperationToken { return o.Backup.Token }, nil},
		{"restart", ha, func(o *platformv1alpha1.Operations) platformv1alpha1.OperationToken { return o.Restart.Token },
			func(o *platformv1alpha1.Operations) string {
				return fmt.Sprintf("%s %s", o.Backup.Token, o.Switchover.Token)
			}},
		{"switchover", ha, func(o *platformv1alpha1.Operations) platformv1alpha1.OperationToken { return o.Switchover.Token },
			func(o *platformv1alpha1.Operations) string {
				return fmt.Sprintf("%s /%s", o.Backup.Token, o.Switchover.TargetInstance)
			}},
	} {
		t.Run(tt.action, func(t *testing.T) {
			before := decodeStack(t, tt.obj)
			got := runLua(t, readFile(t, "actions/"+tt.action+".lua"), tt.obj).(map[string]any)
			after := decodeStack(t, got)
			if after.Spec.Operations == nil {
				t.Fatalf("%s set no spec.operations: %v", tt.action, got["spec"])
			}
			token := tt.token(after.Spec.Operations)
			if !tokenPattern.MatchString(string(token)) || len(token) > 63 {
				t.Errorf("%s wrote token %q, which the CRD refuses", tt.action, token)
			}
			if tokenBefore(before.Spec.Operations, tt.action) == token {
				t.Errorf("%s left the token at %q: nothing would run", tt.action, token)
			}
			if tt.kept != nil {
				want := map[string]string{"backup-now": "repo1 [--type=full] s1 hippo-instance1-abcd", "restart": "b1 s1", "switchover": "b1 /"}[tt.action]
				if k := tt.kept(after.Spec.Operations); k != want {
					t.Errorf("%s kept %q, want %q", tt.action, k, want)
				}
			}
			after.Spec.Operations, before.Spec.Operations = nil, nil
			if !equality.Semantic.DeepEqual(after, before) {
				t.Errorf("%s changed more than spec.operations", tt.action)
			}
		})
	}
}

// tokenBefore is the token an action would replace; empty when none.
func tokenBefore(o *platformv1alpha1.Operations, action string) platformv1alpha1.OperationToken {
	switch {
	case o == nil:
	case action == "backup-now" && o.Backup != nil:
		return o.Backup.Token
	case action == "restart" && o.Restart != nil:
		return o.Restart.Token
	case action == "switchover" && o.Switchover != nil:
		return o.Switchover.Token
	}
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// runLua runs an action script as Argo CD does: obj is a global table, os
// (for os.date) can be required, and the script returns a table, converted
// back as Argo CD converts it.
func runLua(t *testing.T, script string, obj map[string]any) any {
	t.Helper()
	l := lua.NewState()
	defer l.Close()
	l.SetGlobal("obj", toLua(l, runtime.DeepCopyJSON(obj)))
	if err := l.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	return fromLua(l.Get(-1))
}

// fromLua converts a Lua value back: a table with keys 1..n is an array.
func fromLua(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return float64(x)
	case *lua.LTable:
		if n := x.Len(); n > 0 {
			out := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				out = append(out, fromLua(x.RawGetInt(i)))
			}
			return out
		}
		out := map[string]any{}
		x.ForEach(func(k, v lua.LValue) { out[k.String()] = fromLua(v) })
		return out
	}
	return nil
}

func decodeStack(t *testing.T, obj map[string]any) *platformv1alpha1.PostgresStack {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	s := &platformv1alpha1.PostgresStack{}
	if err := json.Unmarshal(data, s); err != nil {
		t.Fatalf("the action's result is no PostgresStack: %v", err)
	}
	return s
}
