-- Restart the service on each host in turn, and wait for health before the next one.
-- `--dry-run` shows the plan and restarts nothing.
--   agentlab-ops run examples/lua/rolling_restart.lua [SERVICE] [--dry-run]
local service = arg[1] or "agent-lab"
local restarted = {}
for _, h in ipairs(ops.hosts()) do
  ops.step("restart " .. service .. " on " .. h.name, "change", function()
    local r = h:run{ "systemctl", "restart", service }
    if not r.ok then
      error({ kind = "unexpected", message = h.name .. ": systemctl exited " .. tostring(r.status) .. ": " .. r.stderr })
    end
    restarted[#restarted + 1] = h.name
  end)
  if not ops.report.dry_run() then
    ops.step("health after " .. h.name, "read", function()
      for attempt = 1, 10 do
        local ok, r = pcall(ops.probe, "/health")
        if ok and r.status == 200 then return r.status, "healthy after " .. attempt .. " probe(s)" end
      end
      error({ kind = "unavailable", message = "not healthy after restarting " .. h.name })
    end)
  end
end
return { service = service, restarted = restarted }
