-- Argo CD health check for platform.pgstack.dev/PostgresStack.
-- Install it as argocd-cm's resource.customizations.health.platform.pgstack.dev_PostgresStack
-- (see argocd-cm-patch.yaml). It reads the kstatus conditions pgstack writes:
--   Healthy      Ready=True, and pgstack has observed the current generation
--   Degraded     Stalled=True: a person must act; the message is Stalled's
--   Progressing  Reconciling=True (work under way, even beside Ready=True: a
--                major upgrade waiting to start), and everything else,
--                including a spec pgstack has not observed yet and a stack
--                without status; the message is Reconciling's, else Ready's
local hs = { status = "Progressing", message = "Waiting for pgstack to report status" }

if obj.status == nil or obj.status.conditions == nil then
  return hs
end

-- Conditions describe the spec pgstack last observed; until that is the
-- current generation they are about an older spec and say nothing of this one.
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for pgstack to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
local stalled = nil
local reconciling = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Stalled" then
    stalled = condition
  elseif condition.type == "Reconciling" then
    reconciling = condition
  end
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.message or reconciling.reason or "Reconciling"
  return hs
end

if ready ~= nil then
  hs.message = ready.message or ready.reason or ""
  if ready.status == "True" then
    hs.status = "Healthy"
  end
end
return hs
