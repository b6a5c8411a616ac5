package testenv

// HippoPostgresCluster is the PostgresCluster of the user document
// (../shared/seed): PostgreSQL 16, one instance set with a 1Gi ReadWriteOnce
// data volume (one replica, PGO's default, written out as pgstack renders it)
// and a 1Gi pgBackRest repo1 volume. Suites set its namespace.
const HippoPostgresCluster = `
apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata:
  name: hippo
spec:
  postgresVersion: 16
  instances:
  - name: instance1
    replicas: 1
    dataVolumeClaimSpec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
  backups:
    pgbackrest:
      repos:
      - name: repo1
        volume:
          volumeClaimSpec:
            accessModes: [ReadWriteOnce]
            resources:
              requests:
                storage: 1Gi
`
