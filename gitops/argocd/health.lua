-- Argo CD health check for modelrollout.io/ModelDeployment.
-- Install: argocd-cm key `resource.customizations.health.modelrollout.io_ModelDeployment`
-- (README "GitOps"). Argo CD runs it in gopher-lua (Lua 5.1): plain tables only.
--
--   status.phase   Argo CD health   why
--   (no status or an older observedGeneration)  Progressing  the operator has not seen this spec yet
--   Progressing    Progressing      a rollout is running
--   Paused         Suspended        held at a pause step, by `pause`, or by analysis without data / Prometheus down
--   Healthy        Healthy          the spec's revision serves all traffic (a drifting model says so in the message)
--   Degraded       Degraded         rolled back, aborted, or an InvalidSpec: Git needs a change or `retry`
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status
local generation = (obj.metadata or {}).generation
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the modelrollout operator to observe the ModelDeployment"
  return hs
end
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local message = status.message or ""
local phase = status.phase
if phase == "Healthy" then
  hs.status = "Healthy"
  local drifted = condition(status, "Drifted")
  if drifted ~= nil and drifted.status == "True" then
    -- Drift starts no rollout and no sync can fix it; replace "Healthy" with
    -- "Degraded" here if drift should flag the application.
    hs.message = "Drifted: " .. (drifted.message or message)
  else
    hs.message = message
  end
elseif phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = message
elseif phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message
elseif phase == "Degraded" then
  hs.status = "Degraded"
  local reason = status.reason or "Degraded"
  hs.message = reason .. ": " .. message
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
