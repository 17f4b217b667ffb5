-- Backup object counts and sizes over the last 7 days, per dataset, as a table.
--   agentlab-ops run examples/lua/backup_counts.lua [DAYS]
local days = tonumber(arg[1] or "7")
local store = ops.backups()
local datasets = { "sessions", "telemetry" }
local rows = {}
local now = os.time()
for back = days - 1, 0, -1 do
  local day = os.date("!%Y%m%d", now - back * 86400)
  local row = { day = day }
  for _, ds in ipairs(datasets) do
    local objects = store:list(ds .. "/" .. day .. "/")
    local count, bytes, manifest = 0, 0, false
    for _, o in ipairs(objects) do
      if o.key:match("MANIFEST%.jsonl$") then manifest = true
      else count = count + 1; bytes = bytes + o.size end
    end
    row[ds] = { objects = count, bytes = bytes, manifest = manifest }
    if count == 0 then
      ops.report.finding("warning", ds .. "/" .. day .. "/", "no backup")
    elseif not manifest then
      ops.report.finding("warning", ds .. "/" .. day .. "/", "no manifest: incomplete")
    end
  end
  rows[#rows + 1] = row
end

print(string.format("%-10s %18s %18s", "day", "sessions", "telemetry"))
for _, r in ipairs(rows) do
  local cell = function(c) return string.format("%5d obj %8d B%s", c.objects, c.bytes, c.manifest and "" or "!") end
  print(string.format("%-10s %18s %18s", r.day, cell(r.sessions), cell(r.telemetry)))
end
return { days = rows }
