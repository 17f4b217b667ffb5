-- Any host's disk above a threshold (default 90%) → a notification, and an escalation.
--   agentlab-ops run examples/lua/disk_alert.lua [PERCENT]
local limit = tonumber(arg[1] or "90")
local hosts = ops.hosts()

-- Every host at once; a host that cannot be read is reported, never hides the others.
local checks = {}
for i, h in ipairs(hosts) do
  checks[i] = function()
    local ok, out = pcall(function() return h:run{ "df", "-P", "-B1" } end)
    if not ok then return { host = h.name, error = tostring(out) } end
    local full = {}
    for line in out.stdout:gmatch("[^\n]+") do
      local pct, mount = line:match("(%d+)%%%s+(%S+)$")
      if pct and tonumber(pct) > limit then
        full[#full + 1] = { mount = mount, used = tonumber(pct) }
      end
    end
    return { host = h.name, full = full }
  end
end
local results = ops.step("df on " .. #hosts .. " hosts", "read", function()
  local r = ops.parallel(checks)
  return r, #hosts .. " hosts read"
end)

local alerts = {}
for i = 1, #hosts do
  local r = results[i]
  if r.error then
    ops.report.finding("warning", r.host, "disk usage unreadable: " .. r.error)
  else
    for _, d in ipairs(r.full) do
      alerts[#alerts + 1] = string.format("%s:%s at %d%%", r.host, d.mount, d.used)
      ops.report.escalate{ criterion = "disk_high", subject = r.host .. ":" .. d.mount,
        observed = d.used .. "%", threshold = limit .. "%",
        message = r.host .. ":" .. d.mount .. " is " .. d.used .. "% full" }
    end
  end
end

if #alerts > 0 then
  -- A notification that cannot be sent is a warning: the escalations above still stand.
  local ok, err = pcall(ops.step, "notify", "change", function()
    ops.notify(":warning: disks above " .. limit .. "%: " .. table.concat(alerts, ", "))
  end)
  if not ok then ops.report.finding("warning", "notify", "not sent: " .. tostring(err)) end
end
return { limit = limit, alerts = alerts }
