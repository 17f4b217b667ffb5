-- The `ops` module: thin Lua over the native functions. Every native call answers
-- (true, value) or (false, error table); here errors are raised as tables
-- {kind=, message=, operation=, context=, where=} that pcall can inspect and that print
-- readably when uncaught.
local native = ...
local ops = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  local s = (e.where and (e.where .. ": ") or "") .. tostring(e.kind) .. ": " .. tostring(e.message)
  return s
end
ops.Error = Error

local function call(f, ...)
  local ok, v = f(...)
  if ok then return v end
  error(setmetatable(v, Error), 0)
end

local function env_of(t)
  if type(t) == "table" and t.env ~= nil then return t.env.id end
  return 0
end

local Env = {}
Env.__index = Env
local function make_env(id, name)
  return setmetatable({ id = id, name = name }, Env)
end

-- The environment the runner was given.
function ops.env()
  local info = call(native.env_info, 0)
  return make_env(0, info.name)
end

-- A sandbox (simulated Agent Lab on 127.0.0.1) and its environment.
function ops.sandbox(scenario)
  local info = call(native.sandbox, scenario or "healthy")
  return make_env(info.id, info.name)
end

-- Runbooks, from the catalogue: ops.run("backup_verify", {sample = "10%"}), and
-- ops.<name>{...} for every name and alias (ops.backup_verify, ops.verify_backups...).
function ops.run(name, opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do if k ~= "env" then o[k] = v end end
  return call(native.runbook, name, o, env_of(opts))
end
function ops.runbooks() return native.runbooks() end
-- The drill: every runbook (or those named) against its sandbox scenarios.
function ops.drill(names) return call(native.drill, names or {}) end
-- Take over a run that stopped half-way: ops.resume{run_id = "...", done = {...}, redo = {...}}
-- (no run_id: the newest unfinished run); ops.unfinished() lists them.
function ops.resume(opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do if k ~= "env" then o[k] = v end end
  return call(native.resume, o, env_of(opts))
end
function ops.unfinished(opts) return call(native.unfinished, env_of(opts)) end
for _, d in ipairs(native.runbooks()) do
  local names = { d.name }
  for _, a in ipairs(d.aliases) do names[#names + 1] = a end
  for _, n in ipairs(names) do
    ops[n] = function(opts) return ops.run(d.name, opts) end
  end
end

-- GET a path of the service (or an absolute URL).
function ops.probe(path, opts)
  return call(native.probe, env_of(opts), path or "/health")
end

local Host = {}
Host.__index = Host
function Host:run(argv, opts)
  return call(native.host_run, self.env, self.name, argv, opts or {})
end
function Host:read_file(path)
  return call(native.host_read, self.env, self.name, path)
end
Host.__tostring = function(h) return "host " .. h.name end

function ops.host(name, opts)
  local env = env_of(opts)
  call(native.host_check, env, name)
  return setmetatable({ name = name, env = env }, Host)
end

function ops.hosts(opts)
  local env = env_of(opts)
  local out = {}
  for i, name in ipairs(call(native.host_names, env)) do
    out[i] = setmetatable({ name = name, env = env }, Host)
  end
  return out
end

local Store = {}
Store.__index = Store
function Store:list(prefix) return call(native.backups_list, self.env, prefix or "") end
function Store:get(key) return call(native.backups_get, self.env, key) end
function Store:count(prefix) return call(native.backups_count, self.env, prefix or "") end

function ops.backups(opts)
  return setmetatable({ env = env_of(opts) }, Store)
end

function ops.notify(text, opts)
  return call(native.notify, env_of(opts), tostring(text))
end

-- ops.slo() evaluates the environment's SLOs; ops.slo{target=, good=, total=, windows=} the
-- math on counts alone.
function ops.slo(opts)
  if type(opts) == "table" and opts.target ~= nil then
    return call(native.slo_eval, opts)
  end
  return call(native.slo_env, env_of(opts))
end

-- Run functions concurrently; their results in order. An error in one is raised after all
-- finished (none is hidden by another).
function ops.parallel(fns)
  local errs, n = {}, #fns
  local guarded = {}
  for i, f in ipairs(fns) do
    guarded[i] = function()
      local ok, v = pcall(f)
      if ok then return v end
      errs[i] = v
      return nil
    end
  end
  local results = call(native.parallel, guarded)
  for i = 1, n do
    if errs[i] ~= nil then error(errs[i], 0) end
  end
  return results
end

-- A step of the script's run: "read" always runs; "change" is only planned under dry-run and
-- its undo runs if the run later fails (or is interrupted).
function ops.step(name, kind, fn, undo)
  local caught
  local function guarded()
    local r = table.pack(pcall(fn))
    if r[1] then return table.unpack(r, 2, r.n) end
    local e = r[2]
    -- error({kind=, message=}) from a script: make it print as ours do.
    if type(e) == "table" and getmetatable(e) == nil and e.message ~= nil then
      e.kind = e.kind or "unexpected"
      setmetatable(e, Error)
    end
    caught = e
    error(e, 0)
  end
  local ok, v = native.step(name, kind or "read", guarded, undo)
  if ok then return v end
  if caught ~= nil then error(caught, 0) end
  error(setmetatable(v, Error), 0)
end

-- Findings and escalations of the script's report.
ops.report = {}
function ops.report.finding(severity, subject, message)
  return call(native.finding, severity, tostring(subject), tostring(message))
end
function ops.report.escalate(e)
  return call(native.escalate, e)
end
function ops.report.dry_run()
  return call(native.dry_run)
end

return ops
