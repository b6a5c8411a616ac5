package pgo

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Components a cluster runs images of, as a preview names them.
const (
	ComponentPostgres   = "postgres"
	ComponentPGBackRest = "pgbackrest"
	ComponentPGBouncer  = "pgbouncer"
	ComponentExporter   = "exporter"
)

// ImageChange is one image an operator upgrade changes for a cluster.
type ImageChange struct {
	Component string
	// From and To are image references; "unknown" when the variable that
	// supplies the image takes its value from a ConfigMap, Secret or field.
	From, To string
}

// UpgradeImpact is what moving a cluster from one installed PGO to another
// does to it: PGO applies its new defaults to every cluster that names no
// image of its own, at once (PGO v5.8.9 internal/config/config.go).
type UpgradeImpact struct {
	// Restarts: PGO rolls the cluster's database pods (the PostgreSQL,
	// pgBackRest or exporter image they run changes): replicas first, then
	// a switchover; a single instance is down meanwhile.
	Restarts bool
	// Changes lists every image that changes, PgBouncer's included (its
	// Deployment rolls, the database does not).
	Changes []ImageChange
	// Stranded, when set, says the new PGO ships no PostgreSQL image for the
	// cluster's version: PGO would stop reconciling it.
	Stranded string
}

// PreviewOperatorUpgrade compares the images PGO runs a cluster with under
// the catalog installed now and under the next one; nextVersion names the
// next PGO in messages.
func PreviewOperatorUpgrade(req ImageRequest, current, next Catalog, nextVersion string) UpgradeImpact {
	var impact UpgradeImpact
	if msg, missing := next.MissingPostgresImage(req, nextVersion); missing {
		impact.Stranded = msg
	}
	now, then := current.Resolve(req), next.Resolve(req)
	for _, c := range []struct {
		component string
		used      bool
		now, then Image
	}{
		{ComponentPostgres, true, now.Postgres, then.Postgres},
		{ComponentPGBackRest, req.UsesPGBackRest, now.PGBackRest, then.PGBackRest},
		{ComponentPGBouncer, req.UsesPGBouncer, now.PGBouncer, then.PGBouncer},
		{ComponentExporter, req.UsesExporter, now.PGExporter, then.PGExporter},
	} {
		if !c.used || !changes(c.now, c.then) {
			continue
		}
		impact.Changes = append(impact.Changes, ImageChange{Component: c.component, From: ref(c.now), To: ref(c.then)})
		if c.component != ComponentPGBouncer {
			impact.Restarts = true
		}
	}
	return impact
}

// changes reports whether an image may differ: a value pgstack cannot read
// (valueFrom) counts as a change, the safe side for a preview.
func changes(a, b Image) bool {
	if (a.Found() && a.Ref == "") || (b.Found() && b.Ref == "") {
		return true
	}
	return a.Ref != b.Ref
}

func ref(i Image) string {
	switch {
	case i.Ref != "":
		return i.Ref
	case i.Found():
		return "unknown"
	default:
		return "none"
	}
}

// imagePaths are where a PostgresCluster names each component's image, and
// the section that must exist for the component to run at all.
var imagePaths = map[string]struct{ section, image []string }{
	ComponentPostgres:   {[]string{"spec"}, []string{"spec", "image"}},
	ComponentPGBackRest: {[]string{"spec", "backups", "pgbackrest"}, []string{"spec", "backups", "pgbackrest", "image"}},
	ComponentPGBouncer:  {[]string{"spec", "proxy", "pgBouncer"}, []string{"spec", "proxy", "pgBouncer", "image"}},
	ComponentExporter:   {[]string{"spec", "monitoring", "pgmonitor", "exporter"}, []string{"spec", "monitoring", "pgmonitor", "exporter", "image"}},
}

// PinImages names each image (component -> reference) in pc where pc names
// none, for the components pc runs: PGO then runs exactly those images,
// whatever its defaults become.
func PinImages(pc *unstructured.Unstructured, images map[string]string) error {
	for component, ref := range images {
		p, ok := imagePaths[component]
		if !ok {
			return fmt.Errorf("pin %s: unknown component", component)
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(pc.Object, p.section...); !found {
			continue
		}
		if s, _, _ := unstructured.NestedString(pc.Object, p.image...); s != "" {
			continue
		}
		if err := unstructured.SetNestedField(pc.Object, ref, p.image...); err != nil {
			return fmt.Errorf("pin %s: %w", component, err)
		}
	}
	return nil
}

// NamedImages counts how many of images (component -> reference) pc names
// as they are.
func NamedImages(pc *unstructured.Unstructured, images map[string]string) int {
	n := 0
	for component, ref := range images {
		if p, ok := imagePaths[component]; ok {
			if s, _, _ := unstructured.NestedString(pc.Object, p.image...); s == ref {
				n++
			}
		}
	}
	return n
}
