package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Operations are PGO's one-off operations asked for in the spec, so that Git
// can hold them: each runs once per new token. pgstack keeps the tokens it
// ran in status.operations, so a token already used never runs again: not
// after a manager restart, and not when Git or Argo CD's self-heal puts an
// older value back. A new token waits while the operation's previous run is
// under way; a restart and a switchover also wait for each other, for a
// major upgrade and for the cluster to be ready.
//
// +kubebuilder:validation:XValidation:rule="!has(self.backup) || !has(self.backup.options) || !self.backup.options.exists(o, o.contains('--repo=') || o.contains('--repo ') || o == '--repo')",fieldPath=".backup.options",message="operations.backup.options must not set --repo: name the repository in operations.backup.repoName (PGO refuses a manual backup whose options carry it)"
type Operations struct {
	// backup takes one manual pgBackRest backup per new token (PGO's
	// pgbackrest-backup annotation with spec.backups.pgbackrest.manual).
	// +optional
	Backup *BackupOperation `json:"backup,omitempty"`

	// restart rolls every pod of the cluster once per new token, replicas
	// first and the primary last with a switchover (PGO's rolling restart,
	// started by an annotation in spec.metadata).
	// +optional
	Restart *RestartOperation `json:"restart,omitempty"`

	// switchover moves the primary once per new token, to targetInstance or
	// to a replica Patroni picks (PGO's trigger-switchover annotation with
	// spec.patroni.switchover). Needs two or more instances.
	// +optional
	Switchover *SwitchoverOperation `json:"switchover,omitempty"`

	// backupRemoval authorizes one change that removes backup repositories
	// on a volume, or every backup. PGO deletes a removed volume
	// repository's PVC, and every backup in it, as soon as the repository
	// leaves its spec; pgstack holds such a change back (Stalled,
	// BackupRemovalHeld) until a new token names every repository it
	// removes. Removing every backup also sets PGO's authorizeBackupRemoval
	// annotation, without which PGO pauses the whole cluster.
	// +optional
	BackupRemoval *BackupRemovalOperation `json:"backupRemoval,omitempty"`
}

// OperationToken is the value that triggers an operation: any new value
// runs it once. A timestamp ("2026-12-02T10:00") or a ticket reads best.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$`
type OperationToken string

// BackupOperation asks for one manual backup.
type BackupOperation struct {
	// token: a new value takes one backup.
	Token OperationToken `json:"token"`

	// repoName is the repository to back up to; it must be configured in
	// postgres.backups.repos (repo1 when repos is not set).
	// +kubebuilder:default=repo1
	// +optional
	RepoName RepoName `json:"repoName,omitempty"`

	// options are extra pgBackRest backup options, such as "--type=full".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	// +optional
	Options []string `json:"options,omitempty"`
}

// RestartOperation asks for one rolling restart.
type RestartOperation struct {
	// token: a new value restarts the cluster once.
	Token OperationToken `json:"token"`
}

// SwitchoverOperation asks for one switchover.
type SwitchoverOperation struct {
	// token: a new value moves the primary once.
	Token OperationToken `json:"token"`

	// targetInstance is the instance to promote, such as
	// hippo-instance1-abcd (PGO's instance name: its StatefulSet's name);
	// empty lets Patroni pick a healthy replica.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	TargetInstance string `json:"targetInstance,omitempty"`
}

// BackupRemovalOperation authorizes one removal of backup repositories.
type BackupRemovalOperation struct {
	// token: a new value authorizes the removal pending now, once.
	Token OperationToken `json:"token"`

	// repos names every repository on a volume the change removes (all of
	// them when backups are turned off).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	Repos []RepoName `json:"repos"`
}

// OperationPhase is where one run of an operation is.
// +kubebuilder:validation:Enum=Running;Succeeded;Failed
type OperationPhase string

const (
	// OperationRunning: pgstack asked PGO, and PGO has not reported the end.
	OperationRunning OperationPhase = "Running"
	// OperationSucceeded: PGO reported the operation done.
	OperationSucceeded OperationPhase = "Succeeded"
	// OperationFailed: PGO reported the operation failed.
	OperationFailed OperationPhase = "Failed"
)

// OperationsStatus reports the last run of each operation.
type OperationsStatus struct {
	// +optional
	Backup *OperationStatus `json:"backup,omitempty"`
	// +optional
	Restart *OperationStatus `json:"restart,omitempty"`
	// +optional
	Switchover *OperationStatus `json:"switchover,omitempty"`
	// +optional
	BackupRemoval *OperationStatus `json:"backupRemoval,omitempty"`
}

// MaxUsedTokens is how many earlier tokens of one operation status keeps;
// one of them put back in the spec does not run again.
const MaxUsedTokens = 16

// OperationStatus is the last run of one operation, and the tokens run before it.
type OperationStatus struct {
	// token is the request run last.
	Token OperationToken `json:"token"`
	// phase is Running, Succeeded or Failed.
	Phase OperationPhase `json:"phase"`
	// message says what PGO reported.
	// +optional
	Message string `json:"message,omitempty"`
	// startTime is when pgstack asked PGO; completionTime when it saw the end.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// usedTokens are the tokens run before token, newest first (at most 16).
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	UsedTokens []OperationToken `json:"usedTokens,omitempty"`
}
