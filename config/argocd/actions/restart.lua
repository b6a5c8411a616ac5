-- Restarts every pod of the cluster once, replicas first and the primary
-- last: a new spec.operations.restart.token, the time to the second.
local os = require("os")
obj.spec.operations = obj.spec.operations or {}
obj.spec.operations.restart = obj.spec.operations.restart or {}
obj.spec.operations.restart.token = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
