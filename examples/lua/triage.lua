-- Alert triage: the recent errors in the service log on every host, counted and sampled.
--   agentlab-ops run examples/lua/triage.lua [LINES]
local lines = arg[1] or "500"
local hosts = ops.hosts()
local jobs = {}
for i, h in ipairs(hosts) do
  jobs[i] = function()
    local r = h:run{ "journalctl", "-u", "agent-lab", "-n", lines, "--no-pager", "-p", "err" }
    local errors = {}
    for line in r.stdout:gmatch("[^\n]+") do
      if line:find("ERROR") or line:find("Traceback") or line:find("error") then
        errors[#errors + 1] = line
      end
    end
    return { host = h.name, count = #errors, sample = { table.unpack(errors, 1, math.min(3, #errors)) } }
  end
end
local found = ops.step("collect errors from " .. #hosts .. " hosts", "read", function()
  local r = ops.parallel(jobs)
  local total = 0
  for i = 1, #hosts do total = total + r[i].count end
  return r, total .. " error lines"
end)
for i = 1, #hosts do
  local r = found[i]
  if r.count > 0 then
    ops.report.finding("warning", r.host, r.count .. " error lines; first: " .. (r.sample[1] or ""))
  end
end
return { hosts = found }
