package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PostgresSpec is the typed surface of the PostgresCluster pgstack renders.
// Each field maps onto one of PGO's features; overrides reaches the rest.
// Cross-field rules live here, where both sides of each rule are visible.
//
// +kubebuilder:validation:XValidation:rule="!has(self.instances) || !(has(self.replicas) || has(self.storage) || has(self.storageClass) || has(self.resources))",fieldPath=".instances",message="postgres.instances cannot be combined with the shorthands postgres.replicas, postgres.storage, postgres.storageClass or postgres.resources: describe every instance set in postgres.instances, or use only the shorthands"
// +kubebuilder:validation:XValidation:rule="!has(self.syncReplication) || !self.syncReplication || (has(self.instances) ? (size(self.instances) > 1 || self.instances.exists(i, has(i.replicas) && i.replicas > 1)) : (has(self.replicas) && self.replicas > 1))",fieldPath=".syncReplication",message="postgres.syncReplication needs at least two PostgreSQL instances: set postgres.replicas, or an instance set's replicas, to 2 or more"
// +kubebuilder:validation:XValidation:rule="!(has(self.restore) && has(self.cloneFrom))",fieldPath=".cloneFrom",message="postgres.restore and postgres.cloneFrom cannot be used together: restore rewinds this cluster's own data, cloneFrom seeds a new cluster from another one"
// +kubebuilder:validation:XValidation:rule="!(has(self.restore) && has(self.standby))",fieldPath=".standby",message="postgres.restore and postgres.standby cannot be used together: a standby follows another cluster and is not restored in place"
// +kubebuilder:validation:XValidation:rule="!has(self.restore) || !has(self.backups) || !has(self.backups.enabled) || self.backups.enabled",fieldPath=".restore",message="postgres.restore needs backups: postgres.backups.enabled must not be false"
// +kubebuilder:validation:XValidation:rule="!has(self.restore) || !has(self.restore.repoName) || (has(self.backups) && has(self.backups.repos) ? self.backups.repos.exists(r, r.name == self.restore.repoName) : self.restore.repoName == 'repo1')",fieldPath=".restore.repoName",message="postgres.restore.repoName must name a repository configured in postgres.backups.repos (only repo1 when repos is not set)"
// +kubebuilder:validation:XValidation:rule="!has(self.standby) || !has(self.standby.repoName) || !has(self.backups) || !has(self.backups.enabled) || self.backups.enabled",fieldPath=".standby.repoName",message="postgres.standby.repoName needs backups: postgres.backups.enabled must not be false"
// +kubebuilder:validation:XValidation:rule="!has(self.standby) || !has(self.standby.repoName) || (has(self.backups) && has(self.backups.repos) ? self.backups.repos.exists(r, r.name == self.standby.repoName) : self.standby.repoName == 'repo1')",fieldPath=".standby.repoName",message="postgres.standby.repoName must name a repository configured in postgres.backups.repos (only repo1 when repos is not set)"
type PostgresSpec struct {
	// version is the major PostgreSQL version (11 to 18). Raising it on an
	// existing cluster runs PGO's major upgrade (a PGUpgrade) as upgrade
	// describes: checks first, then the cluster is shut down, pg_upgrade
	// moves the data, and the cluster starts on the new version; the
	// version is never changed on the running cluster by itself. It may be
	// set back only until the upgrade has started; a lower version than the
	// cluster runs is held (MajorVersionChangeHeld), since PostgreSQL has no
	// major downgrade. Any version is admitted, so that a person can set it
	// back.
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=11
	// +kubebuilder:validation:Maximum=18
	// +optional
	Version int32 `json:"version,omitempty"`

	// image is the PostgreSQL container image; empty uses the image PGO's
	// installed version ships for this major version.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullSecrets name Secrets in the stack's namespace holding
	// registry credentials; PGO gives them to every pod it runs for the
	// cluster (PostgreSQL, pgBackRest, PgBouncer, jobs). Changing them
	// restarts the pods.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(s, size(s.name) > 0)",message="each of postgres.imagePullSecrets needs a name: the Secret holding the registry credentials"
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// metadata holds labels and annotations PGO puts on every object it
	// creates for the cluster (pods, services, volumes).
	// +optional
	Metadata *PostgresMetadata `json:"metadata,omitempty"`

	// parameters are PostgreSQL settings (postgresql.conf), rendered to
	// PostgresCluster spec.config.parameters. PGO rejects the settings it
	// manages itself (such as port or archive_command).
	// +kubebuilder:validation:MaxProperties=50
	// +optional
	Parameters map[string]intstr.IntOrString `json:"parameters,omitempty"`

	// configFiles are files PGO mounts read-only under /etc/postgres in
	// the PostgreSQL container (and restore Jobs), projected from
	// ConfigMaps, Secrets and the downward API, for parameters that name a
	// file, such as krb_server_keyfile. Changing them restarts PostgreSQL.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ConfigFiles []corev1.VolumeProjection `json:"configFiles,omitempty"`

	// authentication holds pg_hba.conf rules for the connections PostgreSQL
	// accepts.
	// +optional
	Authentication *Authentication `json:"authentication,omitempty"`

	// users are the PostgreSQL roles PGO creates, each with a Secret holding
	// its password and connection details.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Users []PostgresUser `json:"users,omitempty"`

	// databaseInitSQL names a ConfigMap key holding SQL that PGO runs once,
	// as the postgres superuser, after the cluster is first created.
	// +optional
	DatabaseInitSQL *DatabaseInitSQL `json:"databaseInitSQL,omitempty"`

	// instances are the PostgreSQL instance sets. When absent, one set named
	// instance1 is rendered from the shorthands replicas, storage,
	// storageClass and resources (1 replica with 1Gi by default).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=6
	// +optional
	Instances []InstanceSet `json:"instances,omitempty"`

	// replicas is the number of PostgreSQL instances of the single instance
	// set instance1 (shorthand; not with instances). Defaults to 1; two or
	// more give high availability (one primary, the rest replicas).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// storage is the data volume size of each instance of instance1
	// (shorthand; not with instances). Defaults to 1Gi.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="postgres.storage must be more than zero"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="postgres.storage may only grow: a PersistentVolumeClaim cannot shrink"
	// +optional
	Storage *resource.Quantity `json:"storage,omitempty"`

	// storageClass is the StorageClass of instance1's data volumes
	// (shorthand; not with instances). Empty uses the cluster's default.
	// It cannot change: a PersistentVolumeClaim's class is fixed.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="postgres.storageClass cannot change: a PersistentVolumeClaim's StorageClass is immutable (add an instance set on the new class instead)"
	// +optional
	StorageClass string `json:"storageClass,omitempty"`

	// resources are the CPU and memory of each PostgreSQL container of
	// instance1 (shorthand; not with instances).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// syncReplication turns on Patroni's synchronous mode: a commit returns
	// only once a replica has it too. Needs at least two instances.
	// +optional
	SyncReplication bool `json:"syncReplication,omitempty"`

	// backups configures pgBackRest (disaster recovery). When nothing is
	// said, one 1Gi volume repository repo1 is rendered; set enabled: false
	// for a cluster without backups.
	// +kubebuilder:default={}
	// +optional
	Backups Backups `json:"backups,omitempty"`

	// restore rewinds this cluster in place from one of its own repositories,
	// to a point in time or to the latest backup. Not with cloneFrom or standby.
	// +optional
	Restore *Restore `json:"restore,omitempty"`

	// standby runs the cluster as a read-only copy of another one, following
	// a pgBackRest repository, a primary's host, or both. Not with restore.
	// +optional
	Standby *Standby `json:"standby,omitempty"`

	// cloneFrom seeds a new cluster with the data of another one: from a
	// PostgresCluster's repository in this Kubernetes cluster (clusterName),
	// or from a backup in a cloud repository (repo). It is read only when the
	// cluster is created. Not with restore.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="postgres.cloneFrom cannot change once set: it only seeds the cluster when it is created (remove it instead)"
	// +optional
	CloneFrom *CloneFrom `json:"cloneFrom,omitempty"`

	// monitoring runs the pgMonitor metrics exporter beside PostgreSQL.
	// +optional
	Monitoring *Monitoring `json:"monitoring,omitempty"`

	// tls replaces PGO's generated certificates with your own.
	// +optional
	TLS *TLS `json:"tls,omitempty"`

	// service shapes the Service PGO puts in front of the PostgreSQL
	// primary (<stack>-ha): its type and metadata.
	// +optional
	Service *Service `json:"service,omitempty"`

	// pooler runs PgBouncer in front of the cluster (connection pooling).
	// +optional
	Pooler *Pooler `json:"pooler,omitempty"`

	// upgrade tunes the major upgrade pgstack runs when version is raised.
	// +optional
	Upgrade *MajorUpgrade `json:"upgrade,omitempty"`

	// scheduling places pods: it applies to the PostgreSQL instances (unless
	// an instance set has its own), PgBouncer, the pgBackRest repo host and
	// backup jobs.
	// +optional
	Scheduling *Scheduling `json:"scheduling,omitempty"`

	// overrides is a raw PostgresCluster spec fragment merged last, with
	// JSON merge patch semantics (RFC 7396): objects merge key by key, null
	// deletes a key, and lists and scalars replace what was rendered. Every
	// PGO field is reachable through it (for example paused, shutdown,
	// patroni, sidecars, userInterface).
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	Overrides *apiextensionsv1.JSON `json:"overrides,omitempty"`
}

// TransferMethod is how pg_upgrade moves the data to the new major version.
// +kubebuilder:validation:Enum=Link;Copy;Clone;CopyFileRange
type TransferMethod string

const (
	// TransferLink hard-links the data files (PGO's default): fast and
	// needs no extra space, but once pg_upgrade has begun the old data
	// directory may no longer start on the old version.
	TransferLink TransferMethod = "Link"
	// TransferCopy copies the data files: needs room for a second copy and
	// takes longer, and leaves the old data as it was.
	TransferCopy TransferMethod = "Copy"
)

// MajorUpgrade tunes the PostgreSQL major upgrade pgstack runs through PGO's
// PGUpgrade when postgres.version is raised on an existing cluster.
type MajorUpgrade struct {
	// transferMethod is how pg_upgrade moves the data: Link (PGO's default:
	// fast, no extra space, but a failed upgrade leaves the cluster shut
	// down until a person has checked the old data, see
	// startOldVersionOnFailure), Copy (room for a second copy and slower;
	// a failed upgrade starts the cluster again on the old version by
	// itself), Clone or CopyFileRange (copies the filesystem helps with).
	// +optional
	TransferMethod TransferMethod `json:"transferMethod,omitempty"`

	// backupMaxAge: with backups on, an upgrade starts only once PGO reports
	// a completed backup. When set, only a scheduled or manual backup that
	// completed within this long counts (the backup PGO takes when a cluster
	// is created carries no completion time).
	// +optional
	BackupMaxAge *metav1.Duration `json:"backupMaxAge,omitempty"`

	// startOldVersionOnFailure starts the cluster again on the version it
	// ran after a failed upgrade. With transferMethod Copy this happens
	// anyway; with Link set it only once you know the old data directory is
	// intact (pg_upgrade --link may have modified it).
	// +optional
	StartOldVersionOnFailure bool `json:"startOldVersionOnFailure,omitempty"`

	// image is the pg_upgrade image; empty uses the one the installed PGO
	// ships (RELATED_IMAGE_PGUPGRADE).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`
}

// PostgresMetadata is extra metadata for the objects PGO creates.
type PostgresMetadata struct {
	// labels added to every object PGO creates for the cluster.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations added to every object PGO creates for the cluster.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PasswordType is the alphabet of a generated password.
// +kubebuilder:validation:Enum=ASCII;AlphaNumeric
type PasswordType string

// PostgresUser is a PostgreSQL role PGO manages.
type PostgresUser struct {
	// name of the role; lowercase letters, digits and hyphens.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// databases the role may connect to and create objects in; PGO creates
	// them when missing.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Databases []string `json:"databases,omitempty"`

	// options are ALTER ROLE options, such as "SUPERUSER" or "CREATEDB".
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[^;]*$`
	// +optional
	Options string `json:"options,omitempty"`

	// passwordType is the alphabet of the generated password: ASCII or AlphaNumeric.
	// +optional
	PasswordType PasswordType `json:"passwordType,omitempty"`
}

// DatabaseInitSQL names a ConfigMap key with SQL to run once.
type DatabaseInitSQL struct {
	// name of the ConfigMap, in the stack's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the ConfigMap holding the SQL.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// InstanceSet is a group of identical PostgreSQL instances.
type InstanceSet struct {
	// name of the set; lowercase letters, digits and hyphens.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// replicas is the number of instances in the set.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// storage is the data volume size of each instance. It may only grow.
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="postgres.instances[].storage must be more than zero"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="postgres.instances[].storage may only grow: a PersistentVolumeClaim cannot shrink"
	// +optional
	Storage *resource.Quantity `json:"storage,omitempty"`

	// storageClass of the data volumes; empty uses the cluster's default.
	// It cannot change: a PersistentVolumeClaim's class is fixed.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="postgres.instances[].storageClass cannot change: a PersistentVolumeClaim's StorageClass is immutable (add an instance set on the new class instead)"
	// +optional
	StorageClass string `json:"storageClass,omitempty"`

	// resources are the CPU and memory of each PostgreSQL container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// walVolume puts PostgreSQL's write-ahead log on a volume of its own
	// for each instance instead of the data volume. Removing it moves the
	// WAL back to the data volume: PGO deletes the WAL volume once
	// PostgreSQL no longer uses it.
	// +optional
	WALVolume *Volume `json:"walVolume,omitempty"`

	// tablespaces are volumes PGO mounts at /tablespaces/<name> in each
	// instance; create a tablespace on one with CREATE TABLESPACE ...
	// LOCATION '/tablespaces/<name>/data'. PGO creates them only while its
	// TablespaceVolumes feature gate is on (PGO_FEATURE_GATES in PGO's
	// environment: a PostgresRolloutPolicy's operatorConfig.env, else the
	// Subscription's spec.config.env); without it the stack stalls with
	// TablespacesNeedFeatureGate and nothing is applied. PGO does not
	// delete a tablespace's volumes when it is removed from the list.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Tablespaces []Tablespace `json:"tablespaces,omitempty"`

	// scheduling replaces postgres.scheduling for this set's pods.
	// +optional
	Scheduling *Scheduling `json:"scheduling,omitempty"`
}

// Volume is a PersistentVolumeClaim PGO creates for each instance of a set.
type Volume struct {
	// storage is the size of the volume, a quantity such as 10Gi. It may
	// only grow. Unlike the data volume's storage it is a string of at most
	// 32 characters: the API server budgets the cost of its rules by the
	// longest value, and they run for every tablespace of every set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self)",message="storage must be a quantity such as 10Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))",message="storage must be more than zero"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0",message="storage may only grow: a PersistentVolumeClaim cannot shrink"
	Storage string `json:"storage"`

	// storageClass of the volume; empty uses the cluster's default. It
	// cannot change: a PersistentVolumeClaim's class is fixed.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storageClass cannot change: a PersistentVolumeClaim's StorageClass is immutable"
	// +optional
	StorageClass string `json:"storageClass,omitempty"`
}

// Tablespace is a volume for a PostgreSQL tablespace.
type Tablespace struct {
	// name of the tablespace's directory, /tablespaces/<name>: lowercase
	// letters and digits, starting with a letter, as PGO requires. It names
	// the pod volume tablespace-<name>, hence at most 52 characters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=52
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9]*$`
	Name string `json:"name"`

	Volume `json:",inline"`
}

// Authentication is PostgreSQL's client authentication.
type Authentication struct {
	// rules are matched in order against each new connection after PGO's
	// own mandatory rules (for replication, pgBackRest, PgBouncer and the
	// exporter) and before any pg_hba in Patroni's settings; the first that
	// matches decides. Any rule replaces PGO's default rules (encrypted
	// connections with a password to any database), so give one for every
	// connection you want accepted. Changes reload PostgreSQL.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Rules []HBARule `json:"rules,omitempty"`
}

// HBARule is one pg_hba.conf rule: either hba, one line as written in
// pg_hba.conf, or connection and method with optional databases, users
// and options (postgresql.org/docs/current/auth-pg-hba-conf.html). The
// rules PGO's CRD holds for a rule are held here too, so that the API
// server refuses the stack rather than PGO the cluster.
// +kubebuilder:validation:XValidation:rule="has(self.hba) != (has(self.connection) || has(self.databases) || has(self.method) || has(self.options) || has(self.users))",message="each of postgres.authentication.rules sets either hba (one pg_hba.conf line) or connection and method (with databases, users, options), not both"
// +kubebuilder:validation:XValidation:rule="has(self.hba) || (has(self.connection) && has(self.method))",message="each of postgres.authentication.rules without hba needs connection and method"
// +kubebuilder:validation:XValidation:rule="has(self.hba) || !has(self.method) || self.method != 'ldap' || (has(self.options) && ['ldapbasedn', 'ldapprefix', 'ldapsuffix'].exists(k, k in self.options))",message="a postgres.authentication.rules method ldap needs an ldapbasedn, ldapprefix or ldapsuffix option"
// +kubebuilder:validation:XValidation:rule="has(self.hba) || !has(self.method) || self.method != 'ldap' || !has(self.options) || [['ldapprefix', 'ldapsuffix'], ['ldapbasedn', 'ldapbinddn', 'ldapbindpasswd', 'ldapsearchattribute', 'ldapsearchfilter']].exists_one(a, a.exists(k, k in self.options))",message="a postgres.authentication.rules method ldap cannot combine the ldapprefix or ldapsuffix options with ldapbasedn, ldapbinddn, ldapbindpasswd, ldapsearchattribute or ldapsearchfilter"
// +kubebuilder:validation:XValidation:rule="has(self.hba) || !has(self.method) || self.method != 'radius' || (has(self.options) && ['radiusservers', 'radiussecrets'].all(k, k in self.options))",message="a postgres.authentication.rules method radius needs the radiusservers and radiussecrets options"
type HBARule struct {
	// hba is one line of pg_hba.conf, such as "hostssl all all all
	// scram-sha-256"; it may not include other files.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[[:print:]]+$`
	// +kubebuilder:validation:XValidation:rule="!self.trim().startsWith('include')",message="postgres.authentication.rules[].hba cannot include other files"
	// +optional
	HBA string `json:"hba,omitempty"`

	// connection is the transport the rule matches: host, hostssl,
	// hostnossl, hostgssenc, hostnogssenc or local.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[-a-z0-9]+$`
	// +optional
	Connection string `json:"connection,omitempty"`

	// databases the rule matches; empty matches all.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Databases []string `json:"databases,omitempty"`

	// users the rule matches; empty matches all.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Users []string `json:"users,omitempty"`

	// method authenticates a matching connection, such as scram-sha-256,
	// cert, ldap or reject (refuse it). PGO refuses trust, which lets
	// anyone in without a password.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[-a-z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != 'trust'",message="postgres.authentication.rules[].method trust is refused: it is unsafe (PGO refuses it too)"
	// +optional
	Method string `json:"method,omitempty"`

	// options of the method, such as clientcert: verify-full or ldapserver.
	// +mapType=atomic
	// +kubebuilder:validation:MaxProperties=20
	// +optional
	Options map[string]intstr.IntOrString `json:"options,omitempty"`
}

// ServiceMetadata is metadata PGO puts on one Service, beside
// postgres.metadata's.
type ServiceMetadata struct {
	// annotations of the Service, such as a cloud load balancer's settings.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// labels of the Service.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// Service is the type and metadata of PostgreSQL's primary Service.
type Service struct {
	// type of the Service: ClusterIP (PGO's default), NodePort or
	// LoadBalancer. PGO picks the node port.
	// +optional
	Type ServiceType `json:"type,omitempty"`

	ServiceMetadata `json:",inline"`
}

// Backups configures pgBackRest.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || self.enabled || !has(self.repos)",fieldPath=".repos",message="postgres.backups.repos cannot be set while postgres.backups.enabled is false"
// +kubebuilder:validation:XValidation:rule="!has(self.repoHostResources) || !has(self.repos) || self.repos.exists(r, has(r.volume))",fieldPath=".repoHostResources",message="postgres.backups.repoHostResources needs a repository on a volume: PGO runs a repo host only for those"
type Backups struct {
	// enabled turns pgBackRest on (the default) or off.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// repos are the pgBackRest repositories, repo1 to repo4, each on a
	// volume or in S3, GCS or Azure. Defaults to one 1Gi volume repo1.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +optional
	Repos []BackupRepo `json:"repos,omitempty"`

	// global are extra pgBackRest settings, such as repo1-s3-uri-style or
	// repo1-cipher-type (pgbackrest.org/configuration.html).
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Global map[string]string `json:"global,omitempty"`

	// credentialsSecret names a Secret whose keys pgBackRest reads as
	// configuration files, such as s3.conf holding repo1-s3-key and
	// repo1-s3-key-secret. Cloud repositories need it.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	CredentialsSecret string `json:"credentialsSecret,omitempty"`

	// image is the pgBackRest container image; empty uses PGO's.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// repoHostResources are the CPU and memory of the pgBackRest repo host,
	// the pod PGO runs for repositories on a volume (so it needs one: repo1
	// is one unless repos says otherwise).
	// +optional
	RepoHostResources *corev1.ResourceRequirements `json:"repoHostResources,omitempty"`

	// jobResources are the CPU and memory of pgBackRest's backup Jobs:
	// scheduled, on request, and the one that seeds replicas.
	// +optional
	JobResources *corev1.ResourceRequirements `json:"jobResources,omitempty"`

	// maxBackupAge: BackupsHealthy turns False when no backup (scheduled or
	// manual, of any repository) has completed within it, such as "26h"
	// for a nightly schedule. Judged again when it runs out, without
	// polling. Unset: only a failed scheduled backup turns it False.
	// +optional
	MaxBackupAge *metav1.Duration `json:"maxBackupAge,omitempty"`
}

// RepoName names a pgBackRest repository.
// +kubebuilder:validation:Enum=repo1;repo2;repo3;repo4
type RepoName string

// BackupRepo is one pgBackRest repository.
// +kubebuilder:validation:XValidation:rule="(has(self.volume) ? 1 : 0) + (has(self.s3) ? 1 : 0) + (has(self.gcs) ? 1 : 0) + (has(self.azure) ? 1 : 0) == 1",message="each of postgres.backups.repos must set exactly one of volume, s3, gcs or azure"
type BackupRepo struct {
	// name is repo1, repo2, repo3 or repo4.
	Name RepoName `json:"name"`

	// volume keeps the repository on a PersistentVolumeClaim of the repo host.
	// +optional
	Volume *VolumeRepo `json:"volume,omitempty"`

	// s3 keeps the repository in an S3-compatible bucket.
	// +optional
	S3 *S3Repo `json:"s3,omitempty"`

	// gcs keeps the repository in a Google Cloud Storage bucket.
	// +optional
	GCS *GCSRepo `json:"gcs,omitempty"`

	// azure keeps the repository in an Azure Blob Storage container.
	// +optional
	Azure *AzureRepo `json:"azure,omitempty"`

	// path inside the bucket or volume, such as /pgbackrest/hippo/repo1
	// (pgBackRest's repoN-path).
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	// +optional
	Path string `json:"path,omitempty"`

	// schedules take backups on cron schedules.
	// +optional
	Schedules *BackupSchedules `json:"schedules,omitempty"`

	// retention says how many backups pgBackRest keeps in this repository.
	// +optional
	Retention *Retention `json:"retention,omitempty"`
}

// VolumeRepo is a repository on a PersistentVolumeClaim.
type VolumeRepo struct {
	// storage is the size of the repository volume. It may only grow.
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="postgres.backups.repos[].volume.storage must be more than zero"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="postgres.backups.repos[].volume.storage may only grow: a PersistentVolumeClaim cannot shrink"
	// +optional
	Storage *resource.Quantity `json:"storage,omitempty"`

	// storageClass of the volume; empty uses the cluster's default. It
	// cannot change: a PersistentVolumeClaim's class is fixed.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="postgres.backups.repos[].volume.storageClass cannot change: a PersistentVolumeClaim's StorageClass is immutable"
	// +optional
	StorageClass string `json:"storageClass,omitempty"`
}

// S3Repo is an S3-compatible bucket.
type S3Repo struct {
	// bucket name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Bucket string `json:"bucket"`
	// endpoint such as s3.amazonaws.com or a MinIO address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Endpoint string `json:"endpoint"`
	// region such as us-east-1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region"`
}

// GCSRepo is a Google Cloud Storage bucket.
type GCSRepo struct {
	// bucket name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Bucket string `json:"bucket"`
}

// AzureRepo is an Azure Blob Storage container.
type AzureRepo struct {
	// container name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Container string `json:"container"`
}

// CronSchedule is a five-field cron expression or a macro such as @daily.
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4})$`
type CronSchedule string

// BackupSchedules are cron schedules for the three pgBackRest backup types.
type BackupSchedules struct {
	// full backup schedule, such as "0 1 * * 0" (Sundays at 01:00).
	// +optional
	Full CronSchedule `json:"full,omitempty"`
	// differential backup schedule (changes since the last full backup).
	// +optional
	Differential CronSchedule `json:"differential,omitempty"`
	// incremental backup schedule (changes since the last backup of any type).
	// +optional
	Incremental CronSchedule `json:"incremental,omitempty"`
}

// RetentionType says how full-backup retention is counted.
// +kubebuilder:validation:Enum=count;time
type RetentionType string

// Retention is pgBackRest's retention of one repository.
// +kubebuilder:validation:XValidation:rule="has(self.full) || has(self.differential)",message="postgres.backups.repos[].retention needs full or differential"
type Retention struct {
	// full is how many full backups to keep (fullType count), or for how
	// many days (fullType time).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9999999
	// +optional
	Full *int32 `json:"full,omitempty"`

	// fullType is count (the default) or time.
	// +kubebuilder:default=count
	// +optional
	FullType RetentionType `json:"fullType,omitempty"`

	// differential is how many differential backups to keep.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9999999
	// +optional
	Differential *int32 `json:"differential,omitempty"`
}

// Restore is an in-place restore of this cluster.
type Restore struct {
	// id triggers the restore: PGO runs one each time it changes (pgstack
	// writes it to the PostgresCluster's pgbackrest-restore annotation).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id"`

	// repoName is the repository to restore from; it must be configured in postgres.backups.repos.
	// +kubebuilder:default=repo1
	// +optional
	RepoName RepoName `json:"repoName,omitempty"`

	// targetTime restores to this point in time (RFC 3339); empty restores
	// to the end of the WAL archive.
	// +optional
	TargetTime *metav1.Time `json:"targetTime,omitempty"`

	// options are extra pgBackRest restore options, such as
	// "--set=20250101-010000F" (restore that backup) or "--type=immediate".
	// PGO sets --stanza, --pg1-path, --repo and --link-map itself, and
	// --target-action=promote whenever a target is given, and refuses them here.
	// +optional
	Options RestoreOptions `json:"options,omitempty"`
}

// RestoreOptions are extra pgBackRest restore options for a restore or a
// clone. PGO adds --stanza, --pg1-path, --repo, --link-map and (with a
// --target) --target-action=promote itself, and refuses a restore whose
// options carry any of them: it emits Warning InvalidDataSource, creates no
// restore Job and never observes the generation (PGO v5.8.9
// internal/controller/postgrescluster/pgbackrest.go:1175-1199, matched the
// same way: by substring). An item that is just "--repo" is refused too:
// with the next item it becomes "--repo <n>" on the command line.
// +kubebuilder:validation:MaxItems=16
// +kubebuilder:validation:items:MaxLength=256
// +kubebuilder:validation:XValidation:rule="!self.exists(o, o.contains('--repo=') || o.contains('--repo ') || o == '--repo')",message="must not set --repo: PGO sets it from repoName and refuses a restore whose options carry it (Event InvalidDataSource)"
// +kubebuilder:validation:XValidation:rule="!self.exists(o, o.contains('--stanza'))",message="must not set --stanza: PGO sets it itself and refuses a restore whose options carry it (Event InvalidDataSource)"
// +kubebuilder:validation:XValidation:rule="!self.exists(o, o.contains('--pg1-path'))",message="must not set --pg1-path: PGO sets it itself and refuses a restore whose options carry it (Event InvalidDataSource)"
// +kubebuilder:validation:XValidation:rule="!self.exists(o, o.contains('--target-action'))",message="must not set --target-action: PGO sets --target-action=promote itself whenever a target is given, and refuses a restore whose options carry it (Event InvalidDataSource)"
// +kubebuilder:validation:XValidation:rule="!self.exists(o, o.contains('--link-map'))",message="must not set --link-map: PGO sets it itself and refuses a restore whose options carry it (Event InvalidDataSource)"
type RestoreOptions []string

// Standby makes the cluster a read-only follower.
// +kubebuilder:validation:XValidation:rule="has(self.repoName) || has(self.host)",message="postgres.standby needs repoName (follow a pgBackRest repository), host (stream from a primary), or both"
// +kubebuilder:validation:XValidation:rule="!has(self.port) || has(self.host)",fieldPath=".port",message="postgres.standby.port needs postgres.standby.host"
type Standby struct {
	// repoName is the repository to follow; it must be configured in
	// postgres.backups.repos, pointing at the primary cluster's repository.
	// +optional
	RepoName RepoName `json:"repoName,omitempty"`

	// host is the address of the primary to stream from.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Host string `json:"host,omitempty"`

	// port of the primary; PGO uses 5432 when empty.
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// CloneFrom seeds a new cluster from existing data.
// +kubebuilder:validation:XValidation:rule="has(self.clusterName) != has(self.repo)",message="postgres.cloneFrom needs exactly one of clusterName (clone a PostgresCluster's repository) or repo (clone a backup in a cloud repository)"
// +kubebuilder:validation:XValidation:rule="has(self.clusterName) == has(self.repoName)",fieldPath=".repoName",message="postgres.cloneFrom.repoName (the source cluster's repository) is required with clusterName, and only with it"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterNamespace) || has(self.clusterName)",fieldPath=".clusterNamespace",message="postgres.cloneFrom.clusterNamespace needs postgres.cloneFrom.clusterName"
// +kubebuilder:validation:XValidation:rule="has(self.repo) || !(has(self.stanza) || has(self.credentialsSecret) || has(self.global))",message="postgres.cloneFrom.stanza, credentialsSecret and global apply only to postgres.cloneFrom.repo"
type CloneFrom struct {
	// clusterName is the PostgresCluster to clone.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ClusterName string `json:"clusterName,omitempty"`

	// clusterNamespace of the source cluster; empty means the stack's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ClusterNamespace string `json:"clusterNamespace,omitempty"`

	// repoName is the source cluster's repository to clone from.
	// +optional
	RepoName RepoName `json:"repoName,omitempty"`

	// repo is a cloud repository holding the backup to clone.
	// +optional
	Repo *CloudRepo `json:"repo,omitempty"`

	// stanza of the backup in repo; PGO's default is db.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Stanza string `json:"stanza,omitempty"`

	// credentialsSecret names a Secret with the pgBackRest configuration
	// files (credentials) for repo.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	CredentialsSecret string `json:"credentialsSecret,omitempty"`

	// global are extra pgBackRest settings for reading repo, such as repo1-path.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Global map[string]string `json:"global,omitempty"`

	// targetTime clones the data as it was at this point in time (RFC 3339);
	// empty clones up to the end of the WAL archive.
	// +optional
	TargetTime *metav1.Time `json:"targetTime,omitempty"`

	// options are extra pgBackRest restore options, such as
	// "--set=20250101-010000F"; the same options as postgres.restore.options
	// are refused.
	// +optional
	Options RestoreOptions `json:"options,omitempty"`
}

// CloudRepo is a pgBackRest repository in a bucket.
// +kubebuilder:validation:XValidation:rule="(has(self.s3) ? 1 : 0) + (has(self.gcs) ? 1 : 0) + (has(self.azure) ? 1 : 0) == 1",message="postgres.cloneFrom.repo must set exactly one of s3, gcs or azure"
type CloudRepo struct {
	// name is the repository's name, repo1 to repo4, as the backup was written.
	Name RepoName `json:"name"`

	// s3 is an S3-compatible bucket.
	// +optional
	S3 *S3Repo `json:"s3,omitempty"`

	// gcs is a Google Cloud Storage bucket.
	// +optional
	GCS *GCSRepo `json:"gcs,omitempty"`

	// azure is an Azure Blob Storage container.
	// +optional
	Azure *AzureRepo `json:"azure,omitempty"`
}

// Monitoring configures the pgMonitor exporter.
type Monitoring struct {
	// enabled runs the exporter (the default once monitoring is present).
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// image of the exporter; empty uses PGO's.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// resources of the exporter container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// TLS names Secrets holding your own certificates. PGO needs both or neither,
// and their ca.crt must be the same.
// +kubebuilder:validation:XValidation:rule="has(self.customTLSSecret) == has(self.customReplicationTLSSecret)",message="postgres.tls.customTLSSecret and postgres.tls.customReplicationTLSSecret must be set together: PGO needs both or neither"
type TLS struct {
	// customTLSSecret names a Secret with tls.crt, tls.key and ca.crt for the server.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	CustomTLSSecret string `json:"customTLSSecret,omitempty"`

	// customReplicationTLSSecret names a Secret with tls.crt, tls.key and
	// ca.crt for the replication client.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	CustomReplicationTLSSecret string `json:"customReplicationTLSSecret,omitempty"`
}

// ServiceType is how a Service is exposed.
// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
type ServiceType string

// Pooler configures PgBouncer.
type Pooler struct {
	// enabled runs PgBouncer (the default once pooler is present).
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// replicas is the number of PgBouncer pods.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// image of PgBouncer; empty uses PGO's.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// serviceType of the PgBouncer Service: ClusterIP, NodePort or LoadBalancer.
	// +kubebuilder:default=ClusterIP
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`

	// service is metadata for the PgBouncer Service (its type is serviceType).
	// +optional
	Service *ServiceMetadata `json:"service,omitempty"`

	// config is PgBouncer's configuration.
	// +optional
	Config *PoolerConfig `json:"config,omitempty"`

	// resources of the PgBouncer container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// PoolerConfig is PgBouncer's configuration (pgbouncer.org/config.html).
type PoolerConfig struct {
	// global are [pgbouncer] settings, such as pool_mode or max_client_conn.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Global map[string]string `json:"global,omitempty"`

	// databases are [databases] entries: name to libpq connection string.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Databases map[string]string `json:"databases,omitempty"`

	// users are [users] entries: name to settings.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Users map[string]string `json:"users,omitempty"`
}

// Scheduling places pods on nodes.
type Scheduling struct {
	// affinity of the pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// tolerations of the pods.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// topologySpreadConstraints of the pods (PostgreSQL instances and PgBouncer).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// priorityClassName of the pods.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// nodeSelector requires nodes carrying these labels. PGO has no node
	// selector field, so pgstack renders it as required node affinity,
	// added to every term of affinity's own required node terms.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}
