package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgstack/pgstack/test/testenv"
)

// The demo's own code, as `DEMO_EXIT=1 make demo` runs it: the output shows
// hippo Ready, the adopted-or-created Subscription, the approved InstallPlan,
// the Succeeded CSV and the PostgresCluster, and nothing is left behind.
func TestDemoEndsWithHippoReady(t *testing.T) {
	manager := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the manager: %v\n%s", err, out)
	}
	var out bytes.Buffer
	err := Run(context.Background(), Options{Manager: manager, Exit: true, ReadyTimeout: 4 * time.Minute, Out: &out})
	text := out.String()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, text)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Ready=True: PGO 5\.8\.9 is installed`),
		regexp.MustCompile(`(?m)^default\s+hippo\s+True\s+Ready\s+5\.8\.9\s.*hippo`), // kubectl get postgresstacks
		regexp.MustCompile(`(?m)^subscription\.operators\.coreos\.com/postgresql\s+postgresql\s+operatorhubio-catalog\s+v5`),
		regexp.MustCompile(`(?m)^installplan\.operators\.coreos\.com/install-\S+\s+postgresoperator\.v5\.8\.9\s+Manual\s+true`),
		regexp.MustCompile(`(?m)^clusterserviceversion\.operators\.coreos\.com/postgresoperator\.v5\.8\.9\s.*Succeeded`),
		regexp.MustCompile(`(?m)^hippo\s`),                         // kubectl get postgrescluster
		regexp.MustCompile(`Type\s+Reason\s+Age\s+From\s+Message`), // describe shows events
		// What PGO's own manager made for hippo, and the conditions it wrote.
		regexp.MustCompile(`(?m)^statefulset\.apps/hippo-instance1-\S+\s+1/1`),
		regexp.MustCompile(`(?m)^statefulset\.apps/hippo-repo-host\s+1/1`),
		regexp.MustCompile(`(?m)^service/hippo-primary\s`),
		regexp.MustCompile(`(?m)^secret/hippo-pguser-hippo\s`),
		regexp.MustCompile(`(?m)^persistentvolumeclaim/\S+\s+Bound\s`),
		regexp.MustCompile(`PGBackRestReplicaRepoReady=True \(StanzaCreated\)`),
		regexp.MustCompile(`PGBackRestReplicaCreate=True \(RepoBackupComplete\)`),
	} {
		if !want.MatchString(text) {
			t.Errorf("demo output lacks %s\n%s", want, text)
		}
	}
	m := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("demo output does not say how to point kubectl at the cluster")
	}
	if _, err := os.Stat(filepath.Dir(m[1])); !os.IsNotExist(err) {
		t.Errorf("the demo left its directory %s behind (stat: %v)", filepath.Dir(m[1]), err)
	}
	if strings.Contains(text, "panic") {
		t.Errorf("demo output mentions a panic:\n%s", text)
	}
}
