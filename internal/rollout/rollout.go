// Package rollout decides how the clusters sharing one PGO move to a new
// PGO's images: pinned to what they run before the upgrade is approved, so
// that the operator upgrade itself restarts nothing, then released wave by
// wave. It is pure: the rollout controller observes, this package decides,
// and the decision is kept in the PostgresRolloutPolicy's status, so a
// restarted manager carries on where the last one stopped.
package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// DefaultWave is the wave of a stack that names none.
const DefaultWave int32 = 1

// Event reasons, told on the PostgresRolloutPolicy.
const (
	EventStarted   = "RolloutStarted"
	EventPinned    = "ClustersPinned"
	EventCancelled = "RolloutCancelled"
	EventWave      = "WaveStarted"
	EventHalted    = "RolloutHalted"
	EventResumed   = "RolloutResumed"
	EventRolled    = "RolledBack"
	EventComplete  = "RolloutComplete"
	// EventConfigApplied: the controller wrote the policy's operator
	// configuration to the Subscription, every cluster pinned.
	EventConfigApplied = "OperatorConfigApplied"
)

// Member is a stack sharing the operator, as observed now.
type Member struct {
	// Stack is namespace/name.
	Stack string
	Wave  int32
	// Pins are the images the upgrade would change for its cluster, as it
	// runs them now (its preview's "from"); none when it would not restart
	// or has no cluster. Read only when a rollout starts.
	Pins            []platformv1alpha1.PinnedImage
	PostgresVersion int64
	// PinsApplied: the live PostgresCluster names the pinned images and PGO
	// has observed that generation.
	PinsApplied bool
	// Updated: the live PostgresCluster names none of the pinned images, PGO
	// reports it Ready at its generation, and every instance StatefulSet
	// runs a template without them, with every replica updated and ready.
	Updated bool
	// Templates are its instance StatefulSets' update revisions, sorted.
	Templates []string
	// Busy: a restart or switchover the stack asked for (spec.operations)
	// runs on its cluster; it is released only after, so that two things
	// restarting one cluster never run at once.
	Busy bool
}

// Operator is the installed PGO and the change on offer: a new CSV, or a
// new operator configuration the policy owns.
type Operator struct {
	InstalledCSV string
	// Succeeded: the installed CSV's phase is Succeeded.
	Succeeded bool
	// PendingCSV is the CSV an InstallPlan would install (waiting for
	// approval, or approved and installing); empty when none.
	PendingCSV string
	// Config identifies the Subscription's configuration now;
	// DesiredConfig the one the policy asks for ("" when it owns none).
	Config, DesiredConfig string
	// ConfigRunning: PGO's Deployment runs with the Subscription's
	// configuration, rolled out.
	ConfigRunning bool
}

// target is what a change moves the operator to.
func (op Operator) target() (csv, config string, ok bool) {
	switch {
	case op.InstalledCSV == "":
		return "", "", false
	case op.PendingCSV != "" && op.PendingCSV != op.InstalledCSV:
		return op.PendingCSV, op.Config, true
	case op.DesiredConfig != "" && op.DesiredConfig != op.Config:
		return op.InstalledCSV, op.DesiredConfig, true
	}
	return "", "", false
}

// what names a rollout's change for messages.
func what(r *platformv1alpha1.RolloutStatus) string {
	if r.FromCSV == r.ToCSV && r.FromConfig != r.ToConfig {
		return fmt.Sprintf("the operator configuration change (%s to %s) of %s", r.FromConfig, r.ToConfig, r.ToCSV)
	}
	return fmt.Sprintf("the upgrade from %s to %s", r.FromCSV, r.ToCSV)
}

// Input is everything a step decides from.
type Input struct {
	Spec     platformv1alpha1.PostgresRolloutPolicySpec
	Previous *platformv1alpha1.RolloutStatus
	Operator Operator
	// Members by Stack.
	Members map[string]Member
	Now     time.Time
}

// Event is a transition a person wants to see.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Output is the rollout as it now stands.
type Output struct {
	Rollout *platformv1alpha1.RolloutStatus
	// RequeueAfter asks for a look when a soak ends or a deadline passes.
	RequeueAfter time.Duration
	// ApplyConfig: every cluster is pinned for a configuration change; the
	// controller now writes the policy's configuration to the Subscription.
	ApplyConfig bool
	Events      []Event
}

// Step advances the rollout by what is observed.
func Step(in Input) Output {
	out := Output{}
	prev := in.Previous.DeepCopy()
	op := in.Operator
	toCSV, toConfig, changing := op.target()

	if prev == nil || prev.Phase == platformv1alpha1.RolloutComplete {
		if !changing {
			out.Rollout = prev
			return out
		}
		return start(in, out)
	}

	switch prev.Phase {
	case platformv1alpha1.RolloutPinning, platformv1alpha1.RolloutPinned:
		arrived := op.InstalledCSV == prev.ToCSV && op.Config == prev.ToConfig
		switch {
		case arrived && op.Succeeded && (prev.FromConfig == prev.ToConfig || op.ConfigRunning):
			prev.Phase, prev.Wave = platformv1alpha1.RolloutRolling, nil
			prev.Message = fmt.Sprintf("%s runs; releasing the clusters wave by wave", prev.ToCSV)
		case arrived:
			// Installed or configured, not yet running: the clusters stay pinned.
			out.Rollout = prev
			return out
		case !changing:
			out.Events = append(out.Events, Event{Reason: EventCancelled,
				Message: fmt.Sprintf("%s is no longer on offer; the clusters drop their pins (to the images they run)", what(prev))})
			return out
		case toCSV != prev.ToCSV || toConfig != prev.ToConfig || op.InstalledCSV != prev.FromCSV:
			// Another change is on offer: nothing was released, so pin again for it.
			return start(in, out)
		default:
			prev.Clusters = present(prev.Clusters, in.Members)
			if prev.Phase == platformv1alpha1.RolloutPinning && allPinned(prev.Clusters, in.Members) {
				prev.Phase = platformv1alpha1.RolloutPinned
				for i := range prev.Clusters {
					prev.Clusters[i].Templates = in.Members[prev.Clusters[i].Stack].Templates
				}
				prev.Message = fmt.Sprintf("%d clusters pinned to their images; %s may be applied and restarts none of them", len(prev.Clusters), what(prev))
				out.Events = append(out.Events, Event{Reason: EventPinned, Message: prev.Message})
			}
			// A configuration change is pgstack's to apply, once pinned.
			out.ApplyConfig = prev.Phase == platformv1alpha1.RolloutPinned && prev.ToConfig != op.Config
			count(prev)
			out.Rollout = prev
			return out
		}
	}
	return roll(in, prev, out)
}

// start pins every cluster the upgrade would restart.
func start(in Input, out Output) Output {
	toCSV, toConfig, _ := in.Operator.target()
	r := &platformv1alpha1.RolloutStatus{FromCSV: in.Operator.InstalledCSV, ToCSV: toCSV,
		FromConfig: in.Operator.Config, ToConfig: toConfig, Phase: platformv1alpha1.RolloutPinning}
	if in.Previous != nil {
		r.Resumed = in.Previous.Resumed
	}
	for _, m := range in.Members {
		if len(m.Pins) == 0 {
			continue
		}
		r.Clusters = append(r.Clusters, platformv1alpha1.RolloutCluster{Stack: m.Stack, Wave: m.Wave, State: platformv1alpha1.ClusterPinned,
			PostgresVersion: m.PostgresVersion, Images: slices.Clone(m.Pins)})
	}
	sort.Slice(r.Clusters, func(i, j int) bool {
		a, b := r.Clusters[i], r.Clusters[j]
		if a.Wave != b.Wave {
			return a.Wave < b.Wave
		}
		return a.Stack < b.Stack
	})
	r.Message = fmt.Sprintf("%s would restart %d clusters: pinning them to the images they run before it is applied", what(r), len(r.Clusters))
	out.Events = append(out.Events, Event{Reason: EventStarted, Message: r.Message})
	count(r)
	out.Rollout = r
	return out
}

// roll moves the clusters of a rollout whose new PGO runs.
func roll(in Input, r *platformv1alpha1.RolloutStatus, out Output) Output {
	now := metav1.NewTime(in.Now)
	r.Clusters = present(r.Clusters, in.Members)
	for i := range r.Clusters {
		c := &r.Clusters[i]
		if (c.State == platformv1alpha1.ClusterRestarting || c.State == platformv1alpha1.ClusterFailed) && in.Members[c.Stack].Updated {
			c.State, c.UpdatedAt = platformv1alpha1.ClusterUpdated, &now
		}
	}
	defer count(r)
	out.Rollout = r

	if in.Spec.RollBack {
		if r.Phase != platformv1alpha1.RolloutRolledBack {
			r.Phase = platformv1alpha1.RolloutRolledBack
			r.Message = fmt.Sprintf("rolled back: every cluster moved to %s's images is pinned again to the images it ran before; set rollBack to false to go forward", r.ToCSV)
			out.Events = append(out.Events, Event{Warning: true, Reason: EventRolled, Message: r.Message})
		}
		return out
	}
	if r.Phase == platformv1alpha1.RolloutRolledBack {
		r.Phase = platformv1alpha1.RolloutRolling
	}
	if r.Phase == platformv1alpha1.RolloutHalted {
		if in.Spec.Resume == "" || in.Spec.Resume == r.Resumed {
			return out
		}
		r.Resumed = in.Spec.Resume
		r.Phase = platformv1alpha1.RolloutRolling
		for i := range r.Clusters {
			if c := &r.Clusters[i]; c.State == platformv1alpha1.ClusterFailed {
				c.State, c.ReleasedAt = platformv1alpha1.ClusterRestarting, &now
			}
			// A resumed rollout accepts the pinned clusters' templates as
			// they are now.
			if c := &r.Clusters[i]; c.State == platformv1alpha1.ClusterPinned {
				c.Templates = in.Members[c.Stack].Templates
			}
		}
		out.Events = append(out.Events, Event{Reason: EventResumed, Message: fmt.Sprintf("resumed (%q)", in.Spec.Resume)})
	}

	// Halt on a cluster past its deadline, or a pinned cluster whose pods
	// PGO changed anyway.
	deadline := in.Spec.ProgressDeadline.Duration
	next := time.Duration(0)
	for i := range r.Clusters {
		c := &r.Clusters[i]
		switch c.State {
		case platformv1alpha1.ClusterRestarting:
			left := c.ReleasedAt.Add(deadline).Sub(in.Now)
			if left <= 0 {
				c.State = platformv1alpha1.ClusterFailed
				return halt(r, out, fmt.Sprintf("cluster %s did not run Ready on %s's images within %s; nothing further restarts: fix it and set spec.resume to a new value, or set spec.rollBack", c.Stack, r.ToCSV, deadline))
			}
			next = soonest(next, left)
		case platformv1alpha1.ClusterPinned:
			if now := in.Members[c.Stack].Templates; len(c.Templates) > 0 && len(now) > 0 && !slices.Equal(now, c.Templates) {
				return halt(r, out, fmt.Sprintf("%s changed the pods of cluster %s although its images are pinned (StatefulSet revisions %s, were %s); nothing further restarts: check them and set spec.resume to a new value",
					r.ToCSV, c.Stack, strings.Join(now, ","), strings.Join(c.Templates, ",")))
			}
		}
	}

	wave, ok := lowestUnfinished(r.Clusters)
	if !ok {
		r.Phase, r.Wave, r.SoakUntil = platformv1alpha1.RolloutComplete, nil, nil
		r.Message = fmt.Sprintf("every cluster runs %s's images", r.ToCSV)
		out.Events = append(out.Events, Event{Reason: EventComplete, Message: fmt.Sprintf("%d clusters run %s's images", len(r.Clusters), r.ToCSV)})
		return out
	}
	// A wave starts only after every earlier wave ran Ready for soakTime.
	if done, ok := lastUpdated(r.Clusters, wave); ok {
		until := done.Add(in.Spec.SoakTime.Duration)
		if in.Now.Before(until) {
			t := metav1.NewTime(until)
			r.SoakUntil = &t
			r.Message = fmt.Sprintf("wave %d waits for the waves before it to soak until %s", wave, until.UTC().Format(time.RFC3339))
			out.RequeueAfter = until.Sub(in.Now)
			return out
		}
	}
	r.SoakUntil = nil
	restarting := 0
	for _, c := range r.Clusters {
		if c.State == platformv1alpha1.ClusterRestarting || c.State == platformv1alpha1.ClusterFailed {
			restarting++
		}
	}
	var released []string
	for i := range r.Clusters {
		c := &r.Clusters[i]
		if restarting >= int(max(in.Spec.MaxConcurrent, 1)) {
			break
		}
		if c.Wave != wave || c.State != platformv1alpha1.ClusterPinned || in.Members[c.Stack].Busy {
			continue
		}
		c.State, c.ReleasedAt = platformv1alpha1.ClusterRestarting, &now
		released = append(released, c.Stack)
		restarting++
		next = soonest(next, deadline)
	}
	if r.Wave == nil || *r.Wave != wave {
		w := wave
		r.Wave = &w
		out.Events = append(out.Events, Event{Reason: EventWave, Message: fmt.Sprintf("wave %d moves to %s's images: %s first", wave, r.ToCSV, strings.Join(released, ", "))})
	}
	r.Message = fmt.Sprintf("wave %d moves to %s's images, at most %d clusters at a time", wave, r.ToCSV, max(in.Spec.MaxConcurrent, 1))
	out.RequeueAfter = next
	return out
}

func halt(r *platformv1alpha1.RolloutStatus, out Output, message string) Output {
	if r.Phase != platformv1alpha1.RolloutHalted {
		out.Events = append(out.Events, Event{Warning: true, Reason: EventHalted, Message: message})
	}
	r.Phase, r.Message = platformv1alpha1.RolloutHalted, message
	out.Rollout = r
	return out
}

// present keeps the clusters whose stacks still share the operator.
func present(clusters []platformv1alpha1.RolloutCluster, members map[string]Member) []platformv1alpha1.RolloutCluster {
	var out []platformv1alpha1.RolloutCluster
	for _, c := range clusters {
		if _, ok := members[c.Stack]; ok {
			out = append(out, c)
		}
	}
	return out
}

func allPinned(clusters []platformv1alpha1.RolloutCluster, members map[string]Member) bool {
	for _, c := range clusters {
		if !members[c.Stack].PinsApplied {
			return false
		}
	}
	return true
}

// lowestUnfinished is the lowest wave with a cluster not yet Updated.
func lowestUnfinished(clusters []platformv1alpha1.RolloutCluster) (int32, bool) {
	found := false
	var wave int32
	for _, c := range clusters {
		if c.State != platformv1alpha1.ClusterUpdated && (!found || c.Wave < wave) {
			wave, found = c.Wave, true
		}
	}
	return wave, found
}

// lastUpdated is when the last cluster of the waves before wave ran Ready.
func lastUpdated(clusters []platformv1alpha1.RolloutCluster, wave int32) (time.Time, bool) {
	var last time.Time
	found := false
	for _, c := range clusters {
		if c.Wave < wave && c.UpdatedAt != nil && (!found || c.UpdatedAt.After(last)) {
			last, found = c.UpdatedAt.Time, true
		}
	}
	return last, found
}

func count(r *platformv1alpha1.RolloutStatus) {
	r.Total, r.Updated = int32(len(r.Clusters)), 0
	for _, c := range r.Clusters {
		if c.State == platformv1alpha1.ClusterUpdated {
			r.Updated++
		}
	}
}

func soonest(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// Place finds a stack's cluster in a rollout: found when the rollout
// restarts it, pinned while it is held on its old images (before its wave,
// and, while a person rolls back, after it).
func Place(r *platformv1alpha1.RolloutStatus, stack string) (c platformv1alpha1.RolloutCluster, found, pinned bool) {
	if r == nil {
		return c, false, false
	}
	for _, c := range r.Clusters {
		if c.Stack == stack {
			held := r.Phase != platformv1alpha1.RolloutComplete &&
				(c.State == platformv1alpha1.ClusterPinned || r.Phase == platformv1alpha1.RolloutRolledBack)
			return c, true, held
		}
	}
	return c, false, false
}

// Images are a cluster's pins as component -> reference.
func Images(c platformv1alpha1.RolloutCluster) map[string]string {
	out := make(map[string]string, len(c.Images))
	for _, i := range c.Images {
		out[i.Component] = i.Image
	}
	return out
}

// Wave is a stack's wave.
func Wave(s *platformv1alpha1.PostgresStack) int32 {
	if w := s.Spec.Operator.RolloutWave; w != nil {
		return *w
	}
	return DefaultWave
}
