-- Moves the primary once: a new spec.operations.switchover.token, the time
-- to the second. Argo CD actions take no input, so the target is left to
-- Patroni (a healthy replica): any targetInstance set before is cleared.
local os = require("os")
obj.spec.operations = obj.spec.operations or {}
obj.spec.operations.switchover = {["token"] = os.date("!%Y-%m-%dT%H:%M:%SZ")}
return obj
