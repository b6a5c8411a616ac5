-- Argo CD resource actions for platform.pgstack.dev/PostgresStack. Each
-- action writes a new token into spec.operations; pgstack runs each token
-- once (docs/operations/README.md). An action is greyed out where the stack would
-- refuse it: a backup with backups off, a switchover on one instance.
local actions = {}
local spec = obj.spec or {}
local postgres = spec.postgres or {}
local backupsOff = postgres.backups ~= nil and postgres.backups.enabled == false
local instances = 0
if obj.status ~= nil and obj.status.cluster ~= nil and obj.status.cluster.instances ~= nil then
  instances = obj.status.cluster.instances
end
actions["backup-now"] = {["disabled"] = backupsOff, ["displayName"] = "Back up now", ["iconClass"] = "fa fa-fw fa-database"}
actions["restart"] = {["disabled"] = false, ["displayName"] = "Rolling restart", ["iconClass"] = "fa fa-fw fa-redo"}
actions["switchover"] = {["disabled"] = instances < 2, ["displayName"] = "Switch the primary over", ["iconClass"] = "fa fa-fw fa-exchange-alt"}
return actions
