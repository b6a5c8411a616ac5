// Package conformance_test proves, against a real API server, that every
// sample is a PostgresStack the API server accepts and that what it renders
// to is a PostgresCluster PGO's real CRD accepts, with nothing pruned.
//
// It lives apart from package render so that render's fuzz workers (which
// re-run TestMain) never start an API server.
package conformance_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunTests(m, func(e *testenv.Env) error { env = e; return nil }))
}

const namespace = "samples"

func samples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "platform_v1alpha1_postgresstack_*.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("want at least ten samples, found %d (%v)", len(files), err)
	}
	return files
}

// Every sample is accepted as a PostgresStack; the stack the API server
// stores (defaulted by the CRD) renders to the same PostgresCluster as the
// file does (so the renderer's defaults agree with the CRD's), and that
// PostgresCluster passes PGO's real CRD through server-side apply
// (dry run, field owner pgstack) with every field it sent kept.
func TestEverySampleIsAcceptedAndRendersAnAcceptedPostgresCluster(t *testing.T) {
	ctx := context.Background()
	t.Logf("PostgresCluster schema: %s", env.PGOSchema)
	if !env.PGOSchema.Real {
		t.Logf("warning: validating against pgstack's fallback schema, not PGO's real CRD")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, sample := range samples(t) {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			f, err := os.Open(sample)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			stacks, err := render.DecodeStacks(f)
			if err != nil || len(stacks) != 1 {
				t.Fatalf("decode: %d stacks, %v", len(stacks), err)
			}
			fromFile := stacks[0]
			fromFile.Namespace = namespace

			if err := env.Client.Create(ctx, fromFile.DeepCopy()); err != nil {
				t.Fatalf("the API server rejects the sample: %v", err)
			}
			t.Cleanup(func() { _ = env.Client.Delete(ctx, fromFile) })
			stored := &v1alpha1.PostgresStack{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fromFile), stored); err != nil {
				t.Fatal(err)
			}

			cluster, err := render.Render(stored)
			if err != nil {
				t.Fatalf("render the stored stack: %v", err)
			}
			offline, err := render.Render(fromFile)
			if err != nil {
				t.Fatalf("render the file: %v", err)
			}
			if !reflect.DeepEqual(cluster.Object, offline.Object) {
				a, _ := yaml.Marshal(cluster.Object)
				b, _ := yaml.Marshal(offline.Object)
				t.Errorf("the stored (API-defaulted) stack renders differently from the file:\n--- stored\n%s\n--- file\n%s", a, b)
			}

			applied := cluster.DeepCopy()
			if err := apply(ctx, applied); err != nil {
				t.Fatalf("PGO's PostgresCluster CRD rejects the rendered cluster: %v", err)
			}
			if path, ok := keeps(cluster.Object, applied.Object, ""); !ok {
				t.Errorf("the API server pruned or changed %s: the renderer wrote a field PGO's schema does not have", path)
			}
		})
	}
}

// apply server-side-applies a PostgresCluster as a dry run. The CRD is
// served a moment after it is Established, so NotFound is retried within a
// bound; any other error is the answer.
func apply(ctx context.Context, cluster *unstructured.Unstructured) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		last = env.Client.Patch(ctx, cluster, client.Apply, client.FieldOwner("pgstack"), client.DryRunAll, client.ForceOwnership)
		if apierrors.IsNotFound(last) {
			return false, nil
		}
		return true, last
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// keeps reports whether every field of sent is in got with the same value,
// and the path of the first that is not. The API server adds defaults, so
// got may hold more; it must never hold less.
func keeps(sent, got any, path string) (string, bool) {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range s {
			if p, ok := keeps(v, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return path, false
		}
		for i := range s {
			if p, ok := keeps(s[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		if fmt.Sprint(sent) != fmt.Sprint(got) {
			return fmt.Sprintf("%s (sent %v, got %v)", strings.TrimPrefix(path, "."), sent, got), false
		}
		return "", true
	}
}
