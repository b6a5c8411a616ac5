package pgo

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// PGUpgradeGVK is PGO's PGUpgrade kind: one major upgrade of one cluster.
var PGUpgradeGVK = schema.GroupVersionKind{Group: PostgresClusterGVK.Group, Version: "v1beta1", Kind: "PGUpgrade"}

// PGUpgradeCRD is the name of PGO's PGUpgrade CRD.
const PGUpgradeCRD = "pgupgrades.postgres-operator.crunchydata.com"

// AnnotationAllowUpgrade on a PostgresCluster names the one PGUpgrade PGO
// may run on it (PGO v5.8.9 internal/controller/pgupgrade/pgupgrade_controller.go:29, :355).
const AnnotationAllowUpgrade = "postgres-operator.crunchydata.com/allow-upgrade"

// EnvPGUpgrade is where PGO finds the pg_upgrade image when a PGUpgrade
// names none (internal/controller/pgupgrade/jobs.go:345-360).
const EnvPGUpgrade = "RELATED_IMAGE_PGUPGRADE"

// PGO's reasons on a PGUpgrade (internal/controller/pgupgrade/pgupgrade_controller.go).
const (
	pgUpgradeSucceeded = "PGUpgradeSucceeded"
	pgUpgradeFailed    = "PGUpgradeFailed"
)

// pgUpgradeRefusals are PGO's Progressing=False reasons that no wait
// undoes: a PGUpgrade it will not run (bad versions, no image), one that
// does not match the cluster, or a cluster shut down without PGO knowing
// its primary (it records the primary only while stopping it, instance.go:599-613).
var pgUpgradeRefusals = map[string]bool{
	"PGUpgradeInvalid":              true,
	"PGUpgradeInvalidForCluster":    true,
	"PGClusterPrimaryNotIdentified": true,
}

// NewPGUpgrade is an empty PGUpgrade object with its kind set.
func NewPGUpgrade() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(PGUpgradeGVK)
	return u
}

// PGUpgradeName names the PGUpgrade that takes a cluster to a version: one
// per target, so a retried or later upgrade never meets an old one's status.
func PGUpgradeName(cluster string, to int64) string {
	return fmt.Sprintf("%s-pg%d", cluster, to)
}

// UpgradeReport is what PGO reports on one PGUpgrade.
type UpgradeReport struct {
	Name     string
	From, To int64
	// Succeeded and Failed are PGO's Succeeded condition, True or False.
	Succeeded, Failed bool
	// Refused: PGO will not run it as it stands (pgUpgradeRefusals).
	Refused bool
	// Reason and Message are PGO's latest word: Succeeded's, else Progressing's.
	Reason, Message string
}

// ReadPGUpgrade reads PGO's report on a PGUpgrade.
func ReadPGUpgrade(u *unstructured.Unstructured) UpgradeReport {
	from, _, _ := unstructured.NestedInt64(u.Object, "spec", "fromPostgresVersion")
	to, _, _ := unstructured.NestedInt64(u.Object, "spec", "toPostgresVersion")
	r := UpgradeReport{Name: u.GetName(), From: from, To: to}
	if c := findCondition(u, "Progressing"); c != nil {
		r.Reason, r.Message = str(c, "reason"), str(c, "message")
		r.Refused = str(c, "status") == "False" && pgUpgradeRefusals[r.Reason]
	}
	if c := findCondition(u, "Succeeded"); c != nil {
		r.Reason, r.Message = str(c, "reason"), str(c, "message")
		r.Succeeded = str(c, "status") == "True" && r.Reason == pgUpgradeSucceeded
		r.Failed = str(c, "status") == "False" && r.Reason == pgUpgradeFailed
	}
	return r
}

// UpgradeInput is what a major upgrade is decided from.
type UpgradeInput struct {
	// Live is the PostgresCluster as it is (nil before it exists); Desired
	// is what the stack renders.
	Live, Desired *unstructured.Unstructured
	// Upgrades are PGO's reports on the stack's PGUpgrades.
	Upgrades []UpgradeReport
	// Settings are the stack's spec.postgres.upgrade (nil: defaults).
	Settings *platformv1alpha1.MajorUpgrade
	// Images is the installed PGO's default images (nil: unknown);
	// PGOVersion names that PGO in messages.
	Images     *Catalog
	PGOVersion string
	// Busy says why nothing that stops the cluster may start now (a
	// restart or switchover of spec.operations runs); empty when free.
	Busy string
	Now  time.Time
}

// Finding is something the plan tells a person, as a condition reason and message.
type Finding struct {
	Reason, Message string
}

// UpgradePlan is what to do about the cluster's major version.
type UpgradePlan struct {
	// Apply is the PostgresCluster to apply.
	Apply *unstructured.Unstructured
	// Force: apply Apply even when the live object holds all its fields,
	// because fields the upgrade set (shutdown, the annotation) must go.
	Force bool
	// Create is the PGUpgrade to create; nil when none.
	Create *unstructured.Unstructured
	// Running is the major version Apply carries; Report the upgrade to
	// show in status (nil when there is none).
	Running int64
	Report  *platformv1alpha1.MajorUpgradeStatus
	// Event is what this step did, for `kubectl describe` (Reason empty: nothing).
	Event Finding
	// Held: a version change not applied; it stalls beside the cluster's
	// readiness. Pending: checks the upgrade waits on; Reconciling beside
	// the readiness. Down: the cluster is stopped for the upgrade.
	// Failed: the upgrade failed or PGO refused it; the cluster is stopped
	// and a person must act.
	Held, Pending, Down, Failed *Finding
}

// PlanMajorUpgrade decides how the stack's PostgreSQL major version reaches
// its PostgresCluster. PGO rolls pods onto the other major's image when
// spec.postgresVersion changes and the data directory, still of the old
// major, refuses to start (internal/postgres/config.go:404-409), so the
// version never changes on a running cluster: a raise runs PGO's major
// upgrade, the way PGO documents it:
//
//  1. checks: PGO ships an image for the new version (or the stack names
//     one) and a pg_upgrade image, the cluster is ready, and with backups
//     on a backup has completed (within upgrade.backupMaxAge when set);
//  2. a PGUpgrade from the running to the wanted version, and the cluster
//     shut down and annotated to allow it, still at the running version;
//  3. PGO stops the instances, runs pg_upgrade and sets the cluster's
//     status.postgresVersion; its PGUpgrade turns Succeeded;
//  4. the new version and image applied, shutdown and the annotation
//     dropped: PGO starts the cluster on the new version.
//
// A failed upgrade leaves the cluster stopped (pg_upgrade --link may have
// changed the old data), unless the data was copied or the stack says the
// old data may start. A lower version is held: PostgreSQL has no major
// downgrade. Every step is read back from the cluster and the PGUpgrade,
// so a restarted manager carries on where the last one stopped.
func PlanMajorUpgrade(in UpgradeInput) UpgradePlan {
	if in.Live == nil {
		return UpgradePlan{Apply: in.Desired, Running: version(in.Desired)}
	}
	running, known := liveVersion(in.Live)
	if !known {
		return UpgradePlan{Apply: in.Desired, Running: version(in.Desired)}
	}
	wanted := version(in.Desired)
	name := in.Live.GetName()
	settings := in.Settings
	if settings == nil {
		settings = &platformv1alpha1.MajorUpgrade{}
	}

	var active, done *UpgradeReport
	for i := range in.Upgrades {
		u := &in.Upgrades[i]
		switch {
		case u.From == running && u.To > running:
			active = u
		case u.To == running && u.Succeeded:
			done = u
		}
	}

	if active != nil {
		report := &platformv1alpha1.MajorUpgradeStatus{PGUpgrade: active.Name, FromVersion: int32(running), ToVersion: int32(active.To)}
		plan := UpgradePlan{Report: report}
		if wanted != active.To {
			plan.Held = &Finding{platformv1alpha1.ReasonMajorVersionChangeHeld, fmt.Sprintf(
				"the upgrade of PostgresCluster %s from PostgreSQL %d to %d has started (PGUpgrade %s) and runs to its end: the version can change again once it is done",
				name, running, active.To, active.Name)}
		}
		switch {
		case active.Succeeded:
			// PGO moved the data; start on the new version.
			apply := withVersion(in.Desired, active.To, in.Live)
			if wanted == active.To {
				apply = in.Desired
			}
			plan.Apply, plan.Force, plan.Running = apply, true, active.To
			report.Step = platformv1alpha1.UpgradeSucceeded
			plan.Event = Finding{platformv1alpha1.EventMajorUpgradeSucceeded, fmt.Sprintf(
				"PGO upgraded PostgresCluster %s from PostgreSQL %d to %d (PGUpgrade %s); starting it on %d", name, running, active.To, active.Name, active.To)}
		case active.Failed && (settings.TransferMethod == platformv1alpha1.TransferCopy || settings.StartOldVersionOnFailure):
			// The old data may start again: start it, and say the upgrade failed.
			plan.Apply, plan.Force, plan.Running = held(in.Desired, in.Live, running), true, running
			report.Step = platformv1alpha1.UpgradeFailed
			plan.Held = &Finding{platformv1alpha1.ReasonMajorUpgradeFailed, fmt.Sprintf(
				"PGO's upgrade of PostgresCluster %s to PostgreSQL %d failed (%s: %s); it runs PostgreSQL %d again. Delete PGUpgrade %s to try again",
				name, active.To, active.Reason, active.Message, running, active.Name)}
		case active.Failed || active.Refused:
			plan.Apply, plan.Running = stopped(held(in.Desired, in.Live, running), active.Name), running
			report.Step = platformv1alpha1.UpgradeFailed
			msg := fmt.Sprintf("PGO's upgrade of PostgresCluster %s from PostgreSQL %d to %d failed (%s: %s); the cluster stays shut down.",
				name, running, active.To, active.Reason, active.Message)
			if active.Refused {
				msg = fmt.Sprintf("PGO will not run the upgrade of PostgresCluster %s from PostgreSQL %d to %d (%s: %s); the cluster stays shut down.",
					name, running, active.To, active.Reason, active.Message)
			}
			plan.Failed = &Finding{platformv1alpha1.ReasonMajorUpgradeFailed, msg +
				" Once the old data directory is known to be intact (pg_upgrade --link may have changed it), set spec.postgres.upgrade.startOldVersionOnFailure to start it again on " +
				fmt.Sprint(running) + ", or delete PGUpgrade " + active.Name + " to try again"}
		default:
			plan.Apply, plan.Running = stopped(held(in.Desired, in.Live, running), active.Name), running
			report.Step = platformv1alpha1.UpgradeShuttingDown
			doing := "PGO is shutting the cluster down"
			if isShutDown(in.Live) {
				report.Step = platformv1alpha1.UpgradeRunning
				doing = "PGO is running pg_upgrade"
			}
			detail := ""
			if active.Reason != "" {
				detail = fmt.Sprintf(" (PGUpgrade: %s: %s)", active.Reason, active.Message)
			}
			plan.Down = &Finding{platformv1alpha1.ReasonMajorUpgradeRunning, fmt.Sprintf(
				"upgrading PostgresCluster %s from PostgreSQL %d to %d with PGUpgrade %s: %s%s", name, running, active.To, active.Name, doing, detail)}
		}
		return plan
	}

	// The annotation without its PGUpgrade: an upgrade whose PGUpgrade was
	// deleted (to retry it, or to give it up). Whatever comes next is
	// applied, even where the live cluster holds every field of it.
	leftovers := upgradeLeftovers(in.Live)
	plan := UpgradePlan{Apply: in.Desired, Running: running, Force: leftovers}
	if done != nil {
		plan.Report = &platformv1alpha1.MajorUpgradeStatus{PGUpgrade: done.Name, FromVersion: int32(done.From), ToVersion: int32(done.To),
			Step: platformv1alpha1.UpgradeSucceeded}
	}
	switch {
	case wanted == running:
		return plan
	case wanted < running:
		plan.Apply = held(in.Desired, in.Live, running)
		plan.Held = &Finding{platformv1alpha1.ReasonMajorVersionChangeHeld, fmt.Sprintf(
			"PostgreSQL %d runs in PostgresCluster %s; its data cannot move down to %d (PostgreSQL has no major downgrade): set spec.postgres.version to %d. Until then pgstack applies %d with the rest of the stack's changes",
			running, name, wanted, running, running)}
		return plan
	}

	// A raise: check before anything stops.
	plan.Apply = held(in.Desired, in.Live, running)
	waiting := func(reason, why string) UpgradePlan {
		plan.Pending = &Finding{reason, fmt.Sprintf("the upgrade of PostgresCluster %s from PostgreSQL %d to %d waits: %s", name, running, wanted, why)}
		return plan
	}
	refused := func(why string) UpgradePlan {
		plan.Held = &Finding{platformv1alpha1.ReasonMajorUpgradePreflightFailed, fmt.Sprintf(
			"PostgreSQL %d runs in PostgresCluster %s and cannot be upgraded to %d: %s. Until then pgstack applies %d with the rest of the stack's changes",
			running, name, wanted, why, running)}
		return plan
	}
	if in.Images != nil {
		if msg, missing := in.Images.MissingPostgresImage(ImageRequestFor(in.Desired), in.PGOVersion); missing {
			return refused(msg)
		}
		if settings.Image == "" && !in.Images.lookup(EnvPGUpgrade).Found() && !in.Images.opaque {
			return refused(fmt.Sprintf("the installed PGO ships no pg_upgrade image (%s unset); set spec.postgres.upgrade.image", EnvPGUpgrade))
		}
	}
	if settings.TransferMethod == "CopyFileRange" && wanted < 17 {
		return refused("transferMethod CopyFileRange needs pg_upgrade 17 or later")
	}
	// A cluster stopped for an upgrade whose PGUpgrade was deleted is not
	// started to be checked: with --link its old data may no longer start.
	if r := ClusterReadiness(in.Live); !leftovers && (!r.Ready || r.Reason != ReasonReady) {
		return waiting(platformv1alpha1.ReasonMajorUpgradePending, "the cluster must be ready first ("+r.Message+")")
	}
	if in.Busy != "" {
		return waiting(platformv1alpha1.ReasonMajorUpgradePending, in.Busy)
	}
	if backupsOn(in.Desired) {
		latest, found := lastBackup(in.Live)
		switch {
		case settings.BackupMaxAge != nil && (latest.IsZero() || in.Now.Sub(latest) > settings.BackupMaxAge.Duration):
			since := "no scheduled or manual backup has completed"
			if !latest.IsZero() {
				since = "the last backup completed at " + latest.UTC().Format(time.RFC3339)
			}
			return refused(fmt.Sprintf("%s, and spec.postgres.upgrade.backupMaxAge asks for one within %s; take a backup", since, settings.BackupMaxAge.Duration))
		case !found:
			return waiting(platformv1alpha1.ReasonMajorUpgradePending, "no backup has completed yet (PGO takes one once its repository is ready)")
		}
	}

	upgrade := PGUpgradeName(name, wanted)
	plan.Apply, plan.Create = stopped(plan.Apply, upgrade), newPGUpgrade(in.Desired, upgrade, running, wanted, settings)
	plan.Report = &platformv1alpha1.MajorUpgradeStatus{PGUpgrade: upgrade, FromVersion: int32(running), ToVersion: int32(wanted),
		Step: platformv1alpha1.UpgradeShuttingDown}
	plan.Down = &Finding{platformv1alpha1.ReasonMajorUpgradeRunning, fmt.Sprintf(
		"upgrading PostgresCluster %s from PostgreSQL %d to %d with PGUpgrade %s: PGO is shutting the cluster down", name, running, wanted, upgrade)}
	plan.Event = Finding{platformv1alpha1.EventMajorUpgradeStarted, fmt.Sprintf(
		"upgrading PostgresCluster %s from PostgreSQL %d to %d: created PGUpgrade %s and shut the cluster down", name, running, wanted, upgrade)}
	return plan
}

func version(pc *unstructured.Unstructured) int64 {
	v, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
	return v
}

func liveVersion(pc *unstructured.Unstructured) (int64, bool) {
	v, ok, err := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
	return v, ok && err == nil
}

// held is desired at the running version, with the image the cluster runs:
// an image names one major version, so a new one waits with the version.
func held(desired, live *unstructured.Unstructured, running int64) *unstructured.Unstructured {
	if version(desired) == running {
		return desired
	}
	return withVersion(desired, running, live)
}

// withVersion is desired at version v, with live's image when desired's is
// for another version.
func withVersion(desired *unstructured.Unstructured, v int64, live *unstructured.Unstructured) *unstructured.Unstructured {
	out := desired.DeepCopy()
	_ = unstructured.SetNestedField(out.Object, v, "spec", "postgresVersion")
	if version(desired) == v {
		return out
	}
	if image, _, _ := unstructured.NestedString(live.Object, "spec", "image"); image != "" && version(live) == v {
		_ = unstructured.SetNestedField(out.Object, image, "spec", "image")
	} else {
		unstructured.RemoveNestedField(out.Object, "spec", "image")
	}
	return out
}

// stopped is pc shut down and annotated to allow the named PGUpgrade.
func stopped(pc *unstructured.Unstructured, upgrade string) *unstructured.Unstructured {
	out := pc.DeepCopy()
	_ = unstructured.SetNestedField(out.Object, true, "spec", "shutdown")
	annotations := out.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationAllowUpgrade] = upgrade
	out.SetAnnotations(annotations)
	return out
}

// upgradeLeftovers: the live cluster still carries the annotation an upgrade set.
func upgradeLeftovers(live *unstructured.Unstructured) bool {
	_, ok := live.GetAnnotations()[AnnotationAllowUpgrade]
	return ok
}

// isShutDown is PGO's own test of a stopped cluster, the one PGUpgrade waits for.
func isShutDown(live *unstructured.Unstructured) bool {
	return ClusterReadiness(live).Reason == ReasonShutDown
}

func backupsOn(pc *unstructured.Unstructured) bool {
	_, ok, _ := unstructured.NestedMap(pc.Object, "spec", "backups", "pgbackrest")
	return ok
}

// lastBackup is the newest completion time of a successful scheduled or
// manual backup PGO reports, and whether any backup at all is known to
// have completed (the replica-creation backup PGO takes first carries no time).
func lastBackup(pc *unstructured.Unstructured) (time.Time, bool) {
	var latest time.Time
	found := false
	consider := func(m map[string]any) {
		succeeded, _, _ := unstructured.NestedInt64(m, "succeeded")
		if succeeded == 0 {
			return
		}
		found = true
		if s, _, _ := unstructured.NestedString(m, "completionTime"); s != "" {
			if t, err := time.Parse(time.RFC3339, s); err == nil && t.After(latest) {
				latest = t
			}
		}
	}
	scheduled, _, _ := unstructured.NestedSlice(pc.Object, "status", "pgbackrest", "scheduledBackups")
	for _, b := range scheduled {
		if m, ok := b.(map[string]any); ok {
			consider(m)
		}
	}
	if m, ok, _ := unstructured.NestedMap(pc.Object, "status", "pgbackrest", "manualBackup"); ok {
		consider(m)
	}
	repos, _, _ := unstructured.NestedSlice(pc.Object, "status", "pgbackrest", "repos")
	for _, r := range repos {
		if m, ok := r.(map[string]any); ok && m["replicaCreateBackupComplete"] == true {
			found = true
		}
	}
	return latest, found
}

// newPGUpgrade is the PGUpgrade for cluster (the rendered PostgresCluster,
// whose labels tie it to the stack), without an owner yet.
func newPGUpgrade(cluster *unstructured.Unstructured, name string, from, to int64, settings *platformv1alpha1.MajorUpgrade) *unstructured.Unstructured {
	u := NewPGUpgrade()
	u.SetName(name)
	u.SetNamespace(cluster.GetNamespace())
	u.SetLabels(cluster.GetLabels())
	spec := map[string]any{
		"postgresClusterName": cluster.GetName(),
		"fromPostgresVersion": from,
		"toPostgresVersion":   to,
	}
	if settings.TransferMethod != "" {
		spec["transferMethod"] = string(settings.TransferMethod)
	}
	if settings.Image != "" {
		spec["image"] = settings.Image
	}
	u.Object["spec"] = spec
	return u
}
