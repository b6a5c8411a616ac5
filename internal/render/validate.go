package render

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/pgstack/pgstack/api/v1alpha1"
)

// Validate checks a stack offline, without an API server: the cross-field
// rules the CRD's CEL enforces (shorthands or instances, which repository a
// restore or standby may name, restore with clone or standby, ...), the
// ranges rendering depends on, and what only the renderer can see (overrides
// that are not an object, pgBackRest settings written twice). It is what
// `pgstack render` relies on for a stack read from a file. Field-local
// patterns (cron shapes, name syntax) are left to the API server, which
// remains the authority for a stack it stores.
func Validate(stack *v1alpha1.PostgresStack) error {
	if stack == nil {
		return fmt.Errorf("no PostgresStack")
	}
	errs := validatePostgres(&stack.Spec.Postgres, field.NewPath("spec", "postgres"))
	errs = append(errs, validateNameLengths(stack)...)
	return errs.ToAggregate()
}

// MaxClusterAndInstanceSetName is how long the PostgresCluster's name and an
// instance set's name may be together. PGO documents it and does not check
// it (PGO v5.8.9 pkg/apis/postgres-operator.crunchydata.com/v1beta1/postgrescluster_types.go:437-456):
// past it, the pods' controller-revision-hash label exceeds 63 characters and
// the StatefulSet controller creates no pod. The CRD's CEL rule on
// PostgresStack holds the same limit.
const MaxClusterAndInstanceSetName = 46

// validateNameLengths mirrors the CRD's rule; a stack read from a file
// without a name is not judged.
func validateNameLengths(stack *v1alpha1.PostgresStack) field.ErrorList {
	if stack.Name == "" {
		return nil
	}
	if len(stack.Spec.Postgres.Instances) == 0 {
		if err := checkNameLength(stack.Name, DefaultInstanceName); err != "" {
			return field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), stack.Name, err)}
		}
		return nil
	}
	var errs field.ErrorList
	for i, set := range stack.Spec.Postgres.Instances {
		if err := checkNameLength(stack.Name, set.Name); err != "" {
			errs = append(errs, field.Invalid(field.NewPath("spec", "postgres", "instances").Index(i).Child("name"), set.Name, err))
		}
	}
	return errs
}

func checkNameLength(cluster, set string) string {
	if n := len(cluster) + len(set); n > MaxClusterAndInstanceSetName {
		return fmt.Sprintf("the cluster name %q and the instance set name %q are %d characters together; PGO allows at most %d", cluster, set, n, MaxClusterAndInstanceSetName)
	}
	return ""
}

// RefusedRestoreOption returns the first option PGO would refuse in a
// restore's or a clone's options, and why; "" when none. PGO sets these
// itself and, finding one, emits Warning InvalidDataSource and creates no
// restore Job. It matches by substring, first match wins, as PGO does (PGO
// v5.8.9 internal/controller/postgrescluster/pgbackrest.go:1175-1199); a bare
// "--repo" item is refused too, since the next item becomes its value. The
// CRD's CEL rules on v1alpha1.RestoreOptions hold the same list.
func RefusedRestoreOption(options []string) (option, why string) {
	for _, o := range options {
		switch {
		case strings.Contains(o, "--repo=") || strings.Contains(o, "--repo ") || o == "--repo":
			return "--repo", "PGO sets it from repoName"
		case strings.Contains(o, "--stanza"):
			return "--stanza", "PGO sets it itself"
		case strings.Contains(o, "--pg1-path"):
			return "--pg1-path", "PGO sets it itself"
		case strings.Contains(o, "--target-action"):
			return "--target-action", "PGO sets --target-action=promote itself whenever a target is given"
		case strings.Contains(o, "--link-map"):
			return "--link-map", "PGO sets it itself"
		}
	}
	return "", ""
}

func validateRestoreOptions(options []string, path *field.Path) field.ErrorList {
	if option, why := RefusedRestoreOption(options); option != "" {
		return field.ErrorList{field.Invalid(path, options, fmt.Sprintf("must not set %s: %s and refuses a restore whose options carry it", option, why))}
	}
	return nil
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// tablespaceName is PGO's pattern for a tablespace volume's name.
	tablespaceName = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	repoNames      = map[v1alpha1.RepoName]bool{"repo1": true, "repo2": true, "repo3": true, "repo4": true}
)

func validatePostgres(spec *v1alpha1.PostgresSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Version != 0 && (spec.Version < 11 || spec.Version > 18) {
		errs = append(errs, field.Invalid(path.Child("version"), spec.Version, "must be a PostgreSQL major version from 11 to 18"))
	}

	shorthand := spec.Replicas != nil || spec.Storage != nil || spec.StorageClass != "" || spec.Resources != nil
	if len(spec.Instances) > 0 && shorthand {
		errs = append(errs, field.Forbidden(path.Child("instances"), "cannot be combined with the shorthands postgres.replicas, postgres.storage, postgres.storageClass or postgres.resources"))
	}
	if spec.Replicas != nil && *spec.Replicas < 1 {
		errs = append(errs, field.Invalid(path.Child("replicas"), *spec.Replicas, "must be at least 1"))
	}
	errs = append(errs, positiveQuantity(spec.Storage, path.Child("storage"))...)
	sets := map[string]bool{}
	for i, set := range spec.Instances {
		p := path.Child("instances").Index(i)
		errs = append(errs, checkName(sets, set.Name, dnsLabel.MatchString(set.Name) && len(set.Name) <= 32,
			"must be a lowercase DNS label of at most 32 characters", p.Child("name"))...)
		if set.Replicas < 0 {
			errs = append(errs, field.Invalid(p.Child("replicas"), set.Replicas, "must be at least 1"))
		}
		errs = append(errs, positiveQuantity(set.Storage, p.Child("storage"))...)
		if set.WALVolume != nil {
			errs = append(errs, validateVolume(set.WALVolume, p.Child("walVolume"))...)
		}
		tablespaces := map[string]bool{}
		for j, t := range set.Tablespaces {
			tp := p.Child("tablespaces").Index(j)
			errs = append(errs, checkName(tablespaces, t.Name, tablespaceName.MatchString(t.Name) && len(t.Name) <= 52,
				"must be lowercase letters and digits, starting with a letter, at most 52 characters", tp.Child("name"))...)
			errs = append(errs, validateVolume(&t.Volume, tp)...)
		}
	}
	secrets := map[string]bool{}
	for i, secret := range spec.ImagePullSecrets {
		errs = append(errs, checkName(secrets, secret.Name, secret.Name != "",
			"each of postgres.imagePullSecrets needs a name", path.Child("imagePullSecrets").Index(i).Child("name"))...)
	}
	if a := spec.Authentication; a != nil {
		for i, rule := range a.Rules {
			errs = append(errs, validateHBARule(rule, path.Child("authentication", "rules").Index(i))...)
		}
	}
	if spec.SyncReplication && !atLeastTwoInstances(spec) {
		errs = append(errs, field.Invalid(path.Child("syncReplication"), true, "needs at least two PostgreSQL instances"))
	}

	errs = append(errs, validateBackups(&spec.Backups, path.Child("backups"))...)
	backupsOff := spec.Backups.Enabled != nil && !*spec.Backups.Enabled
	configured := func(name v1alpha1.RepoName) bool {
		if len(spec.Backups.Repos) == 0 {
			return name == DefaultRepoName
		}
		for _, r := range spec.Backups.Repos {
			if r.Name == name {
				return true
			}
		}
		return false
	}
	if r := spec.Restore; r != nil {
		p := path.Child("restore")
		if r.ID == "" {
			errs = append(errs, field.Required(p.Child("id"), "changing it is what triggers a restore"))
		}
		if spec.CloneFrom != nil {
			errs = append(errs, field.Forbidden(p, "cannot be combined with postgres.cloneFrom"))
		}
		if spec.Standby != nil {
			errs = append(errs, field.Forbidden(p, "cannot be combined with postgres.standby"))
		}
		if backupsOff {
			errs = append(errs, field.Forbidden(p, "needs backups: postgres.backups.enabled must not be false"))
		}
		if r.RepoName != "" && !configured(r.RepoName) {
			errs = append(errs, field.Invalid(p.Child("repoName"), r.RepoName, "must name a repository configured in postgres.backups.repos"))
		}
		errs = append(errs, validateRestoreOptions(r.Options, p.Child("options"))...)
	}
	if s := spec.Standby; s != nil {
		p := path.Child("standby")
		if s.RepoName == "" && s.Host == "" {
			errs = append(errs, field.Required(p, "needs repoName, host, or both"))
		}
		if s.Port != nil && s.Host == "" {
			errs = append(errs, field.Required(p.Child("host"), "postgres.standby.port needs a host"))
		}
		if s.RepoName != "" {
			if backupsOff {
				errs = append(errs, field.Forbidden(p.Child("repoName"), "needs backups: postgres.backups.enabled must not be false"))
			} else if !configured(s.RepoName) {
				errs = append(errs, field.Invalid(p.Child("repoName"), s.RepoName, "must name a repository configured in postgres.backups.repos"))
			}
		}
	}
	if c := spec.CloneFrom; c != nil {
		p := path.Child("cloneFrom")
		if (c.ClusterName == "") == (c.Repo == nil) {
			errs = append(errs, field.Invalid(p, "", "needs exactly one of clusterName or repo"))
		}
		if (c.ClusterName == "") != (c.RepoName == "") {
			errs = append(errs, field.Required(p.Child("repoName"), "is required with clusterName, and only with it"))
		}
		errs = append(errs, validateRestoreOptions(c.Options, p.Child("options"))...)
		if c.Repo != nil {
			errs = append(errs, validateRepoName(c.Repo.Name, p.Child("repo", "name"))...)
			if storageKinds(nil, c.Repo.S3, c.Repo.GCS, c.Repo.Azure) != 1 {
				errs = append(errs, field.Invalid(p.Child("repo"), "", "must set exactly one of s3, gcs or azure"))
			}
		}
	}
	if t := spec.TLS; t != nil && (t.CustomTLSSecret == "") != (t.CustomReplicationTLSSecret == "") {
		errs = append(errs, field.Required(path.Child("tls"), "customTLSSecret and customReplicationTLSSecret must be set together"))
	}
	if p := spec.Pooler; p != nil && p.Replicas != nil && *p.Replicas < 0 {
		errs = append(errs, field.Invalid(path.Child("pooler", "replicas"), *p.Replicas, "must not be negative"))
	}
	if spec.Overrides != nil && len(spec.Overrides.Raw) > 0 {
		var overrides any
		if err := utiljson.Unmarshal(spec.Overrides.Raw, &overrides); err != nil {
			errs = append(errs, field.Invalid(path.Child("overrides"), string(spec.Overrides.Raw), err.Error()))
		} else if _, ok := overrides.(map[string]any); !ok && overrides != nil {
			errs = append(errs, field.Invalid(path.Child("overrides"), string(spec.Overrides.Raw), "must be an object: a PostgresCluster spec fragment"))
		}
	}
	return errs
}

func validateBackups(b *v1alpha1.Backups, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.Enabled != nil && !*b.Enabled && len(b.Repos) > 0 {
		errs = append(errs, field.Forbidden(path.Child("repos"), "cannot be set while postgres.backups.enabled is false"))
	}
	if b.RepoHostResources != nil && len(b.Repos) > 0 && !hasVolumeRepo(b.Repos) {
		errs = append(errs, field.Forbidden(path.Child("repoHostResources"), "needs a repository on a volume: PGO runs a repo host only for those"))
	}
	if len(b.Repos) > 4 {
		errs = append(errs, field.TooMany(path.Child("repos"), len(b.Repos), 4))
	}
	seen := map[v1alpha1.RepoName]bool{}
	for i, repo := range b.Repos {
		p := path.Child("repos").Index(i)
		errs = append(errs, validateRepoName(repo.Name, p.Child("name"))...)
		if seen[repo.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), repo.Name))
		}
		seen[repo.Name] = true
		if storageKinds(repo.Volume, repo.S3, repo.GCS, repo.Azure) != 1 {
			errs = append(errs, field.Invalid(p, repo.Name, "must set exactly one of volume, s3, gcs or azure"))
		}
		if repo.Volume != nil {
			errs = append(errs, positiveQuantity(repo.Volume.Storage, p.Child("volume", "storage"))...)
		}
		if r := repo.Retention; r != nil && r.Full == nil && r.Differential == nil {
			errs = append(errs, field.Required(p.Child("retention"), "needs full or differential"))
		}
		// Typed settings become pgBackRest global keys; writing the same key
		// in global too would leave one of them silently ignored.
		for key := range repoGlobals(repo) {
			if _, twice := b.Global[key]; twice {
				errs = append(errs, field.Duplicate(path.Child("global").Key(key), fmt.Sprintf("%s is also set by postgres.backups.repos[%d]", key, i)))
			}
		}
	}
	return errs
}

// checkName judges the name of one item of a list keyed by name: refused
// with why unless valid, and as a duplicate when an earlier item of the
// list (recorded in seen) has it.
func checkName(seen map[string]bool, name string, valid bool, why string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !valid {
		errs = append(errs, field.Invalid(path, name, why))
	} else if seen[name] {
		errs = append(errs, field.Duplicate(path, name))
	}
	seen[name] = true
	return errs
}

func hasVolumeRepo(repos []v1alpha1.BackupRepo) bool {
	for _, r := range repos {
		if r.Volume != nil {
			return true
		}
	}
	return false
}

// validateVolume mirrors the CRD's rules on a v1alpha1.Volume.
func validateVolume(v *v1alpha1.Volume, path *field.Path) field.ErrorList {
	if v.Storage == "" {
		return field.ErrorList{field.Required(path.Child("storage"), "the size of the volume")}
	}
	q, err := resource.ParseQuantity(v.Storage)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("storage"), v.Storage, "must be a quantity such as 10Gi")}
	}
	return positiveQuantity(&q, path.Child("storage"))
}

// validateHBARule mirrors the CRD's rules on a v1alpha1.HBARule, which are
// PGO's own rules on an authentication rule (PGO v5.8.9
// pkg/apis/postgres-operator.crunchydata.com/v1beta1/postgres_types.go:89-163).
func validateHBARule(r v1alpha1.HBARule, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	structured := r.Connection != "" || r.Databases != nil || r.Method != "" || r.Options != nil || r.Users != nil
	switch {
	case r.HBA != "" && structured:
		errs = append(errs, field.Invalid(path, r.HBA, "sets either hba (one pg_hba.conf line) or connection and method (with databases, users, options), not both"))
	case r.HBA == "" && (r.Connection == "" || r.Method == ""):
		errs = append(errs, field.Required(path, "without hba, needs connection and method"))
	}
	if strings.HasPrefix(strings.TrimSpace(r.HBA), "include") {
		errs = append(errs, field.Invalid(path.Child("hba"), r.HBA, "cannot include other files"))
	}
	if r.Method == "trust" {
		errs = append(errs, field.Invalid(path.Child("method"), r.Method, "trust is refused: it is unsafe (PGO refuses it too)"))
	}
	if r.HBA != "" {
		return errs
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := r.Options[k]; ok {
				return true
			}
		}
		return false
	}
	switch r.Method {
	case "ldap":
		if !has("ldapbasedn", "ldapprefix", "ldapsuffix") {
			errs = append(errs, field.Required(path.Child("options"), "method ldap needs an ldapbasedn, ldapprefix or ldapsuffix option"))
		} else if has("ldapprefix", "ldapsuffix") && has("ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter") {
			errs = append(errs, field.Invalid(path.Child("options"), r.Options, "method ldap cannot combine the ldapprefix or ldapsuffix options with ldapbasedn, ldapbinddn, ldapbindpasswd, ldapsearchattribute or ldapsearchfilter"))
		}
	case "radius":
		if !has("radiusservers") || !has("radiussecrets") {
			errs = append(errs, field.Required(path.Child("options"), "method radius needs the radiusservers and radiussecrets options"))
		}
	}
	return errs
}

func validateRepoName(name v1alpha1.RepoName, path *field.Path) field.ErrorList {
	if !repoNames[name] {
		return field.ErrorList{field.NotSupported(path, name, []string{"repo1", "repo2", "repo3", "repo4"})}
	}
	return nil
}

func storageKinds(volume *v1alpha1.VolumeRepo, s3 *v1alpha1.S3Repo, gcs *v1alpha1.GCSRepo, azure *v1alpha1.AzureRepo) int {
	n := 0
	for _, set := range []bool{volume != nil, s3 != nil, gcs != nil, azure != nil} {
		if set {
			n++
		}
	}
	return n
}

func positiveQuantity(q *resource.Quantity, path *field.Path) field.ErrorList {
	if q != nil && q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(path, q.String(), "must be more than zero")}
	}
	return nil
}

func atLeastTwoInstances(spec *v1alpha1.PostgresSpec) bool {
	if len(spec.Instances) == 0 {
		return spec.Replicas != nil && *spec.Replicas > 1
	}
	return len(spec.Instances) > 1 || spec.Instances[0].Replicas > 1
}
