// Package policy decides whether pgstack may approve an OLM InstallPlan. It is
// pure: the controller gathers the facts, this package judges them.
//
// The rules follow what OperatorPolicy in open-cluster-management does: only
// a plan in RequiresApproval is judged, and only when every ClusterServiceVersion
// it carries is allowed. Approving a plan installs all of its CSVs, so a plan
// that also carries a neighbour's CSV is judged on that CSV too.
package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// Verdict is what may be done with a plan.
type Verdict string

const (
	// Approve: every CSV in the plan is allowed by every stack's policy.
	Approve Verdict = "Approve"
	// Wait: allowed in principle, but not now (a person must approve, or the
	// maintenance window is closed).
	Wait Verdict = "Wait"
	// Refuse: the plan carries something the policy never allows.
	Refuse Verdict = "Refuse"
	// NotApplicable: the plan is not waiting for approval.
	NotApplicable Verdict = "NotApplicable"
)

// Reasons a decision gives; they become UpgradeApproved's reasons, kept with
// the other condition reasons in the API package.
const (
	ReasonAllowed                  = platformv1alpha1.ReasonAllowed
	ReasonNotAwaitingApproval      = platformv1alpha1.ReasonNotAwaitingApproval
	ReasonManualApprovalRequired   = platformv1alpha1.ReasonManualApprovalRequired
	ReasonOutsideVersionRange      = platformv1alpha1.ReasonOutsideVersionRange
	ReasonOutsideMaintenanceWindow = platformv1alpha1.ReasonOutsideMaintenanceWindow
	ReasonForeignCSV               = platformv1alpha1.ReasonForeignCSV
	ReasonUnknownVersion           = platformv1alpha1.ReasonUnknownVersion
	ReasonUpgradeStrandsClusters   = platformv1alpha1.ReasonUpgradeStrandsClusters
	ReasonUnsafeCRDChange          = platformv1alpha1.ReasonUnsafeCRDChange
	ReasonRolloutPinning           = platformv1alpha1.ReasonRolloutPinning
)

// Hazard is something in a plan's contents that forbids approving it,
// whatever the policies say: found by the controller from the plan's new
// CSV and CRDs (a stranded cluster, an unsafe CRD change).
type Hazard struct {
	Reason  string
	Message string
}

// StackPolicy is one stack's say over the operator it shares with others.
type StackPolicy struct {
	// Stack names the stack as namespace/name, for messages.
	Stack             string
	Approval          platformv1alpha1.ApprovalMode
	Versions          string
	MaintenanceWindow *platformv1alpha1.MaintenanceWindow
}

// Plan is what the decision needs of an InstallPlan.
type Plan struct {
	Name     string
	Phase    string
	Approved bool
	CSVNames []string
}

// Facts are everything observed that bears on approving one plan.
type Facts struct {
	// Plan is the plan the Subscription's installPlanRef names.
	Plan Plan
	// OurCSV is the CSV OLM resolved for our package (the Subscription's currentCSV).
	OurCSV string
	// InstalledCSV is the CSV installed today; empty on a first install, which
	// a maintenance window never holds back.
	InstalledCSV string
	// NeighbourAutomatic maps each other CSV that a Subscription in the same
	// namespace asked for to whether that Subscription approves automatically.
	NeighbourAutomatic map[string]bool
	// Policies of every stack that uses the operator.
	Policies []StackPolicy
	// Now is the time windows are judged at.
	Now time.Time
	// Hazards found in the plan's contents; the first refuses it.
	Hazards []Hazard
	// Hold, when set, is something the upgrade waits for before pgstack
	// approves it (the rollout policy pinning the clusters).
	Hold *Hazard
	// Preview says what the upgrade would do to the clusters, for the
	// message of a plan approved or waiting.
	Preview string
}

// Decision is the verdict on a plan, with a reason and a message a person understands.
type Decision struct {
	Verdict Verdict
	Reason  string
	Message string
	// Version is our package's version in the plan, when known.
	Version string
	// RetryAt is when a closed maintenance window opens, for a Wait on it.
	RetryAt time.Time
}

// Decide judges a plan against every stack's policy.
func Decide(f Facts) Decision {
	if f.Plan.Approved || f.Plan.Phase != "RequiresApproval" {
		return Decision{Verdict: NotApplicable, Reason: ReasonNotAwaitingApproval,
			Message: fmt.Sprintf("install plan %s is %s", f.Plan.Name, phaseOrNone(f.Plan.Phase, f.Plan.Approved))}
	}
	version, versionErr := CSVVersion(f.OurCSV)
	d := Decision{Verdict: Approve, Reason: ReasonAllowed, Version: version}

	// Refusals first: they hold whatever a person or the clock says.
	if !contains(f.Plan.CSVNames, f.OurCSV) {
		return Decision{Verdict: Refuse, Reason: ReasonForeignCSV, Version: version,
			Message: fmt.Sprintf("install plan %s does not carry %s, the version the Subscription resolved", f.Plan.Name, f.OurCSV)}
	}
	for _, csv := range sortedCopy(f.Plan.CSVNames) {
		if csv == f.OurCSV {
			continue
		}
		if !f.NeighbourAutomatic[csv] {
			return Decision{Verdict: Refuse, Reason: ReasonForeignCSV, Version: version,
				Message: fmt.Sprintf("install plan %s also installs %s, which no Subscription in the namespace approves automatically; approve it by hand if both are wanted", f.Plan.Name, csv)}
		}
	}
	for _, p := range f.Policies {
		if p.Versions == "" {
			continue
		}
		if versionErr != nil {
			return Decision{Verdict: Refuse, Reason: ReasonUnknownVersion, Message: fmt.Sprintf("cannot judge %s against %s's range %q: %v", f.OurCSV, p.Stack, p.Versions, versionErr)}
		}
		ok, err := InRange(version, p.Versions)
		if err != nil {
			return Decision{Verdict: Refuse, Reason: ReasonOutsideVersionRange, Version: version,
				Message: fmt.Sprintf("stack %s has an invalid version range %q: %v", p.Stack, p.Versions, err)}
		}
		if !ok {
			return Decision{Verdict: Refuse, Reason: ReasonOutsideVersionRange, Version: version,
				Message: fmt.Sprintf("version %s is outside stack %s's allowed range %q", version, p.Stack, p.Versions)}
		}
	}

	if len(f.Hazards) > 0 {
		h := f.Hazards[0]
		return Decision{Verdict: Refuse, Reason: h.Reason, Version: version, Message: h.Message}
	}

	// Waits: allowed, but not by pgstack or not yet.
	if h := f.Hold; h != nil {
		return Decision{Verdict: Wait, Reason: h.Reason, Version: version, Message: withPreview(h.Message, f.Preview)}
	}
	for _, p := range f.Policies {
		if p.Approval == platformv1alpha1.ApprovalManual {
			return Decision{Verdict: Wait, Reason: ReasonManualApprovalRequired, Version: version,
				Message: withPreview(fmt.Sprintf("version %s waits for a person to approve install plan %s (stack %s asks for Manual approval)", version, f.Plan.Name, p.Stack), f.Preview)}
		}
	}
	if f.InstalledCSV != "" {
		for _, p := range f.Policies {
			if p.MaintenanceWindow == nil {
				continue
			}
			open, next, err := WindowOpen(*p.MaintenanceWindow, f.Now)
			if err != nil {
				return Decision{Verdict: Refuse, Reason: ReasonOutsideMaintenanceWindow, Version: version,
					Message: fmt.Sprintf("stack %s has a maintenance window that cannot be read: %v", p.Stack, err)}
			}
			if !open {
				return Decision{Verdict: Wait, Reason: ReasonOutsideMaintenanceWindow, Version: version, RetryAt: next,
					Message: withPreview(fmt.Sprintf("upgrade to %s waits for stack %s's maintenance window, which opens at %s", version, p.Stack, next.UTC().Format(time.RFC3339)), f.Preview)}
			}
		}
	}
	d.Message = withPreview(fmt.Sprintf("version %s is allowed by every stack's policy", version), f.Preview)
	return d
}

func withPreview(message, preview string) string {
	if preview == "" {
		return message
	}
	return message + "; " + preview
}

func phaseOrNone(phase string, approved bool) string {
	switch {
	case approved:
		return "already approved"
	case phase == "":
		return "still being planned"
	default:
		return "in phase " + phase
	}
}

// csvVersionPattern finds the version in an OLM CSV name such as postgresoperator.v5.8.9.
var csvVersionPattern = regexp.MustCompile(`\.v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)$`)

// CSVVersion reads the semantic version out of a CSV name.
func CSVVersion(csv string) (string, error) {
	m := csvVersionPattern.FindStringSubmatch(csv)
	if m == nil {
		return "", fmt.Errorf("CSV name %q carries no version (want <name>.v<major>.<minor>.<patch>)", csv)
	}
	return m[1], nil
}

// InRange reports whether version satisfies a semver range such as ">=5.7.0 <5.9.0".
func InRange(version, versionRange string) (bool, error) {
	c, err := semver.NewConstraint(versionRange)
	if err != nil {
		return false, fmt.Errorf("parse version range %q: %w", versionRange, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, fmt.Errorf("parse version %q: %w", version, err)
	}
	return c.Check(v), nil
}

// ValidateRange checks that a version range parses.
func ValidateRange(versionRange string) error {
	if _, err := semver.NewConstraint(versionRange); err != nil {
		return fmt.Errorf("parse version range %q: %w", versionRange, err)
	}
	return nil
}

var weekdays = map[platformv1alpha1.Weekday]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

// WindowOpen reports whether the window is open at now and, when it is not,
// when it next opens.
func WindowOpen(w platformv1alpha1.MaintenanceWindow, now time.Time) (bool, time.Time, error) {
	tzName := w.TimeZone
	if tzName == "" {
		tzName = "UTC"
	}
	loc, err := time.LoadLocation(tzName)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("time zone %q: %w", tzName, err)
	}
	start, err := time.Parse("15:04", w.Start)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("start %q: %w", w.Start, err)
	}
	length, err := time.ParseDuration(w.Duration)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("duration %q: %w", w.Duration, err)
	}
	if length <= 0 || length > 24*time.Hour {
		return false, time.Time{}, fmt.Errorf("duration %s must be more than 0 and at most 24h", length)
	}
	days := map[time.Weekday]bool{}
	for _, d := range w.Days {
		wd, ok := weekdays[d]
		if !ok {
			return false, time.Time{}, fmt.Errorf("unknown day %q", d)
		}
		days[wd] = true
	}
	local := now.In(loc)
	// A window lasts at most a day, so only yesterday's opening can still be
	// open now; look a week ahead for the next one.
	for offset := -1; offset <= 7; offset++ {
		day := local.AddDate(0, 0, offset)
		if len(days) > 0 && !days[day.Weekday()] {
			continue
		}
		opens := time.Date(day.Year(), day.Month(), day.Day(), start.Hour(), start.Minute(), 0, 0, loc)
		closes := opens.Add(length)
		if !now.Before(opens) && now.Before(closes) {
			return true, time.Time{}, nil
		}
		if opens.After(now) {
			return false, opens, nil
		}
	}
	return false, time.Time{}, fmt.Errorf("window never opens")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

// Describe lists the policies for messages, such as "team-a/hippo (Manual)".
func Describe(policies []StackPolicy) string {
	names := make([]string, 0, len(policies))
	for _, p := range policies {
		names = append(names, p.Stack)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
