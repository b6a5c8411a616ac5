package status

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// BackupsHealthy follows the report, is gone without backups, and stays
// as it was while the cluster is not seen (deleting). It never moves Ready.
func TestComputeBackupsHealthy(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC))
	last := metav1.NewTime(now.Add(-time.Hour))
	report := &platformv1alpha1.BackupsStatus{LastSuccessful: &last, Repos: []platformv1alpha1.RepoBackupStatus{{Name: "repo1", Ready: true, LastFull: &last}}}
	failed := readyCluster
	failed.Backups, failed.BackupsHealth = report, &pgo.BackupsHealth{Reason: platformv1alpha1.ReasonScheduledBackupFailed, Message: "the full backup of repo1 failed"}
	healthy := readyCluster
	healthy.Backups, healthy.BackupsHealth = report, &pgo.BackupsHealth{Healthy: true, Reason: platformv1alpha1.ReasonBackupsSucceeding, Message: "ok"}
	before := Compute(platformv1alpha1.PostgresStackStatus{}, Observations{Generation: 1, Operator: installed, Cluster: failed}, now)

	tests := []struct {
		name        string
		o           Observations
		wantStatus  metav1.ConditionStatus // "" for no condition
		wantBackups bool
	}{
		{name: "a failed backup: False, Ready untouched", o: Observations{Generation: 1, Operator: installed, Cluster: failed}, wantStatus: metav1.ConditionFalse, wantBackups: true},
		{name: "a later success: True", o: Observations{Generation: 1, Operator: installed, Cluster: healthy}, wantStatus: metav1.ConditionTrue, wantBackups: true},
		{name: "backups off: no condition, no report", o: Observations{Generation: 2, Operator: installed, Cluster: readyCluster}},
		{name: "deleting: kept", o: Observations{Generation: 1, Deleting: true, Operator: installed, Cluster: readyCluster}, wantStatus: metav1.ConditionFalse, wantBackups: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(before, tt.o, now)
			c := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionBackupsHealthy)
			switch {
			case tt.wantStatus == "" && c != nil:
				t.Errorf("BackupsHealthy = %+v, want none", c)
			case tt.wantStatus != "" && (c == nil || c.Status != tt.wantStatus):
				t.Errorf("BackupsHealthy = %+v, want %s", c, tt.wantStatus)
			}
			if (got.Backups != nil) != tt.wantBackups {
				t.Errorf("status.backups = %+v, want present %v", got.Backups, tt.wantBackups)
			}
			if !tt.o.Deleting && !meta.IsStatusConditionTrue(got.Conditions, platformv1alpha1.ConditionReady) {
				t.Errorf("Ready is not True: BackupsHealthy must not move it")
			}
		})
	}
}
