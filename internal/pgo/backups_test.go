package pgo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestReadBackups(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(hoursAgo float64) string {
		return now.Add(-time.Duration(hoursAgo * float64(time.Hour))).Format(time.RFC3339)
	}
	ts := func(hoursAgo float64) *metav1.Time {
		t := metav1.NewTime(now.Add(-time.Duration(hoursAgo * float64(time.Hour))))
		return &t
	}
	// job is an entry of PGO's status.pgbackrest.scheduledBackups.
	job := func(repo, kind string, startedHoursAgo float64, ok bool) any {
		m := map[string]any{"cronJobName": "hippo-" + repo + "-" + kind, "repo": repo, "type": kind, "startTime": at(startedHoursAgo)}
		if ok {
			m["succeeded"], m["completionTime"] = int64(1), at(startedHoursAgo-0.5)
		} else {
			m["failed"] = int64(1)
		}
		return m
	}
	// live is hippo, created two days ago, with repo1 on a volume (bound,
	// stanza created) and the scheduled Jobs PGO reports.
	live := func(jobs ...any) *unstructured.Unstructured {
		pc := cluster(t, readyHippo)
		pc.SetCreationTimestamp(*ts(48))
		_ = unstructured.SetNestedSlice(pc.Object, jobs, "status", "pgbackrest", "scheduledBackups")
		return pc
	}
	day := &metav1.Duration{Duration: 24 * time.Hour}

	tests := []struct {
		name     string
		live     *unstructured.Unstructured
		previous *platformv1alpha1.BackupsStatus
		maxAge   *metav1.Duration
		// want is "lastSuccessful | repo ready full diff incr failure" as hours ago, "-" for none.
		want        string
		wantHealth  string // reason; "" for no condition
		wantWords   string
		wantRecheck time.Duration // from now; 0 for none
	}{
		{name: "no backups: no report", live: cluster(t, `
metadata: {name: scratch}
spec: {postgresVersion: 16, instances: [{name: instance1}]}`)},
		{name: "a ready repository with no scheduled backup yet", live: live(),
			want: "- | repo1 true - - - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding, wantWords: "no backup has a completion time yet"},
		{name: "the newest success of each type", live: live(job("repo1", "full", 30, true), job("repo1", "diff", 6.5, true), job("repo1", "full", 20, true)),
			want: "6 | repo1 true 19.5 6 - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding, wantWords: "completed at 2026-12-02T06:00:00Z"},
		{name: "a success PGO no longer reports is kept",
			live:     live(job("repo1", "diff", 6.5, true)),
			previous: &platformv1alpha1.BackupsStatus{LastSuccessful: ts(6), Repos: []platformv1alpha1.RepoBackupStatus{{Name: "repo1", LastFull: ts(40)}}},
			want:     "6 | repo1 true 40 6 - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding},
		{name: "a failed scheduled backup with no success of its type since: unhealthy",
			live: live(job("repo1", "full", 30, true), job("repo1", "full", 6, false)),
			want: "29.5 | repo1 true 29.5 - - full@6", wantHealth: platformv1alpha1.ReasonScheduledBackupFailed, wantWords: "the full backup of repo1 started at 2026-12-02T06:00:00Z failed"},
		{name: "a failure followed by a success of its type: healthy again",
			live: live(job("repo1", "full", 6, false), job("repo1", "full", 3, true)),
			want: "2.5 | repo1 true 2.5 - - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding},
		{name: "a failed diff is not undone by a full",
			live: live(job("repo1", "diff", 6, false), job("repo1", "full", 3, true)),
			want: "2.5 | repo1 true 2.5 - - diff@6", wantHealth: platformv1alpha1.ReasonScheduledBackupFailed},
		{name: "within maxBackupAge: judged again when it runs out",
			live: live(job("repo1", "full", 10.5, true)), maxAge: day,
			want: "10 | repo1 true 10 - - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding, wantRecheck: 14 * time.Hour},
		{name: "past maxBackupAge: unhealthy",
			live: live(job("repo1", "full", 30.5, true)), maxAge: day,
			want: "30 | repo1 true 30 - - -", wantHealth: platformv1alpha1.ReasonNoRecentBackup, wantWords: "within 24h0m0s"},
		{name: "no backup at all, counted from the cluster's creation", live: live(), maxAge: day,
			want: "- | repo1 true - - - -", wantHealth: platformv1alpha1.ReasonNoRecentBackup},
		{name: "a manual backup counts as the last success",
			live: func() *unstructured.Unstructured {
				pc := live()
				_ = unstructured.SetNestedMap(pc.Object, map[string]any{"id": "b1", "finished": true, "succeeded": int64(1), "completionTime": at(1)}, "status", "pgbackrest", "manualBackup")
				return pc
			}(), maxAge: day,
			want: "1 | repo1 true - - - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding, wantRecheck: 23 * time.Hour},
		{name: "a repository whose stanza is not created is not ready", live: func() *unstructured.Unstructured {
			pc := live()
			_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "repo1", "bound": true}}, "status", "pgbackrest", "repos")
			return pc
		}(), want: "- | repo1 false - - - -", wantHealth: platformv1alpha1.ReasonBackupsSucceeding},
	}
	hoursAgo := func(t *metav1.Time) string {
		if t == nil {
			return "-"
		}
		return fmt.Sprint(now.Sub(t.Time).Hours())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report := ReadBackups(BackupsInput{Live: tt.live, Previous: tt.previous, MaxAge: tt.maxAge, Now: now})
			got := ""
			if s := report.Status; s != nil {
				got = hoursAgo(s.LastSuccessful) + " |"
				for _, r := range s.Repos {
					failure := "-"
					if r.LastFailure != nil {
						failure = r.LastFailure.Type + "@" + hoursAgo(r.LastFailure.StartTime)
					}
					got += fmt.Sprintf(" %s %v %s %s %s %s", r.Name, r.Ready, hoursAgo(r.LastFull), hoursAgo(r.LastDiff), hoursAgo(r.LastIncr), failure)
				}
			}
			if got != tt.want {
				t.Errorf("report %q, want %q", got, tt.want)
			}
			health := ""
			if h := report.Health; h != nil {
				health = h.Reason
				if h.Healthy != (h.Reason == platformv1alpha1.ReasonBackupsSucceeding) {
					t.Errorf("healthy %v with reason %s", h.Healthy, h.Reason)
				}
				if !strings.Contains(h.Message, tt.wantWords) {
					t.Errorf("message %q, want it to say %q", h.Message, tt.wantWords)
				}
			}
			if health != tt.wantHealth {
				t.Errorf("BackupsHealthy reason %q, want %q", health, tt.wantHealth)
			}
			recheck := time.Duration(0)
			if !report.RecheckAt.IsZero() {
				recheck = report.RecheckAt.Sub(now)
			}
			if recheck != tt.wantRecheck {
				t.Errorf("recheck in %s, want %s", recheck, tt.wantRecheck)
			}
		})
	}
}
