package pgo

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// VersionHold is a major version change pgstack does not apply.
type VersionHold struct {
	// Running is the live spec.postgresVersion, which keeps being applied;
	// Wanted is the one the stack renders.
	Running, Wanted int64
	// Reason and Message say so to a person.
	Reason, Message string
}

// HoldMajorVersion decides which major version to apply to a PostgresCluster
// that exists (live; nil before it is created). PGO rolls the pods onto the
// new major's image when spec.postgresVersion changes, and the data
// directory, still of the old major, refuses to start (internal/postgres/config.go:404-409,
// "Expected PostgreSQL data version"); only PGO's PGUpgrade moves the data,
// and then spec.postgresVersion is raised after it. So the live version is
// taken as what runs, and a change in either direction is held.
//
// It returns what to apply: desired itself when nothing is held, or a copy
// with the live spec.postgresVersion, and the live spec.image when desired
// names another one (an image is built for one major). The hold is nil when
// nothing is held.
func HoldMajorVersion(live, desired *unstructured.Unstructured) (*unstructured.Unstructured, *VersionHold) {
	if live == nil {
		return desired, nil
	}
	running, ok, err := unstructured.NestedInt64(live.Object, "spec", "postgresVersion")
	if !ok || err != nil {
		return desired, nil // nothing runs that a version is known for
	}
	wanted, ok, err := unstructured.NestedInt64(desired.Object, "spec", "postgresVersion")
	if !ok || err != nil || wanted == running {
		return desired, nil
	}
	held := desired.DeepCopy()
	_ = unstructured.SetNestedField(held.Object, running, "spec", "postgresVersion")
	imageHeld := false
	if want, _, _ := unstructured.NestedString(desired.Object, "spec", "image"); want != "" {
		if image, _, _ := unstructured.NestedString(live.Object, "spec", "image"); image != want {
			imageHeld = true
			if image != "" {
				_ = unstructured.SetNestedField(held.Object, image, "spec", "image")
			} else {
				unstructured.RemoveNestedField(held.Object, "spec", "image")
			}
		}
	}

	msg := fmt.Sprintf("PostgreSQL %d runs in PostgresCluster %s; ", running, live.GetName())
	if wanted > running {
		msg += fmt.Sprintf("moving to %d needs PGO's major upgrade (PGUpgrade), which pgstack does not run yet: set spec.postgres.version back to %d", wanted, running)
	} else {
		msg += fmt.Sprintf("its data cannot move down to %d (PostgreSQL has no major downgrade): set spec.postgres.version to %d", wanted, running)
	}
	msg += fmt.Sprintf(". Until then pgstack applies %d", running)
	if imageHeld {
		msg += " and the image it runs"
	}
	msg += " with the rest of the stack's changes"
	return held, &VersionHold{Running: running, Wanted: wanted, Reason: platformv1alpha1.ReasonMajorVersionChangeHeld, Message: msg}
}
