package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApprovalMode says who approves the operator's InstallPlans.
// +kubebuilder:validation:Enum=Automatic;Manual
type ApprovalMode string

const (
	// ApprovalAutomatic lets pgstack approve plans that the stack's policy allows.
	ApprovalAutomatic ApprovalMode = "Automatic"
	// ApprovalManual leaves every plan to a person; pgstack only reports it.
	ApprovalManual ApprovalMode = "Manual"
)

// RemovalPolicy says what happens to the operator when the last stack using it is deleted.
// +kubebuilder:validation:Enum=Keep;DeleteIfUnused
type RemovalPolicy string

const (
	// RemovalKeep leaves the Subscription and CSV installed.
	RemovalKeep RemovalPolicy = "Keep"
	// RemovalDeleteIfUnused removes the Subscription and CSV once no stack uses them.
	RemovalDeleteIfUnused RemovalPolicy = "DeleteIfUnused"
)

// DeletionPolicy says what happens to the PostgresCluster when the stack is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionRetain orphans the PostgresCluster: the database and its volumes stay.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete deletes the PostgresCluster, and with it PGO deletes its volumes.
	DeletionDelete DeletionPolicy = "Delete"
)

// Weekday names a day of the week.
// +kubebuilder:validation:Enum=Mon;Tue;Wed;Thu;Fri;Sat;Sun
type Weekday string

// MaintenanceWindow is a weekly window inside which operator upgrades may be
// approved. The first install is never held back by it.
type MaintenanceWindow struct {
	// days the window opens on; empty means every day.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=7
	Days []Weekday `json:"days,omitempty"`

	// start is the time of day the window opens, as HH:MM (24-hour clock).
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`

	// duration is how long the window stays open, as a Go duration such as "4h" or "90m"; at most 24h.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(h|m))+$') && duration(self) > duration('0s') && duration(self) <= duration('24h')",message="duration must be hours and minutes such as 4h or 1h30m, more than 0 and at most 24h"
	Duration string `json:"duration"`

	// timeZone is the IANA time zone the window is read in, such as "Europe/Berlin".
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$`
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// OperatorSpec says how PGO is installed through OLM. Every field defaults to
// the OperatorHub install, so a stack may leave the whole section out.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.__namespace__) || self.__namespace__ == oldSelf.__namespace__",message="operator.namespace is immutable: the Subscription cannot move once it is installed"
type OperatorSpec struct {
	// package is the OLM package name of PGO in the catalog.
	// +kubebuilder:default=postgresql
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Package string `json:"package,omitempty"`

	// channel is the catalog channel to follow.
	// +kubebuilder:default=v5
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Channel string `json:"channel,omitempty"`

	// source is the name of the CatalogSource that serves the package.
	// +kubebuilder:default=operatorhubio-catalog
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Source string `json:"source,omitempty"`

	// sourceNamespace is the namespace of the CatalogSource.
	// +kubebuilder:default=olm
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`

	// namespace is where the Subscription lives; it is shared by every stack
	// that installs the same package there. Immutable once set.
	// +kubebuilder:default=operators
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// approval is Automatic (pgstack approves plans its policy allows) or
	// Manual (a person approves every plan; pgstack reports what waits).
	// +kubebuilder:default=Automatic
	// +optional
	Approval ApprovalMode `json:"approval,omitempty"`

	// versions is an optional semver range, such as ">=5.7.0 <5.9.0". Plans
	// carrying a PGO version outside it are never approved. Comparators
	// (=, !=, <, <=, >, >=, ~, ^) join with spaces or commas (and), "||" (or)
	// or " - " (a hyphen range); versions may use x or * wildcards.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[ ]*(!=|>=|<=|>|<|=|[~^])?[ ]*v?([0-9]+|[xX*])([.]([0-9]+|[xX*])){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?(([ ]*,[ ]*|[ ]*[|][|][ ]*|[ ]+-[ ]+|[ ]+)(!=|>=|<=|>|<|=|[~^])?[ ]*v?([0-9]+|[xX*])([.]([0-9]+|[xX*])){0,2}(-[0-9A-Za-z.-]+)?([+][0-9A-Za-z.-]+)?)*[ ]*$')",message="operator.versions must be a semver range such as '>=5.7.0 <5.9.0', '~5.8' or '5.7.x || 5.8.x'"
	// +optional
	Versions string `json:"versions,omitempty"`

	// maintenanceWindow, when set, holds upgrades until the window is open.
	// +optional
	MaintenanceWindow *MaintenanceWindow `json:"maintenanceWindow,omitempty"`

	// rolloutWave is the wave this stack's cluster moves in when the
	// install namespace's PostgresRolloutPolicy stages an operator upgrade:
	// lower waves first (0 for canaries). Unset means 1. Without a policy
	// it is not used.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	RolloutWave *int32 `json:"rolloutWave,omitempty"`

	// removal says whether the operator is removed when the last stack using it is deleted.
	// +kubebuilder:default=Keep
	// +optional
	Removal RemovalPolicy `json:"removal,omitempty"`
}

// PostgresStackSpec is what a team asks for.
// +kubebuilder:validation:XValidation:rule="!has(self.operations) || !has(self.operations.backup) || !has(self.postgres) || !has(self.postgres.backups) || !has(self.postgres.backups.enabled) || self.postgres.backups.enabled",fieldPath=".operations.backup",message="operations.backup needs backups: postgres.backups.enabled must not be false"
// +kubebuilder:validation:XValidation:rule="!has(self.operations) || !has(self.operations.backup) || !has(self.operations.backup.repoName) || (has(self.postgres) && has(self.postgres.backups) && has(self.postgres.backups.repos) ? self.postgres.backups.repos.exists(r, r.name == self.operations.backup.repoName) : self.operations.backup.repoName == 'repo1')",fieldPath=".operations.backup.repoName",message="operations.backup.repoName must name a repository configured in postgres.backups.repos (only repo1 when repos is not set)"
// +kubebuilder:validation:XValidation:rule="!has(self.operations) || !has(self.operations.switchover) || (has(self.postgres) && (has(self.postgres.instances) ? (size(self.postgres.instances) > 1 || self.postgres.instances.exists(i, has(i.replicas) && i.replicas > 1)) : (has(self.postgres.replicas) && self.postgres.replicas > 1)))",fieldPath=".operations.switchover",message="operations.switchover needs at least two PostgreSQL instances: set postgres.replicas, or an instance set's replicas, to 2 or more"
type PostgresStackSpec struct {
	// operator says how PGO is installed and upgraded through OLM.
	// +kubebuilder:default={}
	// +optional
	Operator OperatorSpec `json:"operator,omitempty"`

	// postgres describes the PostgresCluster pgstack renders: PGO's nine
	// features as typed fields, and overrides for everything else.
	// +kubebuilder:default={}
	// +optional
	Postgres PostgresSpec `json:"postgres,omitempty"`

	// operations are PGO's one-off operations (a backup, a rolling
	// restart, a switchover), each run once per new token.
	// +optional
	Operations *Operations `json:"operations,omitempty"`

	// deletionPolicy is Retain (default: the PostgresCluster and its data stay
	// when the stack is deleted) or Delete.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// OperatorStatus reports the OLM install pgstack follows.
type OperatorStatus struct {
	// subscription is the name of the Subscription in use.
	// +optional
	Subscription string `json:"subscription,omitempty"`
	// installedCSV is the ClusterServiceVersion OLM has installed.
	// +optional
	InstalledCSV string `json:"installedCSV,omitempty"`
	// currentCSV is the ClusterServiceVersion OLM is moving to.
	// +optional
	CurrentCSV string `json:"currentCSV,omitempty"`
	// version is the PGO version installed.
	// +optional
	Version string `json:"version,omitempty"`
	// phase is the installed CSV's phase.
	// +optional
	Phase string `json:"phase,omitempty"`
	// installPlan is the InstallPlan the Subscription points at.
	// +optional
	InstallPlan string `json:"installPlan,omitempty"`
	// pendingVersion is a version waiting for approval, if any.
	// +optional
	PendingVersion string `json:"pendingVersion,omitempty"`
	// pendingUpgrade previews what the operator upgrade waiting for
	// approval would do to this stack's cluster, judged from the new CSV in
	// the InstallPlan before anyone approves it.
	// +optional
	PendingUpgrade *PendingUpgradeStatus `json:"pendingUpgrade,omitempty"`
	// rollout is this stack's place in the staged rollout of an operator
	// upgrade (the install namespace's PostgresRolloutPolicy), while one is
	// under way or the last one.
	// +optional
	Rollout *StackRolloutStatus `json:"rollout,omitempty"`
}

// StackRolloutStatus is one stack's place in a staged rollout.
type StackRolloutStatus struct {
	// toCSV is the operator version rolled out.
	ToCSV string `json:"toCSV"`
	// wave is the stack's wave.
	Wave int32 `json:"wave"`
	// state is Pinned (held on the old images), Restarting, Updated or Failed.
	State RolloutClusterState `json:"state"`
}

// PendingUpgradeStatus previews an operator upgrade for one stack.
type PendingUpgradeStatus struct {
	// version is the PGO version the InstallPlan installs.
	Version string `json:"version"`
	// installPlan is the InstallPlan previewed.
	InstallPlan string `json:"installPlan"`
	// clusterRestarts says PGO would roll this stack's database pods when
	// the new version starts: an image they run changes (PGO's new default
	// images reach every cluster that names none of its own).
	ClusterRestarts bool `json:"clusterRestarts"`
	// images lists each image of this cluster the upgrade changes,
	// PgBouncer's included (its pods roll; the database's do not).
	// +optional
	// +listType=atomic
	Images []ImageChange `json:"images,omitempty"`
	// blocked says why pgstack will not approve the upgrade (it strands a
	// cluster without a PostgreSQL image, or changes a CRD unsafely);
	// empty when nothing blocks it.
	// +optional
	Blocked string `json:"blocked,omitempty"`
}

// ImageChange is one image an operator upgrade changes.
type ImageChange struct {
	// component is postgres, pgbackrest, pgbouncer or exporter.
	Component string `json:"component"`
	// from is the image running now.
	From string `json:"from"`
	// to is the image the new PGO would run; "none" when it ships none,
	// "unknown" when set from a ConfigMap or Secret pgstack does not read.
	To string `json:"to"`
}

// ClusterStatus reports the PostgresCluster pgstack manages.
type ClusterStatus struct {
	// name of the PostgresCluster.
	// +optional
	Name string `json:"name,omitempty"`
	// readyInstances is the number of ready PostgreSQL instances.
	// +optional
	ReadyInstances int32 `json:"readyInstances,omitempty"`
	// instances is the number of PostgreSQL instances asked for.
	// +optional
	Instances int32 `json:"instances,omitempty"`
	// restore is the last restore PGO ran into this cluster: an in-place
	// restore (postgres.restore) or the data a clone (postgres.cloneFrom)
	// was seeded with.
	// +optional
	Restore *RestoreStatus `json:"restore,omitempty"`
	// primary is the pod Patroni made leader (its role label), where PGO's
	// <cluster>-primary Service sends connections; empty while there is none.
	// +optional
	Primary string `json:"primary,omitempty"`
	// postgresVersion is the PostgreSQL major version the PostgresCluster
	// runs (its spec.postgresVersion).
	// +optional
	PostgresVersion int32 `json:"postgresVersion,omitempty"`
	// majorUpgrade is the major upgrade under way, or the last one.
	// +optional
	MajorUpgrade *MajorUpgradeStatus `json:"majorUpgrade,omitempty"`
}

// RestoreStatus is a restore PGO ran, as it reports it.
type RestoreStatus struct {
	// source says what was restored: "repo1 of this cluster" for an
	// in-place restore, "repo1 of PostgresCluster ns/hippo" or "the cloud
	// repository s3://bucket/path" for a clone.
	Source string `json:"source"`
	// id is postgres.restore.id of an in-place restore; empty for a clone.
	// +optional
	ID string `json:"id,omitempty"`
	// targetTime is the point in time asked for; absent: the latest backup.
	// +optional
	TargetTime *metav1.Time `json:"targetTime,omitempty"`
	// finished: PGO's restore Job ended; succeeded says how.
	Finished  bool `json:"finished"`
	Succeeded bool `json:"succeeded"`
	// completionTime is when PGO's restore Job completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// MajorUpgradeStep is where a major upgrade is.
type MajorUpgradeStep string

const (
	// UpgradeShuttingDown: the PGUpgrade exists and PGO stops the instances.
	UpgradeShuttingDown MajorUpgradeStep = "ShuttingDown"
	// UpgradeRunning: the instances are stopped and PGO runs pg_upgrade.
	UpgradeRunning MajorUpgradeStep = "Upgrading"
	// UpgradeSucceeded: the cluster was started on the new version.
	UpgradeSucceeded MajorUpgradeStep = "Succeeded"
	// UpgradeFailed: PGO reported the upgrade failed.
	UpgradeFailed MajorUpgradeStep = "Failed"
)

// MajorUpgradeStatus reports a PostgreSQL major upgrade.
type MajorUpgradeStatus struct {
	// pgUpgrade is the PGUpgrade carrying it out.
	PGUpgrade string `json:"pgUpgrade"`
	// fromVersion and toVersion are the major versions.
	FromVersion int32 `json:"fromVersion"`
	ToVersion   int32 `json:"toVersion"`
	// step is ShuttingDown, Upgrading, Succeeded or Failed.
	Step MajorUpgradeStep `json:"step"`
}

// PostgresStackStatus is what pgstack observed.
type PostgresStackStatus struct {
	// observedGeneration is the generation the status describes; -1 until
	// pgstack first reports.
	// +kubebuilder:default=-1
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled (kstatus), and one per component.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// operator reports the OLM install.
	// +optional
	Operator OperatorStatus `json:"operator,omitempty"`

	// cluster reports the PostgresCluster.
	// +optional
	Cluster ClusterStatus `json:"cluster,omitempty"`

	// connection names where applications connect and where PGO keeps each
	// user's credentials: object names only, never their contents.
	// +optional
	Connection *ConnectionStatus `json:"connection,omitempty"`

	// backups is what pgstack saw of the cluster's backups, kept beyond
	// the few Jobs PGO reports (its CronJobs keep three).
	// +optional
	Backups *BackupsStatus `json:"backups,omitempty"`

	// operations reports the last run of each of spec.operations, and the
	// tokens already used.
	// +optional
	Operations *OperationsStatus `json:"operations,omitempty"`
}

// BackupsStatus is what pgstack saw of the cluster's backups.
type BackupsStatus struct {
	// lastSuccessful is when the newest backup pgstack saw complete, of
	// any repository, scheduled or manual.
	// +optional
	LastSuccessful *metav1.Time `json:"lastSuccessful,omitempty"`
	// repos are the cluster's repositories.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=4
	// +optional
	Repos []RepoBackupStatus `json:"repos,omitempty"`
}

// RepoBackupStatus is one repository's backups.
type RepoBackupStatus struct {
	Name RepoName `json:"name"`
	// ready: PGO created the repository's stanza (and, on a volume, its
	// volume is bound): backups can be taken.
	Ready bool `json:"ready"`
	// lastFull, lastDiff and lastIncr are when the newest successful
	// scheduled backup of each type completed.
	// +optional
	LastFull *metav1.Time `json:"lastFull,omitempty"`
	// +optional
	LastDiff *metav1.Time `json:"lastDiff,omitempty"`
	// +optional
	LastIncr *metav1.Time `json:"lastIncr,omitempty"`
	// lastFailure is the newest scheduled backup that failed, while no
	// backup of its type has succeeded since.
	// +optional
	LastFailure *BackupFailure `json:"lastFailure,omitempty"`
}

// BackupFailure is a scheduled backup that failed.
type BackupFailure struct {
	// type is full, diff or incr.
	Type string `json:"type"`
	// startTime is when its Job started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
}

// ConnectionStatus names the objects PGO makes for connecting to the
// cluster. pgstack reads none of them: the names follow PGO's own naming
// (internal/naming/names.go), so pgstack needs no access to Secrets.
type ConnectionStatus struct {
	// service is PGO's Service for the primary (<cluster>-primary), and
	// port its PostgreSQL port.
	Service string `json:"service"`
	Port    int32  `json:"port"`
	// poolerService is PgBouncer's Service (<cluster>-pgbouncer) when the
	// pooler is on; applications connect there instead.
	// +optional
	PoolerService string `json:"poolerService,omitempty"`
	// users name each PostgreSQL user's Secret (<cluster>-pguser-<user>),
	// which holds its password, host, port and connection URI.
	// +listType=map
	// +listMapKey=name
	// +optional
	Users []UserSecret `json:"users,omitempty"`
}

// UserSecret names the Secret PGO keeps one user's credentials in.
type UserSecret struct {
	// name is the PostgreSQL user.
	Name string `json:"name"`
	// secret is the Secret's name, in the stack's namespace.
	Secret string `json:"secret"`
}

// The PostgresCluster takes the stack's name, and PGO names each instance's
// pods <cluster>-<set>-<4 characters>-0, whose controller-revision-hash label
// (that name, a hyphen and 10 more) must fit 63 characters: so the cluster
// name and each instance set's name may be at most 46 characters together, as
// PGO documents and does not check (PGO v5.8.9
// pkg/apis/postgres-operator.crunchydata.com/v1beta1/postgrescluster_types.go:437-456).
// Past it, the StatefulSet controller creates no pod and PGO reports nothing.
// instance1, 9 characters, is the set rendered when instances is absent. The
// API server generates a generateName's name before it validates, so the rule
// sees the final name. Sets added through overrides are checked when rendering.
// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.postgres) || (has(self.spec.postgres.instances) ? self.spec.postgres.instances.all(i, size(self.metadata.name) + size(i.name) <= 46) : size(self.metadata.name) <= 37)",message="metadata.name and each postgres.instances[].name (instance1 when instances is not set) may be at most 46 characters together: PGO names the instances' pods after both, and longer names leave the StatefulSets unable to create pods"

// PostgresStack asks for a PostgreSQL cluster run by PGO, with PGO installed
// and upgraded through OLM under the stack's policy.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pgstack,categories=all
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Operator",type=string,JSONPath=`.status.operator.version`
// +kubebuilder:printcolumn:name="Postgres",type=integer,JSONPath=`.status.cluster.postgresVersion`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.status.cluster.name`
// +kubebuilder:printcolumn:name="Primary",type=string,JSONPath=`.status.cluster.primary`,description="the pod Patroni made leader",priority=1
// +kubebuilder:printcolumn:name="Last Backup",type=date,JSONPath=`.status.backups.lastSuccessful`,description="when the newest backup completed"
// +kubebuilder:printcolumn:name="Pending",type=string,JSONPath=`.status.operator.pendingUpgrade.version`,description="PGO version waiting for approval"
// +kubebuilder:printcolumn:name="Restarts",type=boolean,JSONPath=`.status.operator.pendingUpgrade.clusterRestarts`,description="whether the pending PGO upgrade restarts this stack's database",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PostgresStack struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec PostgresStackSpec `json:"spec,omitempty"`
	// status is what pgstack observed. Until pgstack first reports, it reads
	// as observedGeneration -1, so that kstatus (Flux) and Argo CD see a new
	// stack as in progress rather than as current.
	// +kubebuilder:default={}
	// +optional
	Status PostgresStackStatus `json:"status,omitempty"`
}

// PostgresStackList is a list of PostgresStacks.
// +kubebuilder:object:root=true
type PostgresStackList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PostgresStack `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PostgresStack{}, &PostgresStackList{})
}
