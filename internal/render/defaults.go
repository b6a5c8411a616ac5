package render

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/pgstack/pgstack/api/v1alpha1"
)

// The defaults a stack gets when it says nothing. The CRD's markers apply
// the scalar ones on the API server; Defaulted applies all of them again,
// because a stack read from a file never went through the API server.
const (
	DefaultVersion      int32 = 16
	DefaultInstanceName       = "instance1"
	DefaultRepoName           = v1alpha1.RepoName("repo1")
	DefaultStanza             = "db"
)

// DefaultStorage is the size of a data or repository volume nobody sized.
var DefaultStorage = resource.MustParse("1Gi")

// Defaulted returns a copy of the stack's postgres spec with every default
// filled in: the version, the instance set built from the shorthands, the
// repo1 volume repository (unless backups are disabled), and the enabled
// switches and counts of the optional features.
func Defaulted(in *v1alpha1.PostgresSpec) *v1alpha1.PostgresSpec {
	spec := in.DeepCopy()
	if spec.Version == 0 {
		spec.Version = DefaultVersion
	}

	if len(spec.Instances) == 0 {
		set := v1alpha1.InstanceSet{
			Name:         DefaultInstanceName,
			Replicas:     1,
			Storage:      spec.Storage,
			StorageClass: spec.StorageClass,
			Resources:    spec.Resources,
		}
		if spec.Replicas != nil {
			set.Replicas = *spec.Replicas
		}
		spec.Instances = []v1alpha1.InstanceSet{set}
		spec.Replicas, spec.Storage, spec.StorageClass, spec.Resources = nil, nil, "", nil
	}
	for i := range spec.Instances {
		set := &spec.Instances[i]
		if set.Replicas == 0 {
			set.Replicas = 1
		}
		if set.Storage == nil {
			set.Storage = ptrTo(DefaultStorage.DeepCopy())
		}
	}

	if spec.Backups.Enabled == nil {
		spec.Backups.Enabled = ptrTo(true)
	}
	if *spec.Backups.Enabled && len(spec.Backups.Repos) == 0 {
		spec.Backups.Repos = []v1alpha1.BackupRepo{{Name: DefaultRepoName, Volume: &v1alpha1.VolumeRepo{}}}
	}
	for i := range spec.Backups.Repos {
		repo := &spec.Backups.Repos[i]
		if repo.Volume != nil && repo.Volume.Storage == nil {
			repo.Volume.Storage = ptrTo(DefaultStorage.DeepCopy())
		}
		if repo.Retention != nil && repo.Retention.FullType == "" {
			repo.Retention.FullType = "count"
		}
	}

	if spec.Restore != nil && spec.Restore.RepoName == "" {
		spec.Restore.RepoName = DefaultRepoName
	}
	if spec.Monitoring != nil && spec.Monitoring.Enabled == nil {
		spec.Monitoring.Enabled = ptrTo(true)
	}
	if spec.Pooler != nil {
		if spec.Pooler.Enabled == nil {
			spec.Pooler.Enabled = ptrTo(true)
		}
		if spec.Pooler.Replicas == nil {
			spec.Pooler.Replicas = ptrTo(int32(1))
		}
		if spec.Pooler.ServiceType == "" {
			spec.Pooler.ServiceType = "ClusterIP"
		}
	}
	return spec
}

func ptrTo[T any](v T) *T { return &v }
