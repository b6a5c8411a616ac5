package policy

import (
	"strings"
	"testing"
	"time"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// saturday0300 is inside a Saturday 02:00-06:00 UTC window.
var saturday0300 = time.Date(2026, time.November, 28, 3, 0, 0, 0, time.UTC)

func weekendWindow() *platformv1alpha1.MaintenanceWindow {
	return &platformv1alpha1.MaintenanceWindow{Days: []platformv1alpha1.Weekday{"Sat", "Sun"}, Start: "02:00", Duration: "4h", TimeZone: "UTC"}
}

func TestDecide(t *testing.T) {
	automatic := StackPolicy{Stack: "team-a/hippo", Approval: platformv1alpha1.ApprovalAutomatic}
	waiting := Plan{Name: "install-abc", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator.v5.8.9"}}

	tests := []struct {
		name        string
		facts       Facts
		wantVerdict Verdict
		wantReason  string
		wantInMsg   string
	}{
		{
			name:        "first install, automatic, no range: approve",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}},
			wantVerdict: Approve, wantReason: ReasonAllowed, wantInMsg: "5.8.9",
		},
		{
			name:        "plan already approved: nothing to decide",
			facts:       Facts{Plan: Plan{Name: "install-abc", Phase: "Installing", Approved: true, CSVNames: waiting.CSVNames}, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}},
			wantVerdict: NotApplicable, wantReason: ReasonNotAwaitingApproval,
		},
		{
			name:        "plan still planning: nothing to decide",
			facts:       Facts{Plan: Plan{Name: "install-abc"}, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}},
			wantVerdict: NotApplicable, wantReason: ReasonNotAwaitingApproval, wantInMsg: "planned",
		},
		{
			name:        "manual: wait for a person",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{{Stack: "team-a/hippo", Approval: platformv1alpha1.ApprovalManual}}},
			wantVerdict: Wait, wantReason: ReasonManualApprovalRequired, wantInMsg: "install-abc",
		},
		{
			name:        "one manual stack among automatic ones holds the shared plan",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic, {Stack: "team-b/zebra", Approval: platformv1alpha1.ApprovalManual}}},
			wantVerdict: Wait, wantReason: ReasonManualApprovalRequired, wantInMsg: "team-b/zebra",
		},
		{
			name:        "inside the range: approve",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, Versions: ">=5.7.0 <5.9.0"}}},
			wantVerdict: Approve, wantReason: ReasonAllowed,
		},
		{
			name:        "outside the range: refuse and say why",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, Versions: "<5.8.9"}}},
			wantVerdict: Refuse, wantReason: ReasonOutsideVersionRange, wantInMsg: `version 5.8.9 is outside stack a/b's allowed range "<5.8.9"`,
		},
		{
			name:        "range refusal wins over manual approval",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalManual, Versions: "<5.8.0"}}},
			wantVerdict: Refuse, wantReason: ReasonOutsideVersionRange,
		},
		{
			name:        "every sharing stack's range counts",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic, {Stack: "team-b/zebra", Approval: platformv1alpha1.ApprovalAutomatic, Versions: "<=5.8.8"}}},
			wantVerdict: Refuse, wantReason: ReasonOutsideVersionRange, wantInMsg: "team-b/zebra",
		},
		{
			name:        "neighbour CSV whose Subscription is Manual: refuse",
			facts:       Facts{Plan: Plan{Name: "install-x", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator.v5.8.9", "redis-operator.v1.2.0"}}, OurCSV: "postgresoperator.v5.8.9", NeighbourAutomatic: map[string]bool{"redis-operator.v1.2.0": false}, Policies: []StackPolicy{automatic}},
			wantVerdict: Refuse, wantReason: ReasonForeignCSV, wantInMsg: "redis-operator.v1.2.0",
		},
		{
			name:        "CSV no Subscription asked for: refuse",
			facts:       Facts{Plan: Plan{Name: "install-x", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator.v5.8.9", "mystery.v0.1.0"}}, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}},
			wantVerdict: Refuse, wantReason: ReasonForeignCSV, wantInMsg: "mystery.v0.1.0",
		},
		{
			name:        "neighbour CSV whose Subscription is Automatic: approve",
			facts:       Facts{Plan: Plan{Name: "install-x", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator.v5.8.9", "redis-operator.v1.2.0"}}, OurCSV: "postgresoperator.v5.8.9", NeighbourAutomatic: map[string]bool{"redis-operator.v1.2.0": true}, Policies: []StackPolicy{automatic}},
			wantVerdict: Approve, wantReason: ReasonAllowed,
		},
		{
			name:        "plan without our CSV: refuse",
			facts:       Facts{Plan: Plan{Name: "install-x", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator.v5.8.8"}}, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}},
			wantVerdict: Refuse, wantReason: ReasonForeignCSV, wantInMsg: "does not carry",
		},
		{
			name:        "upgrade inside the maintenance window: approve",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Now: saturday0300, Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, MaintenanceWindow: weekendWindow()}}},
			wantVerdict: Approve, wantReason: ReasonAllowed,
		},
		{
			name:        "upgrade outside the maintenance window: wait",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Now: saturday0300.Add(4 * time.Hour), Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, MaintenanceWindow: weekendWindow()}}},
			wantVerdict: Wait, wantReason: ReasonOutsideMaintenanceWindow, wantInMsg: "2026-11-29T02:00:00Z",
		},
		{
			name:        "first install ignores the maintenance window",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Now: saturday0300.Add(4 * time.Hour), Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, MaintenanceWindow: weekendWindow()}}},
			wantVerdict: Approve, wantReason: ReasonAllowed,
		},
		{
			name: "a hazard in the plan's contents refuses it, even under Manual approval",
			facts: Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalManual}},
				Hazards: []Hazard{{Reason: ReasonUnsafeCRDChange, Message: "CRD postgresclusters: rule required"}, {Reason: ReasonUpgradeStrandsClusters, Message: "second"}}},
			wantVerdict: Refuse, wantReason: ReasonUnsafeCRDChange, wantInMsg: "rule required",
		},
		{
			name:        "a range refusal comes before a hazard",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{{Stack: "a/b", Versions: "<5.8.9"}}, Hazards: []Hazard{{Reason: ReasonUnsafeCRDChange}}},
			wantVerdict: Refuse, wantReason: ReasonOutsideVersionRange,
		},
		{
			name: "a hold waits, before a person's approval is asked for",
			facts: Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalManual}},
				Hold: &Hazard{Reason: ReasonRolloutPinning, Message: "pinning 3 clusters"}},
			wantVerdict: Wait, wantReason: ReasonRolloutPinning, wantInMsg: "pinning 3 clusters",
		},
		{
			name:        "a refusal comes before a hold",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", Policies: []StackPolicy{automatic}, Hazards: []Hazard{{Reason: ReasonUnsafeCRDChange}}, Hold: &Hazard{Reason: ReasonRolloutPinning}},
			wantVerdict: Refuse, wantReason: ReasonUnsafeCRDChange,
		},
		{
			name:        "the preview rides on a wait's message",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalManual}}, Preview: "approving it restarts 2 of 3 clusters"},
			wantVerdict: Wait, wantReason: ReasonManualApprovalRequired, wantInMsg: "(stack a/b asks for Manual approval); approving it restarts 2 of 3 clusters",
		},
		{
			name:        "and on an approval's",
			facts:       Facts{Plan: waiting, OurCSV: "postgresoperator.v5.8.9", InstalledCSV: "postgresoperator.v5.8.8", Policies: []StackPolicy{automatic}, Preview: "restarts no cluster"},
			wantVerdict: Approve, wantReason: ReasonAllowed, wantInMsg: "policy; restarts no cluster",
		},
		{
			name:        "CSV name without a version and a range to judge: refuse",
			facts:       Facts{Plan: Plan{Name: "p", Phase: "RequiresApproval", CSVNames: []string{"postgresoperator"}}, OurCSV: "postgresoperator", Policies: []StackPolicy{{Stack: "a/b", Approval: platformv1alpha1.ApprovalAutomatic, Versions: ">=5.0.0"}}},
			wantVerdict: Refuse, wantReason: ReasonUnknownVersion,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.facts)
			if got.Verdict != tt.wantVerdict || got.Reason != tt.wantReason {
				t.Fatalf("Decide() = %s/%s (%s), want %s/%s", got.Verdict, got.Reason, got.Message, tt.wantVerdict, tt.wantReason)
			}
			if !strings.Contains(got.Message, tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", got.Message, tt.wantInMsg)
			}
		})
	}
}

func TestWindowOpen(t *testing.T) {
	overnight := platformv1alpha1.MaintenanceWindow{Days: []platformv1alpha1.Weekday{"Fri"}, Start: "23:00", Duration: "3h", TimeZone: "Europe/Berlin"}
	// Friday 27 Nov 2026, 23:00 in Berlin is 22:00 UTC.
	fri2200UTC := time.Date(2026, time.November, 27, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		window   platformv1alpha1.MaintenanceWindow
		now      time.Time
		wantOpen bool
		wantNext time.Time
		wantErr  bool
	}{
		{name: "at opening", window: overnight, now: fri2200UTC, wantOpen: true},
		{name: "past midnight, still open from Friday", window: overnight, now: fri2200UTC.Add(150 * time.Minute), wantOpen: true},
		{name: "at closing: closed, opens next Friday", window: overnight, now: fri2200UTC.Add(3 * time.Hour), wantNext: fri2200UTC.AddDate(0, 0, 7)},
		{name: "before opening", window: overnight, now: fri2200UTC.Add(-time.Minute), wantNext: fri2200UTC},
		{name: "every day when no days are named", window: platformv1alpha1.MaintenanceWindow{Start: "02:00", Duration: "1h"}, now: time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC), wantOpen: true},
		{name: "unknown time zone", window: platformv1alpha1.MaintenanceWindow{Start: "02:00", Duration: "1h", TimeZone: "Mars/Olympus"}, now: fri2200UTC, wantErr: true},
		{name: "unparsable duration", window: platformv1alpha1.MaintenanceWindow{Start: "02:00", Duration: "soon"}, now: fri2200UTC, wantErr: true},
		{name: "longer than a day", window: platformv1alpha1.MaintenanceWindow{Start: "02:00", Duration: "25h"}, now: fri2200UTC, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, next, err := WindowOpen(tt.window, tt.now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if open != tt.wantOpen {
				t.Errorf("open = %v, want %v", open, tt.wantOpen)
			}
			if !tt.wantNext.IsZero() && !next.Equal(tt.wantNext) {
				t.Errorf("next = %s, want %s", next.UTC(), tt.wantNext.UTC())
			}
		})
	}
}

func TestCSVVersion(t *testing.T) {
	for csv, want := range map[string]string{
		"postgresoperator.v5.8.9":         "5.8.9",
		"postgresoperator.5.8.9":          "5.8.9",
		"etcdoperator.v0.9.4-clusterwide": "0.9.4-clusterwide",
	} {
		got, err := CSVVersion(csv)
		if err != nil || got != want {
			t.Errorf("CSVVersion(%q) = %q, %v; want %q", csv, got, err, want)
		}
	}
	if _, err := CSVVersion("postgresoperator"); err == nil {
		t.Error("CSVVersion of a name without version: want an error")
	}
}
