package rollout

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

const (
	old = "postgresoperator.v5.8.8"
	new = "postgresoperator.v5.8.9"
)

var (
	t0   = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	spec = platformv1alpha1.PostgresRolloutPolicySpec{MaxConcurrent: 2,
		SoakTime: metav1.Duration{Duration: 5 * time.Minute}, ProgressDeadline: metav1.Duration{Duration: 10 * time.Minute}}
	pins = []platformv1alpha1.PinnedImage{{Component: "postgres", Image: "pg:16-2550"}}
)

// member builds a stack sharing the operator; flags: "pinned" (pins
// applied), "updated", "nopins" (the upgrade would not restart it).
func member(stack string, wave int32, flags ...string) Member {
	m := Member{Stack: stack, Wave: wave, Pins: pins, PostgresVersion: 16, Templates: []string{stack + "-rev1"}}
	for _, f := range flags {
		switch f {
		case "pinned":
			m.PinsApplied = true
		case "updated":
			m.Updated = true
		case "nopins":
			m.Pins = nil
		case "busy":
			m.Busy = true
		case "drifted":
			m.Templates = []string{stack + "-rev2"}
		}
	}
	return m
}

func members(ms ...Member) map[string]Member {
	out := map[string]Member{}
	for _, m := range ms {
		out[m.Stack] = m
	}
	return out
}

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

func cluster(stack string, wave int32, state platformv1alpha1.RolloutClusterState, released, updated *metav1.Time) platformv1alpha1.RolloutCluster {
	return platformv1alpha1.RolloutCluster{Stack: stack, Wave: wave, State: state, PostgresVersion: 16, Images: pins,
		ReleasedAt: released, UpdatedAt: updated, Templates: []string{stack + "-rev1"}}
}

func rolling(phase platformv1alpha1.RolloutPhase, wave int32, clusters ...platformv1alpha1.RolloutCluster) *platformv1alpha1.RolloutStatus {
	r := &platformv1alpha1.RolloutStatus{FromCSV: old, ToCSV: new, Phase: phase, Wave: &wave, Clusters: clusters}
	count(r)
	return r
}

var (
	pending   = Operator{InstalledCSV: old, Succeeded: true, PendingCSV: new}
	installed = Operator{InstalledCSV: new, Succeeded: true}
)

func TestStep(t *testing.T) {
	type want struct {
		phase platformv1alpha1.RolloutPhase // "" for no rollout
		// states lists each cluster as stack=state, in order.
		states  string
		wave    int32
		event   string
		message string
		requeue time.Duration
		apply   bool
	}
	p, r, u, f := platformv1alpha1.ClusterPinned, platformv1alpha1.ClusterRestarting, platformv1alpha1.ClusterUpdated, platformv1alpha1.ClusterFailed
	tests := []struct {
		name     string
		spec     func(*platformv1alpha1.PostgresRolloutPolicySpec)
		previous *platformv1alpha1.RolloutStatus
		operator Operator
		members  map[string]Member
		now      time.Duration
		want     want
	}{
		{name: "no upgrade on offer: no rollout", operator: Operator{InstalledCSV: old, Succeeded: true},
			members: members(member("a/one", 1)), want: want{}},
		{name: "an upgrade on offer pins every cluster it restarts, canaries first", operator: pending,
			members: members(member("b/two", 1), member("a/one", 1), member("c/canary", 0), member("d/pinned-by-spec", 1, "nopins")),
			want:    want{phase: platformv1alpha1.RolloutPinning, states: "c/canary=Pinned a/one=Pinned b/two=Pinned", event: EventStarted, message: "would restart 3 clusters"}},
		{name: "pinning waits for every cluster's pins to be applied", operator: pending,
			previous: &platformv1alpha1.RolloutStatus{FromCSV: old, ToCSV: new, Phase: platformv1alpha1.RolloutPinning, Clusters: []platformv1alpha1.RolloutCluster{cluster("a/one", 1, p, nil, nil), cluster("b/two", 1, p, nil, nil)}},
			members:  members(member("a/one", 1, "pinned"), member("b/two", 1)),
			want:     want{phase: platformv1alpha1.RolloutPinning, states: "a/one=Pinned b/two=Pinned"}},
		{name: "every pin applied: Pinned, and the upgrade may be approved", operator: pending,
			previous: &platformv1alpha1.RolloutStatus{FromCSV: old, ToCSV: new, Phase: platformv1alpha1.RolloutPinning, Clusters: []platformv1alpha1.RolloutCluster{cluster("a/one", 1, p, nil, nil)}},
			members:  members(member("a/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutPinned, states: "a/one=Pinned", event: EventPinned, message: "restarts none of them"}},
		{name: "the upgrade withdrawn before approval: no rollout, pins dropped", operator: Operator{InstalledCSV: old, Succeeded: true},
			previous: rolling(platformv1alpha1.RolloutPinned, 0, cluster("a/one", 1, p, nil, nil)),
			members:  members(member("a/one", 1, "pinned")), want: want{event: EventCancelled}},
		{name: "another upgrade on offer before approval: pinned again for it", operator: Operator{InstalledCSV: old, Succeeded: true, PendingCSV: "postgresoperator.v5.9.0"},
			previous: rolling(platformv1alpha1.RolloutPinned, 0, cluster("a/one", 1, p, nil, nil)),
			members:  members(member("a/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutPinning, states: "a/one=Pinned", event: EventStarted, message: "to postgresoperator.v5.9.0"}},
		{name: "the new CSV installed but not Succeeded: still pinned", operator: Operator{InstalledCSV: new},
			previous: rolling(platformv1alpha1.RolloutPinned, 0, cluster("a/one", 1, p, nil, nil)),
			members:  members(member("a/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutPinned, states: "a/one=Pinned"}},
		{name: "the new PGO runs: canaries first, at most maxConcurrent", operator: installed,
			previous: rolling(platformv1alpha1.RolloutPinned, 0, cluster("a/c1", 0, p, nil, nil), cluster("b/c2", 0, p, nil, nil), cluster("c/c3", 0, p, nil, nil), cluster("d/one", 1, p, nil, nil)),
			members:  members(member("a/c1", 0, "pinned"), member("b/c2", 0, "pinned"), member("c/c3", 0, "pinned"), member("d/one", 1, "pinned")),
			want: want{phase: platformv1alpha1.RolloutRolling, wave: 0, states: "a/c1=Restarting b/c2=Restarting c/c3=Pinned d/one=Pinned", event: EventWave,
				requeue: 10 * time.Minute}},
		{name: "a cluster running a restart or switchover of its own is passed over, and released after", operator: installed,
			previous: rolling(platformv1alpha1.RolloutPinned, 0, cluster("a/c1", 0, p, nil, nil), cluster("b/c2", 0, p, nil, nil), cluster("c/c3", 0, p, nil, nil)),
			members:  members(member("a/c1", 0, "pinned", "busy"), member("b/c2", 0, "pinned"), member("c/c3", 0, "pinned")),
			want: want{phase: platformv1alpha1.RolloutRolling, wave: 0, states: "a/c1=Pinned b/c2=Restarting c/c3=Restarting", event: EventWave,
				requeue: 10 * time.Minute}},
		{name: "a canary runs Ready on the new images: the next canary goes", operator: installed, now: 2 * time.Minute,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, r, at(0), nil), cluster("b/c2", 0, r, at(0), nil), cluster("c/c3", 0, p, nil, nil), cluster("d/one", 1, p, nil, nil)),
			members:  members(member("a/c1", 0, "updated"), member("b/c2", 0), member("c/c3", 0, "pinned"), member("d/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, wave: 0, states: "a/c1=Updated b/c2=Restarting c/c3=Restarting d/one=Pinned", requeue: 8 * time.Minute}},
		{name: "the canaries done: the next wave waits out the soak", operator: installed, now: 3 * time.Minute,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, u, at(0), at(time.Minute)), cluster("b/c2", 0, r, at(0), nil), cluster("d/one", 1, p, nil, nil)),
			members:  members(member("a/c1", 0, "updated"), member("b/c2", 0, "updated"), member("d/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, wave: 0, states: "a/c1=Updated b/c2=Updated d/one=Pinned", message: "soak until 2026-12-02T10:08:00Z", requeue: 5 * time.Minute}},
		{name: "soaked: the next wave goes", operator: installed, now: 8 * time.Minute,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, u, at(0), at(time.Minute)), cluster("b/c2", 0, u, at(0), at(3*time.Minute)), cluster("d/one", 1, p, nil, nil)),
			members:  members(member("a/c1", 0, "updated"), member("b/c2", 0, "updated"), member("d/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, wave: 1, states: "a/c1=Updated b/c2=Updated d/one=Restarting", event: EventWave, requeue: 10 * time.Minute}},
		{name: "a cluster past its deadline halts everything", operator: installed, now: 11 * time.Minute,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, r, at(0), nil), cluster("b/c2", 0, u, at(0), at(time.Minute)), cluster("c/c3", 0, p, nil, nil)),
			members:  members(member("a/c1", 0), member("b/c2", 0, "updated"), member("c/c3", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutHalted, wave: 0, states: "a/c1=Failed b/c2=Updated c/c3=Pinned", event: EventHalted, message: "cluster a/c1 did not run Ready"}},
		{name: "halted: the same resume value does nothing", operator: installed, now: 20 * time.Minute,
			spec: func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.Resume = "once" },
			previous: func() *platformv1alpha1.RolloutStatus {
				r := rolling(platformv1alpha1.RolloutHalted, 0, cluster("a/c1", 0, f, at(0), nil), cluster("c/c3", 0, p, nil, nil))
				r.Resumed = "once"
				return r
			}(),
			members: members(member("a/c1", 0), member("c/c3", 0, "pinned")),
			want:    want{phase: platformv1alpha1.RolloutHalted, wave: 0, states: "a/c1=Failed c/c3=Pinned"}},
		{name: "halted: a new resume value gives the failed cluster a new deadline", operator: installed, now: 20 * time.Minute,
			spec:     func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.Resume = "twice" },
			previous: rolling(platformv1alpha1.RolloutHalted, 0, cluster("a/c1", 0, f, at(0), nil), cluster("c/c3", 0, p, nil, nil)),
			members:  members(member("a/c1", 0), member("c/c3", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, wave: 0, states: "a/c1=Restarting c/c3=Restarting", event: EventResumed, requeue: 10 * time.Minute}},
		{name: "a halted cluster that recovers by itself still waits for a person", operator: installed, now: 20 * time.Minute,
			previous: rolling(platformv1alpha1.RolloutHalted, 0, cluster("a/c1", 0, f, at(0), nil), cluster("c/c3", 0, p, nil, nil)),
			members:  members(member("a/c1", 0, "updated"), member("c/c3", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutHalted, wave: 0, states: "a/c1=Updated c/c3=Pinned"}},
		{name: "PGO changed a pinned cluster's pods: halt", operator: installed,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, r, at(0), nil), cluster("c/c3", 1, p, nil, nil)),
			members:  members(member("a/c1", 0), member("c/c3", 1, "pinned", "drifted")),
			want:     want{phase: platformv1alpha1.RolloutHalted, wave: 0, states: "a/c1=Restarting c/c3=Pinned", event: EventHalted, message: "changed the pods of cluster c/c3"}},
		{name: "rolling back pins every moved cluster again", operator: installed,
			spec:     func(s *platformv1alpha1.PostgresRolloutPolicySpec) { s.RollBack = true },
			previous: rolling(platformv1alpha1.RolloutHalted, 0, cluster("a/c1", 0, f, at(0), nil), cluster("b/c2", 0, u, at(0), at(time.Minute)), cluster("c/c3", 0, p, nil, nil)),
			members:  members(member("a/c1", 0), member("b/c2", 0, "updated"), member("c/c3", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolledBack, wave: 0, states: "a/c1=Failed b/c2=Updated c/c3=Pinned", event: EventRolled}},
		{name: "every cluster updated: Complete", operator: installed,
			previous: rolling(platformv1alpha1.RolloutRolling, 1, cluster("a/c1", 0, u, at(0), at(time.Minute)), cluster("d/one", 1, r, at(0), nil)),
			members:  members(member("a/c1", 0, "updated"), member("d/one", 1, "updated")),
			want:     want{phase: platformv1alpha1.RolloutComplete, states: "a/c1=Updated d/one=Updated", event: EventComplete}},
		{name: "a stack deleted mid-rollout leaves it", operator: installed,
			previous: rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, r, at(0), nil), cluster("d/one", 1, p, nil, nil)),
			members:  members(member("d/one", 1, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, wave: 1, states: "d/one=Restarting", event: EventWave, requeue: 10 * time.Minute}},
		{name: "complete stays complete", operator: installed,
			previous: rolling(platformv1alpha1.RolloutComplete, 0, cluster("a/c1", 0, u, at(0), at(time.Minute))),
			members:  members(member("a/c1", 0, "updated")),
			want:     want{phase: platformv1alpha1.RolloutComplete, states: "a/c1=Updated"}},
		{name: "a new operator configuration pins the clusters it restarts", operator: Operator{InstalledCSV: new, Succeeded: true, Config: "c1", DesiredConfig: "c2", ConfigRunning: true},
			members: members(member("a/c1", 0), member("d/one", 1, "nopins")),
			want:    want{phase: platformv1alpha1.RolloutPinning, states: "a/c1=Pinned", event: EventStarted, message: "configuration change (c1 to c2)"}},
		{name: "pinned for it: pgstack applies the configuration", operator: Operator{InstalledCSV: new, Succeeded: true, Config: "c1", DesiredConfig: "c2", ConfigRunning: true},
			previous: configRollout(platformv1alpha1.RolloutPinned),
			members:  members(member("a/c1", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutPinned, states: "a/c1=Pinned", apply: true}},
		{name: "applied, PGO's Deployment not yet rolled out: still pinned", operator: Operator{InstalledCSV: new, Succeeded: true, Config: "c2", DesiredConfig: "c2"},
			previous: configRollout(platformv1alpha1.RolloutPinned),
			members:  members(member("a/c1", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutPinned, states: "a/c1=Pinned"}},
		{name: "PGO runs the new configuration: the waves start", operator: Operator{InstalledCSV: new, Succeeded: true, Config: "c2", DesiredConfig: "c2", ConfigRunning: true},
			previous: configRollout(platformv1alpha1.RolloutPinned),
			members:  members(member("a/c1", 0, "pinned")),
			want:     want{phase: platformv1alpha1.RolloutRolling, states: "a/c1=Restarting", event: EventWave, requeue: 10 * time.Minute}},
		{name: "the configuration set back before it was applied: pins dropped", operator: Operator{InstalledCSV: new, Succeeded: true, Config: "c1", DesiredConfig: "c1", ConfigRunning: true},
			previous: configRollout(platformv1alpha1.RolloutPinning),
			members:  members(member("a/c1", 0)), want: want{event: EventCancelled}},
		{name: "the next upgrade after a complete one starts afresh", operator: Operator{InstalledCSV: new, Succeeded: true, PendingCSV: "postgresoperator.v5.9.0"},
			previous: rolling(platformv1alpha1.RolloutComplete, 0, cluster("a/c1", 0, u, at(0), at(time.Minute))),
			members:  members(member("a/c1", 0)),
			want:     want{phase: platformv1alpha1.RolloutPinning, states: "a/c1=Pinned", event: EventStarted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec
			if tt.spec != nil {
				tt.spec(&s)
			}
			before := tt.previous.DeepCopy()
			out := Step(Input{Spec: s, Previous: tt.previous, Operator: tt.operator, Members: tt.members, Now: t0.Add(tt.now)})
			if !equalStatus(before, tt.previous) {
				t.Fatal("Step changed its input")
			}
			got := out.Rollout
			if tt.want.phase == "" {
				if got != nil {
					t.Fatalf("rollout = %+v, want none", got)
				}
			} else {
				if got == nil || got.Phase != tt.want.phase {
					t.Fatalf("rollout = %+v, want phase %s", got, tt.want.phase)
				}
				var states []string
				updated := int32(0)
				for _, c := range got.Clusters {
					states = append(states, c.Stack+"="+string(c.State))
					if c.State == platformv1alpha1.ClusterUpdated {
						updated++
					}
				}
				if strings.Join(states, " ") != tt.want.states {
					t.Errorf("clusters %q, want %q", strings.Join(states, " "), tt.want.states)
				}
				if got.Total != int32(len(got.Clusters)) || got.Updated != updated {
					t.Errorf("counts %d/%d, want %d/%d", got.Updated, got.Total, updated, len(got.Clusters))
				}
				if got.Wave != nil && *got.Wave != tt.want.wave {
					t.Errorf("wave %d, want %d", *got.Wave, tt.want.wave)
				}
				if !strings.Contains(got.Message, tt.want.message) {
					t.Errorf("message %q, want it to say %q", got.Message, tt.want.message)
				}
			}
			var reasons []string
			for _, e := range out.Events {
				reasons = append(reasons, e.Reason)
			}
			if strings.Join(reasons, ",") != tt.want.event {
				t.Errorf("events %v, want %q", out.Events, tt.want.event)
			}
			if out.ApplyConfig != tt.want.apply {
				t.Errorf("ApplyConfig = %v, want %v", out.ApplyConfig, tt.want.apply)
			}
			if out.RequeueAfter != tt.want.requeue {
				t.Errorf("requeue after %s, want %s", out.RequeueAfter, tt.want.requeue)
			}
		})
	}
}

// configRollout is a configuration change c1 -> c2 of the installed PGO.
func configRollout(phase platformv1alpha1.RolloutPhase) *platformv1alpha1.RolloutStatus {
	r := &platformv1alpha1.RolloutStatus{FromCSV: new, ToCSV: new, FromConfig: "c1", ToConfig: "c2", Phase: phase,
		Clusters: []platformv1alpha1.RolloutCluster{cluster("a/c1", 0, platformv1alpha1.ClusterPinned, nil, nil)}}
	count(r)
	return r
}

func equalStatus(a, b *platformv1alpha1.RolloutStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Phase == b.Phase && len(a.Clusters) == len(b.Clusters) && (len(a.Clusters) == 0 || a.Clusters[0].State == b.Clusters[0].State)
}

func TestPlace(t *testing.T) {
	r := rolling(platformv1alpha1.RolloutRolling, 0, cluster("a/c1", 0, platformv1alpha1.ClusterUpdated, at(0), at(time.Minute)), cluster("d/one", 1, platformv1alpha1.ClusterPinned, nil, nil))
	for _, tt := range []struct {
		phase             platformv1alpha1.RolloutPhase
		stack             string
		wantFound, wantIn bool
	}{
		{platformv1alpha1.RolloutRolling, "a/c1", true, false},
		{platformv1alpha1.RolloutRolling, "d/one", true, true},
		{platformv1alpha1.RolloutRolling, "x/not-in-it", false, false},
		{platformv1alpha1.RolloutRolledBack, "a/c1", true, true},
		{platformv1alpha1.RolloutHalted, "d/one", true, true},
		{platformv1alpha1.RolloutComplete, "d/one", true, false},
	} {
		r.Phase = tt.phase
		c, found, pinned := Place(r, tt.stack)
		if found != tt.wantFound || pinned != tt.wantIn || (found && Images(c)["postgres"] != "pg:16-2550") {
			t.Errorf("Place(%s, %s) = %+v %v %v, want %v %v", tt.phase, tt.stack, c, found, pinned, tt.wantFound, tt.wantIn)
		}
	}
	if _, found, _ := Place(nil, "a/c1"); found {
		t.Error("found without a rollout")
	}
}
