// Package status computes a PostgresStack's status from what one reconcile
// observed, and nothing else: per-component conditions first, then the kstatus
// summary (Ready, Reconciling, Stalled) with observedGeneration.
package status

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
)

// Problem is something a person must fix; it stalls the stack.
type Problem struct {
	Reason  string
	Message string
}

// Operator is what was observed of the OLM install.
type Operator struct {
	// Observed: this reconcile looked at the install. A deleting stack does
	// not; it keeps what it last reported rather than unsaying it.
	Observed bool
	// Problem stops the install until a person acts (OLM missing, a conflict,
	// two OperatorGroups, an invalid policy).
	Problem *Problem
	// Subscription is the Subscription's name, once it exists.
	Subscription string
	// ResolutionFailed and CatalogUnhealthy carry the Subscription's
	// conditions' messages; CatalogUnhealthy also says when the CatalogSource's
	// connection is not READY (OLM v0 does not flag a dead catalog served by
	// address on the Subscription).
	ResolutionFailed string
	CatalogUnhealthy string
	// CatalogMissing names the CatalogSource the stack asks for when it does not exist.
	CatalogMissing string
	InstalledCSV   string
	CurrentCSV     string
	// CSVPhase, CSVReason and CSVMessage describe the installed CSV.
	CSVPhase   string
	CSVReason  string
	CSVMessage string
	// Plan and PlanPhase describe the InstallPlan the Subscription points at
	// (PlanPhase as OLM reports it); PlanApproved: this reconcile approved it.
	Plan         string
	PlanPhase    string
	PlanApproved bool
	// Decision is the policy's verdict on that plan, when it waits for approval.
	Decision *policy.Decision
	// Preview is what that plan would do to this stack's cluster.
	Preview *platformv1alpha1.PendingUpgradeStatus
	// Rollout is the stack's place in a staged rollout.
	Rollout *platformv1alpha1.StackRolloutStatus
}

// Installed reports whether PGO's CSV is Succeeded.
func (o Operator) Installed() bool {
	return o.Problem == nil && o.CSVPhase == "Succeeded"
}

// Cluster is what was observed of the PostgresCluster.
type Cluster struct {
	Name string
	// Problem is a stack that cannot be rendered.
	Problem *Problem
	// APIMissing: PGO's PostgresCluster CRD is not served (yet).
	APIMissing bool
	// ApplyError is a transient failure to apply the PostgresCluster.
	ApplyError string
	// Exists is true when the PostgresCluster was read; Readiness is then PGO's view.
	Exists    bool
	Readiness pgo.Readiness
	// Held is a change pgstack holds back while applying the rest (a major
	// version change). It stalls the stack but leaves ClusterReady and Ready
	// to PGO's readiness: the database runs as it did.
	Held *Problem
	// Pending is a change waiting on something that comes by itself (a
	// major upgrade waiting for the first backup): Reconciling beside
	// PGO's readiness.
	Pending *Problem
	// Down is why the cluster is down on purpose (shut down for a major
	// upgrade): ClusterReady False, whatever PGO reports.
	Down *Problem
	// Failed stops the cluster until a person acts (a failed major upgrade).
	Failed *Problem
	// PostgresVersion is the major version applied; MajorUpgrade the
	// upgrade under way or the last one.
	PostgresVersion int64
	MajorUpgrade    *platformv1alpha1.MajorUpgradeStatus
	// Connection names what PGO made for connecting, once the cluster exists.
	Connection *platformv1alpha1.ConnectionStatus
	// Primary is the instance pod Patroni made leader, if any.
	Primary string
	// Restore is the last restore PGO ran into the cluster.
	Restore *platformv1alpha1.RestoreStatus
	// Backups is status.backups as read from PGO; BackupsHealth the
	// BackupsHealthy verdict (nil: the cluster has no backups).
	Backups       *platformv1alpha1.BackupsStatus
	BackupsHealth *pgo.BackupsHealth
	// Operations are the runs of spec.operations as this reconcile left
	// them; nil keeps the previous record (it holds the tokens used).
	Operations *platformv1alpha1.OperationsStatus
}

// Observations are what one reconcile learned.
type Observations struct {
	Generation int64
	Deleting   bool
	// DeletionWaitsFor says what a deleting stack waits on (a
	// PostgresCluster PGO is deleting, a CSV OLM is removing), for the
	// person wondering why the stack is still there.
	DeletionWaitsFor string
	Operator         Operator
	Cluster          Cluster
}

// Compute returns the stack's status for these observations. Conditions keep
// their lastTransitionTime from previous when their status does not change.
func Compute(previous platformv1alpha1.PostgresStackStatus, o Observations, now metav1.Time) platformv1alpha1.PostgresStackStatus {
	s := platformv1alpha1.PostgresStackStatus{
		ObservedGeneration: o.Generation,
		Conditions:         append([]metav1.Condition(nil), previous.Conditions...),
		Operator: platformv1alpha1.OperatorStatus{
			Subscription: o.Operator.Subscription,
			InstalledCSV: o.Operator.InstalledCSV,
			CurrentCSV:   o.Operator.CurrentCSV,
			Phase:        o.Operator.CSVPhase,
			InstallPlan:  o.Operator.Plan,
			Rollout:      o.Operator.Rollout,
		},
		Cluster: platformv1alpha1.ClusterStatus{Name: o.Cluster.Name},
	}
	if v, err := policy.CSVVersion(o.Operator.InstalledCSV); err == nil {
		s.Operator.Version = v
	}
	if d := o.Operator.Decision; d != nil && (d.Verdict == policy.Wait || d.Verdict == policy.Refuse) {
		s.Operator.PendingVersion = d.Version
		s.Operator.PendingUpgrade = o.Operator.Preview
	}
	if o.Cluster.Exists {
		s.Cluster.ReadyInstances = o.Cluster.Readiness.ReadyInstances
		s.Cluster.Instances = o.Cluster.Readiness.Instances
		s.Cluster.PostgresVersion = int32(o.Cluster.PostgresVersion)
		s.Cluster.MajorUpgrade = o.Cluster.MajorUpgrade
		s.Cluster.Primary = o.Cluster.Primary
		s.Cluster.Restore = o.Cluster.Restore
		s.Connection = o.Cluster.Connection
	}
	s.Operations = previous.Operations
	if o.Cluster.Operations != nil && !o.Deleting {
		s.Operations = o.Cluster.Operations
	}
	if o.Deleting {
		s.Cluster.PostgresVersion, s.Cluster.MajorUpgrade = previous.Cluster.PostgresVersion, previous.Cluster.MajorUpgrade
		s.Cluster.Primary, s.Cluster.Restore = previous.Cluster.Primary, previous.Cluster.Restore
		s.Connection = previous.Connection
	}

	operator, operatorStalled := operatorCondition(o.Operator)
	// An upgrade that waits or is refused never stalls a running stack: the
	// policy is doing its job, and UpgradeApproved says so.
	upgrade := upgradeCondition(o.Operator)
	if o.Deleting && !o.Operator.Observed {
		// Deletion looks at the PostgresCluster only: what was known of the
		// operator stays as it was, and Ready and Reconciling say what
		// deletion is doing.
		s.Operator = previous.Operator
		operator, upgrade, operatorStalled = kept(previous, operator), kept(previous, upgrade), false
	}
	cluster, clusterStalled := clusterCondition(o.Cluster, operator)
	components := []metav1.Condition{operator, upgrade, cluster}
	// What was known of the backups stays until the cluster is seen again.
	s.Backups = previous.Backups
	if o.Cluster.Exists && !o.Deleting {
		s.Backups = o.Cluster.Backups
		if h := o.Cluster.BackupsHealth; h != nil {
			components = append(components, backupsCondition(*h))
		} else {
			meta.RemoveStatusCondition(&s.Conditions, platformv1alpha1.ConditionBackupsHealthy)
		}
	}

	ready := metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: platformv1alpha1.ReasonReady,
		Message: fmt.Sprintf("PGO %s is installed and the PostgresCluster is ready: %s", s.Operator.Version, cluster.Message)}
	stalled := metav1.Condition{Type: platformv1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: platformv1alpha1.ReasonReady}
	reconciling := metav1.Condition{Type: platformv1alpha1.ConditionReconciling, Status: metav1.ConditionFalse, Reason: platformv1alpha1.ReasonReady}

	// The first component that is not True explains why the stack is not Ready.
	for i, c := range []metav1.Condition{operator, cluster} {
		if c.Status == metav1.ConditionTrue {
			continue
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
		if []bool{operatorStalled, clusterStalled}[i] {
			stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, c.Reason, c.Message
		}
		break
	}
	// A held change needs a person as much as a broken one, though the
	// database keeps serving: Stalled beside whatever Ready is (kstatus
	// reads Failed, since the spec asked for is not reached). A stall that
	// stops the stack outright is told first.
	if h := o.Cluster.Held; h != nil && stalled.Status != metav1.ConditionTrue && !o.Deleting {
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, h.Reason, h.Message
	}
	if o.Deleting {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, platformv1alpha1.ReasonDeleting, "the stack is being deleted"
		if o.DeletionWaitsFor != "" {
			ready.Message += "; waiting for " + o.DeletionWaitsFor
		}
	}
	if ready.Status != metav1.ConditionTrue && stalled.Status != metav1.ConditionTrue {
		reconciling.Status, reconciling.Reason, reconciling.Message = metav1.ConditionTrue, platformv1alpha1.ReasonProgressing, ready.Message
		if o.Deleting {
			reconciling.Reason = platformv1alpha1.ReasonDeleting
		}
	}
	// A change on its way (an upgrade waiting for a backup) is work in
	// progress however the database is doing.
	if p := o.Cluster.Pending; p != nil && stalled.Status != metav1.ConditionTrue && !o.Deleting {
		reconciling.Status, reconciling.Reason, reconciling.Message = metav1.ConditionTrue, p.Reason, p.Message
	}
	if stalled.Status == metav1.ConditionFalse {
		stalled.Message = "nothing needs a person"
	}
	if reconciling.Status == metav1.ConditionFalse {
		reconciling.Message = "no work in progress"
		if stalled.Status == metav1.ConditionTrue {
			reconciling.Reason, reconciling.Message = stalled.Reason, "waiting for a person: "+stalled.Message
		}
	}

	for _, c := range append([]metav1.Condition{ready, reconciling, stalled}, components...) {
		c.ObservedGeneration = o.Generation
		c.LastTransitionTime = now
		meta.SetStatusCondition(&s.Conditions, c)
	}
	return s
}

// backupsCondition is BackupsHealthy. It never changes Ready: a failed
// nightly backup is an alert, not an outage.
func backupsCondition(h pgo.BackupsHealth) metav1.Condition {
	c := metav1.Condition{Type: platformv1alpha1.ConditionBackupsHealthy, Status: metav1.ConditionFalse, Reason: h.Reason, Message: h.Message}
	if h.Healthy {
		c.Status = metav1.ConditionTrue
	}
	return c
}

// kept is the previous condition of computed's type, or computed when there
// was none.
func kept(previous platformv1alpha1.PostgresStackStatus, computed metav1.Condition) metav1.Condition {
	if c := meta.FindStatusCondition(previous.Conditions, computed.Type); c != nil {
		return *c
	}
	return computed
}

func operatorCondition(o Operator) (metav1.Condition, bool) {
	c := metav1.Condition{Type: platformv1alpha1.ConditionOperatorInstalled, Status: metav1.ConditionFalse}
	set := func(reason, message string) { c.Reason, c.Message = reason, message }
	stalled := false
	switch {
	case o.Problem != nil:
		set(o.Problem.Reason, o.Problem.Message)
		stalled = true
	case o.CSVPhase == "Succeeded":
		c.Status = metav1.ConditionTrue
		set(platformv1alpha1.ReasonSucceeded, fmt.Sprintf("%s is installed (phase Succeeded)", o.InstalledCSV))
	case o.CSVPhase == "Failed":
		set(platformv1alpha1.ReasonCSVFailed, fmt.Sprintf("%s failed: %s: %s (OLM retries; this clears when it recovers)", o.InstalledCSV, o.CSVReason, o.CSVMessage))
		stalled = true
	case o.InstalledCSV != "":
		set(platformv1alpha1.ReasonInstalling, fmt.Sprintf("%s is in phase %s: %s", o.InstalledCSV, orUnknown(o.CSVPhase), o.CSVMessage))
	case o.CatalogMissing != "":
		set(platformv1alpha1.ReasonCatalogNotFound, fmt.Sprintf("CatalogSource %s does not exist, so OLM cannot install the operator from it; create it or fix spec.operator.source/sourceNamespace", o.CatalogMissing))
		stalled = true
	case o.ResolutionFailed != "":
		set(platformv1alpha1.ReasonResolutionFailed, "OLM cannot resolve the Subscription: "+o.ResolutionFailed)
		stalled = true
	case o.Decision != nil && (o.Decision.Verdict == policy.Wait || o.Decision.Verdict == policy.Refuse):
		set(o.Decision.Reason, o.Decision.Message)
		stalled = true
	case o.PlanPhase == "Failed":
		set(platformv1alpha1.ReasonInstallPlanFailed, fmt.Sprintf("install plan %s failed", o.Plan))
		stalled = true
	case o.CatalogUnhealthy != "":
		set(platformv1alpha1.ReasonCatalogUnhealthy, "the catalog is unhealthy: "+o.CatalogUnhealthy)
	case o.Plan != "" && o.PlanApproved:
		set(platformv1alpha1.ReasonInstalling, fmt.Sprintf("install plan %s is approved; OLM installs it", o.Plan))
	case o.Plan != "":
		set(platformv1alpha1.ReasonInstalling, fmt.Sprintf("install plan %s is %s", o.Plan, orUnknown(o.PlanPhase)))
	default:
		set(platformv1alpha1.ReasonAwaitingInstallPlan, fmt.Sprintf("waiting for OLM to resolve Subscription %s", o.Subscription))
	}
	return c, stalled
}

func upgradeCondition(o Operator) metav1.Condition {
	c := metav1.Condition{Type: platformv1alpha1.ConditionUpgradeApproved, Status: metav1.ConditionTrue,
		Reason: platformv1alpha1.ReasonNoPlanPending, Message: "no install plan waits for approval"}
	d := o.Decision
	switch {
	case d == nil || d.Verdict == policy.NotApplicable:
	case d.Verdict == policy.Approve:
		c.Reason, c.Message = policy.ReasonAllowed, d.Message
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, d.Reason, d.Message
	}
	return c
}

func clusterCondition(o Cluster, operator metav1.Condition) (metav1.Condition, bool) {
	c := metav1.Condition{Type: platformv1alpha1.ConditionClusterReady, Status: metav1.ConditionFalse}
	switch {
	case o.Problem != nil:
		c.Reason, c.Message = o.Problem.Reason, o.Problem.Message
		return c, true
	case o.Failed != nil:
		c.Reason, c.Message = o.Failed.Reason, o.Failed.Message
		return c, true
	case o.ApplyError != "":
		c.Reason, c.Message = platformv1alpha1.ReasonApplyFailed, "applying the PostgresCluster failed: "+o.ApplyError
	case o.Exists && o.Down != nil:
		c.Reason, c.Message = o.Down.Reason, o.Down.Message
	case o.Exists:
		c.Reason, c.Message = o.Readiness.Reason, o.Readiness.Message
		if o.Readiness.Ready {
			c.Status = metav1.ConditionTrue
		}
		// PGO refused the spec, paused itself or failed a restore: it gets no
		// further until a person acts.
		return c, o.Readiness.Stalled
	case operator.Status != metav1.ConditionTrue:
		c.Reason, c.Message = platformv1alpha1.ReasonWaitingForOperator, "waiting for PGO to be installed"
	case o.APIMissing:
		c.Reason, c.Message = platformv1alpha1.ReasonPGOAPIMissing, "PGO is installed but its PostgresCluster API is not served yet"
	default:
		c.Reason, c.Message = pgo.ReasonNotObserved, fmt.Sprintf("PostgresCluster %s is being created", o.Name)
	}
	return c, false
}

func orUnknown(s string) string {
	if s == "" {
		return "not reported yet"
	}
	return s
}
