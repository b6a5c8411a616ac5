-- Takes one manual backup: a new spec.operations.backup.token (the repo
-- and options already set stay). The token is the time, to the second.
local os = require("os")
obj.spec.operations = obj.spec.operations or {}
obj.spec.operations.backup = obj.spec.operations.backup or {}
obj.spec.operations.backup.token = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
