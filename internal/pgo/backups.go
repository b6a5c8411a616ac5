package pgo

import (
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// BackupsInput is what the backups report is read from.
type BackupsInput struct {
	// Live is the PostgresCluster as PGO reports it.
	Live *unstructured.Unstructured
	// Previous is the stack's status.backups: PGO reports only the Jobs
	// its CronJobs keep, so the last successes are carried over from it.
	Previous *platformv1alpha1.BackupsStatus
	// MaxAge is spec.postgres.backups.maxBackupAge (nil: none).
	MaxAge *metav1.Duration
	Now    time.Time
}

// BackupsHealth is the BackupsHealthy condition's verdict.
type BackupsHealth struct {
	Healthy         bool
	Reason, Message string
}

// BackupsReport is status.backups and BackupsHealthy.
type BackupsReport struct {
	// Status and Health are nil when the cluster has no backups.
	Status *platformv1alpha1.BackupsStatus
	Health *BackupsHealth
	// RecheckAt is when maxBackupAge runs out (zero: never), so the
	// verdict is judged again then without polling.
	RecheckAt time.Time
}

// scheduledBackup is one entry of PGO's status.pgbackrest.scheduledBackups:
// a Job a backup CronJob made (pgbackrest.go:520-568, setScheduledJobStatus).
type scheduledBackup struct {
	repo, kind        string
	start, completion time.Time
	succeeded, failed int64
}

// ReadBackups reads the cluster's backups from PGO's status: each
// repository's readiness (stanza created, volume bound), the newest
// successful scheduled backup of each type (kept from the previous report,
// since PGO forgets Jobs its CronJobs delete), the newest manual one, and a
// scheduled backup that failed with no success of its type since.
// BackupsHealthy is False after such a failure, or when nothing completed
// within MaxAge (counted from the cluster's creation before the first).
func ReadBackups(in BackupsInput) BackupsReport {
	if in.Live == nil || !backupsOn(in.Live) {
		return BackupsReport{}
	}
	previous := map[string]platformv1alpha1.RepoBackupStatus{}
	out := &platformv1alpha1.BackupsStatus{}
	if in.Previous != nil {
		for _, r := range in.Previous.Repos {
			previous[string(r.Name)] = r
		}
		out.LastSuccessful = in.Previous.LastSuccessful.DeepCopy()
	}
	ready, onVolume := map[string]bool{}, volumeRepos(in.Live)
	statusRepos, _, _ := unstructured.NestedSlice(in.Live.Object, "status", "pgbackrest", "repos")
	for _, r := range statusRepos {
		if m, ok := r.(map[string]any); ok {
			ready[str(m, "name")] = m["stanzaCreated"] == true && (!onVolume[str(m, "name")] || m["bound"] == true)
		}
	}
	var jobs []scheduledBackup
	list, _, _ := unstructured.NestedSlice(in.Live.Object, "status", "pgbackrest", "scheduledBackups")
	for _, b := range list {
		if m, ok := b.(map[string]any); ok {
			succeeded, _, _ := unstructured.NestedInt64(m, "succeeded")
			failed, _, _ := unstructured.NestedInt64(m, "failed")
			jobs = append(jobs, scheduledBackup{repo: str(m, "repo"), kind: str(m, "type"), start: timeOf(m, "startTime"),
				completion: timeOf(m, "completionTime"), succeeded: succeeded, failed: failed})
		}
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].start.Before(jobs[j].start) })

	later := func(a *metav1.Time, t time.Time) *metav1.Time {
		if t.IsZero() || (a != nil && !t.After(a.Time)) {
			return a
		}
		m := metav1.NewTime(t)
		return &m
	}
	var failures []string
	for _, entry := range repoEntries(in.Live) {
		name := str(entry, "name")
		r := previous[name]
		r.Name, r.Ready = platformv1alpha1.RepoName(name), ready[name]
		r.LastFailure = nil
		newestFailure := scheduledBackup{}
		for _, j := range jobs {
			if j.repo != name {
				continue
			}
			if j.succeeded > 0 && !j.completion.IsZero() {
				switch j.kind {
				case "full":
					r.LastFull = later(r.LastFull, j.completion)
				case "diff":
					r.LastDiff = later(r.LastDiff, j.completion)
				case "incr":
					r.LastIncr = later(r.LastIncr, j.completion)
				}
				out.LastSuccessful = later(out.LastSuccessful, j.completion)
			} else if j.failed > 0 && j.completion.IsZero() && j.start.After(newestFailure.start) {
				newestFailure = j
			}
		}
		if !newestFailure.start.IsZero() {
			since := map[string]*metav1.Time{"full": r.LastFull, "diff": r.LastDiff, "incr": r.LastIncr}[newestFailure.kind]
			if since == nil || since.Time.Before(newestFailure.start) {
				start := metav1.NewTime(newestFailure.start)
				r.LastFailure = &platformv1alpha1.BackupFailure{Type: newestFailure.kind, StartTime: &start}
				failures = append(failures, fmt.Sprintf("the %s backup of %s started at %s failed", newestFailure.kind, name, newestFailure.start.UTC().Format(time.RFC3339)))
			}
		}
		out.Repos = append(out.Repos, r)
	}
	if m, ok, _ := unstructured.NestedMap(in.Live.Object, "status", "pgbackrest", "manualBackup"); ok {
		if succeeded, _, _ := unstructured.NestedInt64(m, "succeeded"); succeeded > 0 {
			out.LastSuccessful = later(out.LastSuccessful, timeOf(m, "completionTime"))
		}
	}
	sort.Slice(out.Repos, func(i, j int) bool { return out.Repos[i].Name < out.Repos[j].Name })

	report := BackupsReport{Status: out}
	last := "no backup has a completion time yet"
	if out.LastSuccessful != nil {
		last = "the last backup completed at " + out.LastSuccessful.UTC().Format(time.RFC3339)
	}
	switch {
	case len(failures) > 0:
		report.Health = &BackupsHealth{Reason: platformv1alpha1.ReasonScheduledBackupFailed,
			Message: fmt.Sprintf("%s (PGO's Job failed; its log says why); %s", strings.Join(failures, "; "), last)}
		return report
	case in.MaxAge == nil:
		report.Health = &BackupsHealth{Healthy: true, Reason: platformv1alpha1.ReasonBackupsSucceeding, Message: last}
		return report
	}
	since := in.Live.GetCreationTimestamp().Time
	if out.LastSuccessful != nil {
		since = out.LastSuccessful.Time
	}
	deadline := since.Add(in.MaxAge.Duration)
	if !in.Now.Before(deadline) {
		report.Health = &BackupsHealth{Reason: platformv1alpha1.ReasonNoRecentBackup,
			Message: fmt.Sprintf("%s, and maxBackupAge asks for one within %s", last, in.MaxAge.Duration)}
		return report
	}
	report.Health = &BackupsHealth{Healthy: true, Reason: platformv1alpha1.ReasonBackupsSucceeding,
		Message: fmt.Sprintf("%s, within maxBackupAge %s", last, in.MaxAge.Duration)}
	report.RecheckAt = deadline
	return report
}

// volumeRepos are the names of the repositories on a volume.
func volumeRepos(pc *unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, r := range repoEntries(pc) {
		if _, ok := r["volume"]; ok {
			out[str(r, "name")] = true
		}
	}
	return out
}

func timeOf(m map[string]any, key string) time.Time {
	s, _, _ := unstructured.NestedString(m, key)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
