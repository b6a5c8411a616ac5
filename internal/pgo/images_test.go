package pgo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/test/testenv"
)

const registry = "registry.developers.crunchydata.com/crunchydata/"

// pgo589Env is the operator container's env of PGO v5.8.9's release
// Deployment, read in place from PGO's material beside the repository.
func pgo589Env(t *testing.T) []corev1.EnvVar { return pgoReleaseEnv(t, "5.8.9") }

// pgoReleaseEnv is the operator container's env of a PGO release's Deployment.
func pgoReleaseEnv(t *testing.T, version string) []corev1.EnvVar {
	t.Helper()
	path := filepath.Join(testenv.PGODir(), "v"+version, "release", "manager.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("PGO's v%s release Deployment: %v (set %s)", version, err, testenv.PGODirEnv)
	}
	deployment := &appsv1.Deployment{}
	if err := yaml.Unmarshal(data, deployment); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(deployment.Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("%s has no container", path)
	}
	return deployment.Spec.Template.Spec.Containers[0].Env
}

func env(pairs ...string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, corev1.EnvVar{Name: pairs[i], Value: pairs[i+1]})
	}
	return out
}

// fromConfigMap sets a variable from a ConfigMap key: set, value unknown.
func fromConfigMap(name string) []corev1.EnvVar {
	return []corev1.EnvVar{{Name: name, ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "images"}, Key: "image"}}}}
}

func TestResolve(t *testing.T) {
	release := pgo589Env(t)
	tests := []struct {
		name         string
		csv, sub     []corev1.EnvVar
		req          ImageRequest
		wantPostgres Image
		wantBackRest Image
	}{
		{name: "the release's default for 16", csv: release, req: ImageRequest{PostgresVersion: 16},
			wantPostgres: Image{Ref: registry + "crunchy-postgres:ubi9-16.15-2633", From: "RELATED_IMAGE_POSTGRES_16"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "the stack's own image wins", csv: release, req: ImageRequest{PostgresVersion: 16, Postgres: "example.com/pg:16"},
			wantPostgres: Image{Ref: "example.com/pg:16", From: "spec"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "PostGIS picks the GIS variable", csv: release, req: ImageRequest{PostgresVersion: 17, PostGISVersion: "3.5"},
			wantPostgres: Image{Ref: registry + "crunchy-postgres-gis:ubi9-17.11-3.5-2633", From: "RELATED_IMAGE_POSTGRES_17_GIS_3.5"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "no default for 14", csv: release, req: ImageRequest{PostgresVersion: 14},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "no default for 16 with PostGIS 3.5", csv: release, req: ImageRequest{PostgresVersion: 16, PostGISVersion: "3.5"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "the Subscription's config.env replaces the CSV's", csv: release,
			sub:          env("RELATED_IMAGE_POSTGRES_16", "mirror.example.com/pg:16", "RELATED_IMAGE_PGBACKREST", "mirror.example.com/pgbackrest"),
			req:          ImageRequest{PostgresVersion: 16},
			wantPostgres: Image{Ref: "mirror.example.com/pg:16", From: "RELATED_IMAGE_POSTGRES_16"},
			wantBackRest: Image{Ref: "mirror.example.com/pgbackrest", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "the Subscription's config.env adds a version", csv: release, sub: env("RELATED_IMAGE_POSTGRES_14", "mirror.example.com/pg:14"),
			req:          ImageRequest{PostgresVersion: 14},
			wantPostgres: Image{Ref: "mirror.example.com/pg:14", From: "RELATED_IMAGE_POSTGRES_14"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "an empty value unsets, as os.Getenv reads it", csv: release, sub: env("RELATED_IMAGE_POSTGRES_16", ""),
			req:          ImageRequest{PostgresVersion: 16},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "a value from a ConfigMap is set, its value unknown", csv: release, sub: fromConfigMap("RELATED_IMAGE_POSTGRES_14"), req: ImageRequest{PostgresVersion: 14},
			wantPostgres: Image{From: "RELATED_IMAGE_POSTGRES_14"},
			wantBackRest: Image{Ref: registry + "crunchy-pgbackrest:ubi9-2.59.0-2633", From: "RELATED_IMAGE_PGBACKREST"}},
		{name: "a spec image for pgBackRest", csv: release, req: ImageRequest{PostgresVersion: 16, PGBackRest: "example.com/pgbackrest"},
			wantPostgres: Image{Ref: registry + "crunchy-postgres:ubi9-16.15-2633", From: "RELATED_IMAGE_POSTGRES_16"},
			wantBackRest: Image{Ref: "example.com/pgbackrest", From: "spec"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewCatalog(tt.csv, tt.sub, false).Resolve(tt.req)
			if got.Postgres != tt.wantPostgres {
				t.Errorf("Postgres = %+v, want %+v", got.Postgres, tt.wantPostgres)
			}
			if got.PGBackRest != tt.wantBackRest {
				t.Errorf("PGBackRest = %+v, want %+v", got.PGBackRest, tt.wantBackRest)
			}
		})
	}
}

func TestResolvePoolerAndExporter(t *testing.T) {
	got := NewCatalog(pgo589Env(t), nil, false).Resolve(ImageRequest{PostgresVersion: 16, PGExporter: "example.com/exporter"})
	if got.PGBouncer.Ref != registry+"crunchy-pgbouncer:ubi9-1.25-2633" || got.PGExporter != (Image{Ref: "example.com/exporter", From: "spec"}) {
		t.Errorf("Resolve = %+v", got)
	}
}

func TestPostgresVersions(t *testing.T) {
	c := NewCatalog(pgo589Env(t), nil, false)
	for _, tt := range []struct {
		gis  string
		want string
	}{{"", "[15 16 17 18]"}, {"3.4", "[16 17]"}, {"3.6", "[17 18]"}, {"9.9", "[]"}} {
		if got := fmt.Sprint(c.PostgresVersions(tt.gis)); got != tt.want {
			t.Errorf("PostgresVersions(%q) = %s, want %s", tt.gis, got, tt.want)
		}
	}
}

func TestMissingPostgresImage(t *testing.T) {
	release := pgo589Env(t)
	tests := []struct {
		name        string
		csv, sub    []corev1.EnvVar
		envFrom     bool
		req         ImageRequest
		wantMissing bool
		wantMsg     string
	}{
		{name: "14 without an image", csv: release, req: ImageRequest{PostgresVersion: 14}, wantMissing: true,
			wantMsg: "PGO 5.8.9 ships PostgreSQL images for 15, 16, 17, 18 (RELATED_IMAGE_POSTGRES_14 unset); set spec.postgres.image for 14"},
		{name: "14 with an image", csv: release, req: ImageRequest{PostgresVersion: 14, Postgres: "example.com/pg:14"}},
		{name: "16", csv: release, req: ImageRequest{PostgresVersion: 16}},
		{name: "14 supplied by the Subscription", csv: release, sub: env("RELATED_IMAGE_POSTGRES_14", "mirror.example.com/pg:14"), req: ImageRequest{PostgresVersion: 14}},
		{name: "PostGIS 3.5 on 16", csv: release, req: ImageRequest{PostgresVersion: 16, PostGISVersion: "3.5"}, wantMissing: true,
			wantMsg: "PGO 5.8.9 ships PostGIS 3.5 images for PostgreSQL 17 (RELATED_IMAGE_POSTGRES_16_GIS_3.5 unset); set spec.postgres.image for PostgreSQL 16 with PostGIS 3.5"},
		{name: "a PostGIS version never shipped", csv: release, req: ImageRequest{PostgresVersion: 16, PostGISVersion: "2.5"}, wantMissing: true,
			wantMsg: "PGO 5.8.9 ships no PostGIS 2.5 images"},
		{name: "a CSV declaring no PostgreSQL images cannot tell", csv: env("PGO_INSTALLER", "olm"), req: ImageRequest{PostgresVersion: 14}},
		{name: "env from a ConfigMap may hold it", csv: release, envFrom: true, req: ImageRequest{PostgresVersion: 14}},
		{name: "the Subscription unsets 16", csv: release, sub: env("RELATED_IMAGE_POSTGRES_16", ""), req: ImageRequest{PostgresVersion: 16}, wantMissing: true,
			wantMsg: "ships PostgreSQL images for 15, 17, 18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, missing := NewCatalog(tt.csv, tt.sub, tt.envFrom).MissingPostgresImage(tt.req, "5.8.9")
			if missing != tt.wantMissing || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("MissingPostgresImage = %v %q, want %v %q", missing, msg, tt.wantMissing, tt.wantMsg)
			}
		})
	}
}

func TestImageRequestFor(t *testing.T) {
	pc := cluster(t, `
spec:
  postgresVersion: 17
  postGISVersion: "3.6"
  image: example.com/pg
  backups: {pgbackrest: {image: example.com/br}}
  proxy: {pgBouncer: {image: example.com/pb}}
  monitoring: {pgmonitor: {exporter: {image: example.com/ex}}}`)
	want := ImageRequest{PostgresVersion: 17, PostGISVersion: "3.6", Postgres: "example.com/pg", PGBackRest: "example.com/br", PGBouncer: "example.com/pb", PGExporter: "example.com/ex",
		UsesPGBackRest: true, UsesPGBouncer: true, UsesExporter: true}
	if got := ImageRequestFor(pc); got != want {
		t.Errorf("ImageRequestFor = %+v, want %+v", got, want)
	}
	// Without backups, a pooler or monitoring, PGO runs none of their images.
	if got, want := ImageRequestFor(cluster(t, "spec: {postgresVersion: 16}")), (ImageRequest{PostgresVersion: 16}); got != want {
		t.Errorf("ImageRequestFor(bare) = %+v, want %+v", got, want)
	}
}
