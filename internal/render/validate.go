package render

import (
	"fmt"
	"regexp"

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
	return errs.ToAggregate()
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	repoNames = map[v1alpha1.RepoName]bool{"repo1": true, "repo2": true, "repo3": true, "repo4": true}
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
	names := map[string]bool{}
	for i, set := range spec.Instances {
		p := path.Child("instances").Index(i)
		if !dnsLabel.MatchString(set.Name) || len(set.Name) > 32 {
			errs = append(errs, field.Invalid(p.Child("name"), set.Name, "must be a lowercase DNS label of at most 32 characters"))
		}
		if names[set.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), set.Name))
		}
		names[set.Name] = true
		if set.Replicas < 0 {
			errs = append(errs, field.Invalid(p.Child("replicas"), set.Replicas, "must be at least 1"))
		}
		errs = append(errs, positiveQuantity(set.Storage, p.Child("storage"))...)
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
