package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RolloutPolicyName is the one name a PostgresRolloutPolicy may have: there
// is at most one per operator install namespace, so that the stacks sharing
// an operator cannot disagree about how it rolls out.
const RolloutPolicyName = "default"

// PostgresRolloutPolicySpec says how the clusters sharing one PGO move to a
// new PGO's images.
type PostgresRolloutPolicySpec struct {
	// maxConcurrent is how many clusters may restart at once.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`

	// soakTime is how long every cluster of a wave must have run Ready on the
	// new images before the next wave starts, such as "10m".
	// +kubebuilder:default="5m"
	// +optional
	SoakTime metav1.Duration `json:"soakTime,omitempty"`

	// progressDeadline is how long a released cluster may take to run Ready
	// on the new images; one that takes longer halts the rollout: nothing
	// further restarts until a person resumes it or rolls back.
	// +kubebuilder:default="10m"
	// +optional
	ProgressDeadline metav1.Duration `json:"progressDeadline,omitempty"`

	// resume, set to a new value, resumes a halted rollout: the cluster that
	// halted it gets a new deadline. The value honoured is kept in
	// status.rollout.resumed, so setting it again to that value does nothing.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Resume string `json:"resume,omitempty"`

	// operatorConfig, when set, is the operator-wide configuration pgstack
	// keeps on the Subscription's spec.config: PGO's environment
	// (PGO_FEATURE_GATES, PGO_WORKERS, mirrored RELATED_IMAGE_* defaults)
	// and its resources. A change there restarts clusters like an
	// upgrade, so it rolls out the same way: the clusters it would restart
	// are pinned, then it is applied, then they move wave by wave. Unset,
	// pgstack leaves the Subscription's config alone.
	// +optional
	OperatorConfig *OperatorConfig `json:"operatorConfig,omitempty"`

	// rollBack, while true, pins every cluster already moved back to the
	// images it ran before the upgrade and releases no more. OLM cannot
	// downgrade the operator; this moves the databases, not PGO. Set it
	// back to false (and resume) to go forward again.
	// +optional
	RollBack bool `json:"rollBack,omitempty"`
}

// OperatorConfig is the part of a Subscription's spec.config a rollout
// policy owns.
type OperatorConfig struct {
	// env replaces the Subscription's spec.config.env; OLM sets each entry
	// on PGO's container over the CSV's own.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`
	// resources replaces the Subscription's spec.config.resources.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// RolloutPhase is where a rollout is.
type RolloutPhase string

const (
	// RolloutPinning: an upgrade waits for approval; pgstack pins every
	// cluster it would restart to the images it runs now.
	RolloutPinning RolloutPhase = "Pinning"
	// RolloutPinned: every such cluster runs pinned, as PGO observed; the
	// upgrade may be approved and restarts nothing.
	RolloutPinned RolloutPhase = "Pinned"
	// RolloutRolling: the new PGO runs; clusters move wave by wave.
	RolloutRolling RolloutPhase = "Rolling"
	// RolloutHalted: a cluster did not become Ready in time, or PGO changed a
	// pinned cluster's pods; nothing further restarts.
	RolloutHalted RolloutPhase = "Halted"
	// RolloutRolledBack: spec.rollBack pins the moved clusters back.
	RolloutRolledBack RolloutPhase = "RolledBack"
	// RolloutComplete: every cluster runs the new images.
	RolloutComplete RolloutPhase = "Complete"
)

// RolloutClusterState is where one cluster is in a rollout.
type RolloutClusterState string

const (
	// ClusterPinned: the cluster runs the old images, pinned, and waits for its wave.
	ClusterPinned RolloutClusterState = "Pinned"
	// ClusterRestarting: released; PGO moves it to the new images.
	ClusterRestarting RolloutClusterState = "Restarting"
	// ClusterUpdated: every pod runs the new images and PGO reports it Ready.
	ClusterUpdated RolloutClusterState = "Updated"
	// ClusterFailed: released, and not Ready on the new images within the deadline.
	ClusterFailed RolloutClusterState = "Failed"
)

// PinnedImage is an image a cluster is held on.
type PinnedImage struct {
	// component is postgres, pgbackrest, pgbouncer or exporter.
	Component string `json:"component"`
	// image is the reference it runs.
	Image string `json:"image"`
}

// RolloutCluster is one cluster the upgrade restarts.
type RolloutCluster struct {
	// stack is the PostgresStack, as namespace/name (its PostgresCluster has the same name).
	Stack string `json:"stack"`
	// wave the stack is in (its spec.operator.rolloutWave).
	Wave int32 `json:"wave"`
	// state is Pinned, Restarting, Updated or Failed.
	State RolloutClusterState `json:"state"`
	// postgresVersion is the major version the pins are for; a stack that
	// changes its version meanwhile is no longer held by them.
	PostgresVersion int64 `json:"postgresVersion"`
	// images the cluster runs until released: those the old PGO gave it.
	// +listType=atomic
	Images []PinnedImage `json:"images"`
	// releasedAt is when it was released to the new images.
	// +optional
	ReleasedAt *metav1.Time `json:"releasedAt,omitempty"`
	// updatedAt is when it first ran Ready on them.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
	// templates are its instance StatefulSets' update revisions when it was
	// pinned, to notice PGO changing a pinned cluster's pods.
	// +optional
	// +listType=atomic
	Templates []string `json:"templates,omitempty"`
}

// RolloutStatus is one operator upgrade's rollout.
type RolloutStatus struct {
	// fromCSV and toCSV are the operator versions it moves between (the
	// same for a change of the operator's configuration).
	FromCSV string `json:"fromCSV"`
	ToCSV   string `json:"toCSV"`
	// fromConfig and toConfig identify the operator configuration it moves
	// between (a hash of the Subscription's config.env and resources);
	// equal for an upgrade.
	// +optional
	FromConfig string `json:"fromConfig,omitempty"`
	// +optional
	ToConfig string `json:"toConfig,omitempty"`
	// phase is Pinning, Pinned, Rolling, Halted, RolledBack or Complete.
	Phase RolloutPhase `json:"phase"`
	// wave is the wave moving now.
	// +optional
	Wave *int32 `json:"wave,omitempty"`
	// soakUntil is when the next wave may start.
	// +optional
	SoakUntil *metav1.Time `json:"soakUntil,omitempty"`
	// message says what happens, or why it halted.
	// +optional
	Message string `json:"message,omitempty"`
	// resumed is the last spec.resume value honoured.
	// +optional
	Resumed string `json:"resumed,omitempty"`
	// updated and total count the clusters that run the new images, and
	// all the clusters the upgrade restarts.
	Updated int32 `json:"updated"`
	Total   int32 `json:"total"`
	// clusters, by wave then name.
	// +listType=atomic
	// +optional
	Clusters []RolloutCluster `json:"clusters,omitempty"`
}

// PostgresRolloutPolicyStatus reports the rollout under way or the last one.
type PostgresRolloutPolicyStatus struct {
	// observedGeneration is the generation last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready (no rollout under way, or the last one complete),
	// Reconciling (a rollout is under way), Stalled (it halted).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// rollout is the rollout under way, or the last one.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// PostgresRolloutPolicy stages operator upgrades for every stack sharing the
// PGO installed in its namespace: before an upgrade is approved pgstack pins
// each cluster it would restart to the images it runs, so the upgrade itself
// restarts nothing; then it releases the clusters wave by wave (each stack's
// spec.operator.rolloutWave, lowest first), at most maxConcurrent at a time,
// each wave only after the last one ran Ready for soakTime.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pgrollout,categories=all
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="a PostgresRolloutPolicy must be named default: there is one per operator install namespace"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.rollout.phase`
// +kubebuilder:printcolumn:name="From",type=string,JSONPath=`.status.rollout.fromCSV`
// +kubebuilder:printcolumn:name="To",type=string,JSONPath=`.status.rollout.toCSV`
// +kubebuilder:printcolumn:name="Wave",type=integer,JSONPath=`.status.rollout.wave`
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.rollout.updated`
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.rollout.total`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.rollout.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PostgresRolloutPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec PostgresRolloutPolicySpec `json:"spec,omitempty"`
	// +optional
	Status PostgresRolloutPolicyStatus `json:"status,omitempty"`
}

// PostgresRolloutPolicyList is a list of PostgresRolloutPolicies.
// +kubebuilder:object:root=true
type PostgresRolloutPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PostgresRolloutPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PostgresRolloutPolicy{}, &PostgresRolloutPolicyList{})
}
