package pgo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The environment variables PGO reads its default images from when the
// PostgresCluster names none (PGO v5.8.9 internal/config/config.go:15-20,
// :57-129). PostgreSQL's is per major version, and per PostGIS version:
// RELATED_IMAGE_POSTGRES_16, RELATED_IMAGE_POSTGRES_16_GIS_3.4.
const (
	EnvPostgresPrefix = "RELATED_IMAGE_POSTGRES_"
	EnvPGBackRest     = "RELATED_IMAGE_PGBACKREST"
	EnvPGBouncer      = "RELATED_IMAGE_PGBOUNCER"
	EnvPGExporter     = "RELATED_IMAGE_PGEXPORTER"
	gisInfix          = "_GIS_"
)

// ImageRequest is what PGO picks a PostgresCluster's images by: its
// versions and the images its spec names.
type ImageRequest struct {
	// PostgresVersion is spec.postgresVersion, the major version.
	PostgresVersion int64
	// PostGISVersion is spec.postGISVersion, such as "3.4"; empty without PostGIS.
	PostGISVersion string
	// Postgres, PGBackRest, PGBouncer and PGExporter are the images the spec
	// names (spec.image, spec.backups.pgbackrest.image,
	// spec.proxy.pgBouncer.image, spec.monitoring.pgmonitor.exporter.image).
	Postgres, PGBackRest, PGBouncer, PGExporter string
	// PGBackRest, PGBouncer and the exporter run only when the spec asks for
	// them (spec.backups.pgbackrest, spec.proxy.pgBouncer,
	// spec.monitoring.pgmonitor.exporter).
	UsesPGBackRest, UsesPGBouncer, UsesExporter bool
}

// ImageRequestFor reads the request out of a PostgresCluster (such as the one
// pgstack renders, overrides merged), so that it sees what PGO will see.
func ImageRequestFor(pc *unstructured.Unstructured) ImageRequest {
	get := func(path ...string) string {
		s, _, _ := unstructured.NestedString(pc.Object, append([]string{"spec"}, path...)...)
		return s
	}
	version, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
	present := func(path ...string) bool {
		_, found, _ := unstructured.NestedFieldNoCopy(pc.Object, append([]string{"spec"}, path...)...)
		return found
	}
	return ImageRequest{
		UsesPGBackRest:  present("backups", "pgbackrest"),
		UsesPGBouncer:   present("proxy", "pgBouncer"),
		UsesExporter:    present("monitoring", "pgmonitor", "exporter"),
		PostgresVersion: version,
		PostGISVersion:  get("postGISVersion"),
		Postgres:        get("image"),
		PGBackRest:      get("backups", "pgbackrest", "image"),
		PGBouncer:       get("proxy", "pgBouncer", "image"),
		PGExporter:      get("monitoring", "pgmonitor", "exporter", "image"),
	}
}

// Image is one resolved container image.
type Image struct {
	// Ref is the image reference; empty when none is found, or when the
	// environment variable supplying it takes its value from elsewhere
	// (valueFrom), which pgstack does not read.
	Ref string
	// From says where it comes from: "spec" when the PostgresCluster names
	// it, else the environment variable's name; empty when nothing supplies it.
	From string
}

// Found reports whether something supplies the image.
func (i Image) Found() bool { return i.From != "" }

// Images are the images PGO would run a PostgresCluster with.
type Images struct {
	Postgres, PGBackRest, PGBouncer, PGExporter Image
}

// Catalog is the default images one installed PGO runs clusters with: its
// operator container's environment as its CSV's Deployment declares it,
// with the Subscription's spec.config.env entries replacing same-named ones,
// as OLM merges them into every container it installs.
type Catalog struct {
	env map[string]string
	// valueFrom names variables whose value comes from a ConfigMap, Secret or
	// field: set, value unknown.
	valueFrom map[string]bool
	// opaque: variables may also come from ConfigMaps or Secrets (envFrom),
	// so a variable absent here may still be set in PGO's process.
	opaque bool
}

// NewCatalog builds the catalog from the operator container's env in the
// CSV and the Subscription's spec.config.env. envFrom says whether the
// container or the Subscription also takes variables wholesale from
// ConfigMaps or Secrets.
func NewCatalog(csvEnv, subscriptionEnv []corev1.EnvVar, envFrom bool) Catalog {
	c := Catalog{env: map[string]string{}, valueFrom: map[string]bool{}, opaque: envFrom}
	for _, list := range [][]corev1.EnvVar{csvEnv, subscriptionEnv} {
		for _, e := range list {
			delete(c.env, e.Name)
			delete(c.valueFrom, e.Name)
			if e.ValueFrom != nil {
				c.valueFrom[e.Name] = true
				continue
			}
			c.env[e.Name] = e.Value
		}
	}
	return c
}

// lookup finds a variable as PGO's os.Getenv would: an empty value counts
// as unset (internal/config/config.go:15-20).
func (c Catalog) lookup(name string) Image {
	if c.valueFrom[name] {
		return Image{From: name}
	}
	if v := c.env[name]; v != "" {
		return Image{Ref: v, From: name}
	}
	return Image{}
}

// PostgresEnv is the variable PGO reads the PostgreSQL image from for a
// major version and PostGIS version (internal/config/config.go:120-129).
func PostgresEnv(major int64, postGIS string) string {
	name := EnvPostgresPrefix + strconv.FormatInt(major, 10)
	if postGIS != "" {
		name += gisInfix + postGIS
	}
	return name
}

// Resolve returns the images PGO would run a cluster with: each image the
// request names, else the catalog's default for it.
func (c Catalog) Resolve(req ImageRequest) Images {
	pick := func(spec, env string) Image {
		if spec != "" {
			return Image{Ref: spec, From: "spec"}
		}
		return c.lookup(env)
	}
	return Images{
		Postgres:   pick(req.Postgres, PostgresEnv(req.PostgresVersion, req.PostGISVersion)),
		PGBackRest: pick(req.PGBackRest, EnvPGBackRest),
		PGBouncer:  pick(req.PGBouncer, EnvPGBouncer),
		PGExporter: pick(req.PGExporter, EnvPGExporter),
	}
}

// PostgresVersions lists the PostgreSQL major versions the catalog has an
// image for, with the given PostGIS version ("" for plain PostgreSQL),
// lowest first.
func (c Catalog) PostgresVersions(postGIS string) []int64 {
	var out []int64
	for name := range c.names() {
		rest, ok := strings.CutPrefix(name, EnvPostgresPrefix)
		if !ok || !c.lookup(name).Found() {
			continue
		}
		major, gis, _ := strings.Cut(rest, gisInfix)
		if gis != postGIS {
			continue
		}
		if v, err := strconv.ParseInt(major, 10, 64); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (c Catalog) names() map[string]bool {
	names := map[string]bool{}
	for n := range c.env {
		names[n] = true
	}
	for n := range c.valueFrom {
		names[n] = true
	}
	return names
}

// knowsPostgres reports whether the catalog can be taken at its word about
// PostgreSQL images: it declares at least one (every PGO release does), and
// nothing else may set one out of sight. Otherwise PGO's own
// MissingRequiredImage Event remains the judge.
func (c Catalog) knowsPostgres() bool {
	if c.opaque {
		return false
	}
	for name := range c.names() {
		if strings.HasPrefix(name, EnvPostgresPrefix) {
			return true
		}
	}
	return false
}

// MissingPostgresImage reports a request PGO would refuse for want of a
// PostgreSQL image (Warning MissingRequiredImage, internal/config/config.go:168-174),
// with a message for a person naming the versions this PGO ships images for;
// pgoVersion names the PGO in it. It is false when the request names an
// image, the catalog has one, or the catalog cannot tell.
func (c Catalog) MissingPostgresImage(req ImageRequest, pgoVersion string) (string, bool) {
	if c.Resolve(req).Postgres.Found() || !c.knowsPostgres() {
		return "", false
	}
	pgo := "PGO"
	if pgoVersion != "" {
		pgo += " " + pgoVersion
	}
	kind, want := "PostgreSQL", fmt.Sprint(req.PostgresVersion)
	if req.PostGISVersion != "" {
		kind = "PostGIS " + req.PostGISVersion
		want = fmt.Sprintf("PostgreSQL %d with PostGIS %s", req.PostgresVersion, req.PostGISVersion)
	}
	versions := c.PostgresVersions(req.PostGISVersion)
	ships := "no " + kind + " images"
	if len(versions) > 0 {
		list := make([]string, len(versions))
		for i, v := range versions {
			list[i] = strconv.FormatInt(v, 10)
		}
		ships = fmt.Sprintf("%s images for %s", kind, strings.Join(list, ", "))
		if req.PostGISVersion != "" {
			ships = fmt.Sprintf("%s images for PostgreSQL %s", kind, strings.Join(list, ", "))
		}
	}
	return fmt.Sprintf("%s ships %s (%s unset); set spec.postgres.image for %s", pgo, ships, PostgresEnv(req.PostgresVersion, req.PostGISVersion), want), true
}
