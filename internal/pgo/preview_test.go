package pgo

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The real 5.8.8 -> 5.8.9 upgrade moves every default image (tag 2550 ->
// 2633), so every cluster that names none restarts.
func TestPreviewOperatorUpgrade(t *testing.T) {
	current := NewCatalog(pgoReleaseEnv(t, "5.8.8"), nil, false)
	next := NewCatalog(pgoReleaseEnv(t, "5.8.9"), nil, false)
	withoutPG16 := func() Catalog {
		var pairs []string
		for _, e := range pgoReleaseEnv(t, "5.8.9") {
			if e.Name != "RELATED_IMAGE_POSTGRES_16" {
				pairs = append(pairs, e.Name, e.Value)
			}
		}
		return NewCatalog(env(pairs...), nil, false)
	}()
	pg16 := registry + "crunchy-postgres:ubi9-16.11-2550"
	tests := []struct {
		name         string
		req          ImageRequest
		next         Catalog
		wantRestarts bool
		// wantChanges lists component=from->to, tags only.
		wantChanges string
		wantStrand  string
	}{
		{name: "defaults everywhere: everything it runs changes",
			req: ImageRequest{PostgresVersion: 16, UsesPGBackRest: true, UsesPGBouncer: true, UsesExporter: true}, next: next,
			wantRestarts: true,
			wantChanges:  "postgres=ubi9-16.11-2550->ubi9-16.15-2633 pgbackrest=ubi9-2.56.0-2550->ubi9-2.59.0-2633 pgbouncer=ubi9-1.25-2550->ubi9-1.25-2633 exporter=ubi9-0.18.1-2550->ubi9-0.19.1-2633"},
		{name: "components not used are not named", req: ImageRequest{PostgresVersion: 17}, next: next,
			wantRestarts: true, wantChanges: "postgres=ubi9-17.7-2550->ubi9-17.11-2633"},
		{name: "every database image pinned: nothing restarts",
			req: ImageRequest{PostgresVersion: 16, Postgres: pg16, UsesPGBackRest: true, PGBackRest: "example.com/pgbackrest:1"}, next: next},
		{name: "pinned PostgreSQL, default pgBackRest: pgBackRest alone restarts it",
			req: ImageRequest{PostgresVersion: 16, Postgres: pg16, UsesPGBackRest: true}, next: next,
			wantRestarts: true, wantChanges: "pgbackrest=ubi9-2.56.0-2550->ubi9-2.59.0-2633"},
		{name: "only PgBouncer changes: the pooler rolls, the database does not",
			req:  ImageRequest{PostgresVersion: 16, Postgres: pg16, UsesPGBouncer: true},
			next: next, wantChanges: "pgbouncer=ubi9-1.25-2550->ubi9-1.25-2633"},
		{name: "the same PGO again: nothing", req: ImageRequest{PostgresVersion: 16, UsesPGBackRest: true}, next: current},
		{name: "the next PGO drops PostgreSQL 16: stranded", req: ImageRequest{PostgresVersion: 16}, next: withoutPG16,
			wantRestarts: true, wantChanges: "postgres=ubi9-16.11-2550->none", wantStrand: "PGO 5.8.9 ships PostgreSQL images for 15, 17, 18"},
		{name: "a pinned image is never stranded", req: ImageRequest{PostgresVersion: 16, Postgres: pg16}, next: withoutPG16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PreviewOperatorUpgrade(tt.req, current, tt.next, "5.8.9")
			var changes []string
			for _, c := range got.Changes {
				changes = append(changes, fmt.Sprintf("%s=%s->%s", c.Component, tag(c.From), tag(c.To)))
			}
			if got.Restarts != tt.wantRestarts || strings.Join(changes, " ") != tt.wantChanges {
				t.Errorf("restarts %v changes %q, want %v %q", got.Restarts, strings.Join(changes, " "), tt.wantRestarts, tt.wantChanges)
			}
			if (tt.wantStrand == "") != (got.Stranded == "") || !strings.Contains(got.Stranded, tt.wantStrand) {
				t.Errorf("stranded %q, want it to say %q", got.Stranded, tt.wantStrand)
			}
		})
	}
}

// An image whose variable takes its value from a ConfigMap cannot be
// compared: the preview counts it as a change.
func TestPreviewCountsAnUnreadableImageAsAChange(t *testing.T) {
	release := pgo589Env(t)
	current := NewCatalog(release, nil, false)
	next := NewCatalog(release, fromConfigMap("RELATED_IMAGE_POSTGRES_16"), false)
	got := PreviewOperatorUpgrade(ImageRequest{PostgresVersion: 16}, current, next, "5.8.9")
	if !got.Restarts || len(got.Changes) != 1 || got.Changes[0].To != "unknown" {
		t.Errorf("preview = %+v", got)
	}
}

func tag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func TestPinImages(t *testing.T) {
	pins := map[string]string{ComponentPostgres: "pg:16-old", ComponentPGBackRest: "br:old", ComponentPGBouncer: "pb:old", ComponentExporter: "ex:old"}
	tests := []struct {
		name, spec string
		want       map[string]string // component -> image named after pinning; absent: none
	}{
		{name: "defaults everywhere: each component that runs is pinned",
			spec: "spec: {postgresVersion: 16, backups: {pgbackrest: {repos: [{name: repo1}]}}, proxy: {pgBouncer: {replicas: 1}}}",
			want: map[string]string{ComponentPostgres: "pg:16-old", ComponentPGBackRest: "br:old", ComponentPGBouncer: "pb:old"}},
		{name: "an image the stack names is kept",
			spec: "spec: {postgresVersion: 16, image: mine:1, monitoring: {pgmonitor: {exporter: {}}}}",
			want: map[string]string{ComponentPostgres: "mine:1", ComponentExporter: "ex:old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := cluster(t, tt.spec)
			if err := PinImages(pc, pins); err != nil {
				t.Fatal(err)
			}
			for component, p := range imagePaths {
				got, _, _ := unstructured.NestedString(pc.Object, p.image...)
				if got != tt.want[component] {
					t.Errorf("%s image = %q, want %q", component, got, tt.want[component])
				}
			}
			if _, found, _ := unstructured.NestedFieldNoCopy(pc.Object, "spec", "proxy"); found != (tt.want[ComponentPGBouncer] != "") {
				t.Error("pinning added or lost the pooler section")
			}
			if n := NamedImages(pc, pins); n != len(tt.want)-strings.Count(fmt.Sprint(tt.want), "mine") {
				t.Errorf("NamedImages = %d", n)
			}
		})
	}
	if err := PinImages(cluster(t, "spec: {}"), map[string]string{"collector": "x"}); err == nil {
		t.Error("an unknown component is pinned")
	}
}
