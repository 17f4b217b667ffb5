-- The built-in morning check, plus one endpoint of the team's own.
--   agentlab-ops run examples/lua/morning_plus.lua [PATH]
local path = arg[1] or "/health/detailed"
local report = ops.morning_check()
for _, e in ipairs(report.escalations) do
  ops.report.escalate(e)
end
local extra = ops.step("GET " .. path, "read", function()
  local r = ops.probe(path)
  return r, "HTTP " .. r.status .. " in " .. r.latency_ms .. " ms"
end)
if extra.status ~= 200 then
  ops.report.escalate{ criterion = "team_endpoint", subject = path, observed = "HTTP " .. extra.status,
    threshold = "HTTP 200", message = path .. " answers " .. extra.status }
elseif extra.latency_ms > 1000 then
  ops.report.finding("warning", path, "slow: " .. extra.latency_ms .. " ms")
end
return { morning = report.verdict, extra = { path = path, status = extra.status, latency_ms = extra.latency_ms } }
