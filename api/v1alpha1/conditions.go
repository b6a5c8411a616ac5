package v1alpha1

// Condition types of a PostgresStack. Ready, Reconciling and Stalled follow
// kstatus, so `kubectl wait --for=condition=Ready`, Flux and Argo CD read them;
// the others say which component holds the stack back.
const (
	// ConditionReady is True when PGO is installed and the PostgresCluster is ready.
	ConditionReady = "Ready"
	// ConditionReconciling is True while pgstack is making progress toward Ready.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a person: a bad or conflicting
	// spec, a plan only a person may approve, OLM missing, a failed install, a
	// major version change held back (then beside Ready=True when the cluster runs).
	ConditionStalled = "Stalled"
	// ConditionOperatorInstalled is True when PGO's ClusterServiceVersion is Succeeded.
	ConditionOperatorInstalled = "OperatorInstalled"
	// ConditionUpgradeApproved is False when an install plan waits (for a person,
	// a maintenance window) or is refused by the stack's policy.
	ConditionUpgradeApproved = "UpgradeApproved"
	// ConditionClusterReady is True when PGO reports the PostgresCluster ready.
	ConditionClusterReady = "ClusterReady"
	// ConditionBackupsHealthy is False when a scheduled backup failed, or
	// none completed within spec.postgres.backups.maxBackupAge. It does not
	// change Ready: the database serves. Absent without backups.
	ConditionBackupsHealthy = "BackupsHealthy"
)

// BackupsHealthy's reasons.
const (
	ReasonBackupsSucceeding     = "BackupsSucceeding"
	ReasonScheduledBackupFailed = "ScheduledBackupFailed"
	ReasonNoRecentBackup        = "NoRecentBackup"
)

// Condition reasons. Each says, in one word, why a condition has its status.
const (
	ReasonReady       = "Ready"
	ReasonProgressing = "Progressing"
	ReasonDeleting    = "Deleting"

	// OperatorInstalled
	ReasonSucceeded             = "Succeeded"
	ReasonOLMNotInstalled       = "OLMNotInstalled"
	ReasonSubscriptionConflict  = "SubscriptionConflict"
	ReasonOperatorGroupConflict = "OperatorGroupConflict"
	ReasonInvalidPolicy         = "InvalidPolicy"
	ReasonResolutionFailed      = "ResolutionFailed"
	ReasonCatalogUnhealthy      = "CatalogSourceUnhealthy"
	ReasonCatalogNotFound       = "CatalogSourceNotFound"
	ReasonAwaitingInstallPlan   = "AwaitingInstallPlan"
	ReasonInstallPlanFailed     = "InstallPlanFailed"
	ReasonInstalling            = "Installing"
	ReasonCSVFailed             = "CSVFailed"

	// UpgradeApproved (the policy package's reasons are used when a plan waits or is refused)
	ReasonNoPlanPending = "NoPlanPending"

	// ClusterReady, before PGO reports
	ReasonWaitingForOperator = "WaitingForOperator"
	ReasonPGOAPIMissing      = "PGOAPIMissing"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonApplyFailed        = "ApplyFailed"
	// ReasonNoImageForVersion: no spec.postgres.image, and the installed PGO
	// ships no PostgreSQL image for the stack's major version (and PostGIS
	// version); nothing is applied, since PGO would refuse the cluster.
	ReasonNoImageForVersion = "NoImageForVersion"
	// ReasonTablespacesNeedFeatureGate: an instance set has tablespaces,
	// and the installed PGO's environment leaves its TablespaceVolumes
	// feature gate off (PGO_FEATURE_GATES); nothing is applied, since PGO
	// would ignore the tablespaces without a word.
	ReasonTablespacesNeedFeatureGate = "TablespacesNeedFeatureGate"

	// Stalled alone, with ClusterReady and Ready left as PGO's readiness has
	// them: a change pgstack holds back rather than apply.
	//
	// ReasonMajorVersionChangeHeld: the stack asks for another PostgreSQL
	// major version than its PostgresCluster runs. PGO would roll the pods
	// onto the other major's image and the data directory would refuse to
	// start, so the running version (and its image) keeps being applied.
	ReasonMajorVersionChangeHeld = "MajorVersionChangeHeld"
	// ReasonMajorUpgradePreflightFailed: a raised version cannot be
	// upgraded to as things stand (no image for it or for pg_upgrade, no
	// backup recent enough); the running version keeps being applied.
	ReasonMajorUpgradePreflightFailed = "MajorUpgradePreflightFailed"
	// ReasonBackupRemovalHeld: the stack's change removes a backup
	// repository on a volume (or every backup), which deletes backups; the
	// repositories keep being applied until spec.operations.backupRemoval
	// names them with a new token.
	ReasonBackupRemovalHeld = "BackupRemovalHeld"
	// ReasonMajorUpgradeFailed: PGO's PGUpgrade failed or was refused
	// (Stalled; the cluster stays shut down unless its old data may start).
	ReasonMajorUpgradeFailed = "MajorUpgradeFailed"

	// Reconciling beside the cluster's readiness: a raised version waits
	// for the cluster to be ready or for its first backup.
	ReasonMajorUpgradePending = "MajorUpgradePending"
	// ClusterReady False while the cluster is shut down for PGO's major
	// upgrade (PGUpgrade): the database is down until it starts on the new version.
	ReasonMajorUpgradeRunning = "MajorUpgradeRunning"
	// Reconciling beside the cluster's readiness: a new operation token
	// waits (for the cluster to be ready, for a major upgrade, a staged
	// operator rollout or another restarting operation to end).
	ReasonOperationPending = "OperationPending"
	// Reconciling beside the cluster's readiness: PGO runs an operation
	// of spec.operations (a backup, a restart, a switchover).
	ReasonOperationRunning = "OperationRunning"

	// ClusterReady, once PGO reports (internal/pgo judges these)
	ReasonClusterReady      = "ClusterReady"
	ReasonAwaitingPGO       = "AwaitingPGO"
	ReasonInstancesNotReady = "InstancesNotReady"
	ReasonBackupsNotReady   = "BackupsNotReady"
	ReasonPoolerNotReady    = "PoolerNotReady"
	// ReasonPaused is PGO's own reason on its Progressing=False condition:
	// spec.paused, or backups removed without PGO's authorizeBackupRemoval
	// annotation (the message tells which).
	ReasonPaused = "Paused"
	// ReasonShutDown (True): spec.shutdown is set and PGO has stopped every instance.
	ReasonShutDown = "ShutDown"
	// ReasonShuttingDown: spec.shutdown is set and instances still run.
	ReasonShuttingDown = "ShuttingDown"
	// ReasonRestoring: PGO is restoring or cloning data (its
	// PGBackRestoreProgressing condition); it reconciles nothing else meanwhile.
	ReasonRestoring = "Restoring"
	// ReasonStandbyNotBootstrapped: a standby's instances are ready but
	// Patroni has not reported the system identifier it follows.
	ReasonStandbyNotBootstrapped = "StandbyNotBootstrapped"

	// PGO's own reasons, passed through when PGO refuses the cluster (a
	// Warning Event, with PGO not observing the generation) or a restore
	// failed. Each stalls the stack.
	ReasonMissingRequiredImage        = "MissingRequiredImage"
	ReasonInvalidStandbyConfiguration = "InvalidStandbyConfiguration"
	ReasonInvalidDataSource           = "InvalidDataSource"
	ReasonRestoreFailed               = "PGBackRestRestoreFailed"
)

// UpgradeApproved's reasons: the install-plan policy's verdict on a plan
// (internal/policy decides; it gives these).
const (
	ReasonAllowed                  = "Allowed"
	ReasonNotAwaitingApproval      = "NotAwaitingApproval"
	ReasonManualApprovalRequired   = "ManualApprovalRequired"
	ReasonOutsideVersionRange      = "OutsideVersionRange"
	ReasonOutsideMaintenanceWindow = "OutsideMaintenanceWindow"
	ReasonForeignCSV               = "PlanCarriesForeignCSV"
	ReasonUnknownVersion           = "UnknownVersion"
	// ReasonUpgradeStrandsClusters: the new PGO ships no PostgreSQL image for
	// a major version a stack sharing it runs.
	ReasonUpgradeStrandsClusters = "UpgradeStrandsClusters"
	// ReasonUnsafeCRDChange: a CRD in the plan would break what the served
	// one holds or accepts (a rule of internal/crdcompat).
	ReasonUnsafeCRDChange = "UnsafeCRDChange"
	// ReasonRolloutPinning: the install namespace's PostgresRolloutPolicy
	// pins the clusters the upgrade would restart before it is approved.
	ReasonRolloutPinning = "RolloutPinning"
)

// Event reasons: what pgstack did, as `kubectl describe` lists it. A
// condition's transition is recorded with the condition's own reason.
const (
	EventOperatorGroupCreated    = "OperatorGroupCreated"
	EventSubscriptionCreated     = "SubscriptionCreated"
	EventSubscriptionAdopted     = "SubscriptionAdopted"
	EventInstallPlanApproved     = "InstallPlanApproved"
	EventPostgresClusterCreated  = "PostgresClusterCreated"
	EventPostgresClusterDeleting = "PostgresClusterDeleting"
	EventPostgresClusterRetained = "PostgresClusterRetained"
	EventOperatorRemoved         = "OperatorRemoved"
	EventMajorUpgradeStarted     = "MajorUpgradeStarted"
	EventMajorUpgradeSucceeded   = "MajorUpgradeSucceeded"
	EventOperationStarted        = "OperationStarted"
	EventOperationSucceeded      = "OperationSucceeded"
	EventOperationFailed         = "OperationFailed"
)
