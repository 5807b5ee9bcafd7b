-- Argo CD health for infer.dev/InferenceDeployment, from the operator's kstatus-style conditions.
-- Install: resource.customizations.health.infer.dev_InferenceDeployment in argocd-cm (see
-- argocd-cm.yaml beside this file).
local hs = {status = "Progressing", message = "Waiting for the operator to reconcile"}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if obj.status.observedGeneration == nil or obj.status.observedGeneration < generation then
  hs.message = "The operator has not seen generation " .. generation .. " yet"
  return hs
end

local degraded = condition("Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  if ready.reason == "ScaledToZero" then
    hs.status = "Suspended"
    hs.message = "Scaled to zero; the first request wakes it"
  else
    hs.status = "Healthy"
    hs.message = ready.message or "All replicas are ready"
  end
  return hs
end

local progressing = condition("Progressing")
if progressing ~= nil and progressing.status == "True" then
  hs.message = (progressing.reason or "Progressing") .. ": " .. (progressing.message or "")
elseif ready ~= nil then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
end
return hs
