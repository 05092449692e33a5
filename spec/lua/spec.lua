-- spec.lua: what the Lua specs (spec/lua/test_*.lua) share: where the
-- repository is, the checks and their counts, and loading a module of
-- lua/shoal/ where new globals are refused ("no globals" is part of every
-- module's contract: a run's states share their _G with the user's script).
--
--   package.path = <this folder> .. "/?.lua;" .. package.path
--   local spec = require "spec"
--   local crawl = spec.load("crawl")
--   spec.eq(crawl.host("http://a/"), "a", "host")
--   ...
--   spec.finish()   -- prints "N passed, N failed"; exits 1 if any failed
--
-- The root is the spec's first argument, or SHOAL_ROOT, or found from the
-- spec's own path.

local M = { passed = 0, failed = 0 }

local root = arg and arg[1] or os.getenv("SHOAL_ROOT")
if not root or root == "" then
  local here = arg and arg[0] and arg[0]:match("^(.*)/spec/lua/[^/]*$")
  root = here or "."
end
M.root = root
package.path = root .. "/lua/?.lua;" .. package.path

function M.show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = M.show(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

function M.ok(cond, name, detail)
  if cond then
    M.passed = M.passed + 1
  else
    M.failed = M.failed + 1
    print("FAIL " .. name .. (detail and (": " .. detail) or ""))
  end
end

function M.eq(got, want, name)
  M.ok(got == want, name, "got " .. M.show(got) .. ", want " .. M.show(want))
end

function M.same_list(got, want, name)
  local same = type(got) == "table" and #got == #want
  if same then
    for i = 1, #want do
      if got[i] ~= want[i] then same = false end
    end
  end
  M.ok(same, name, "got " .. M.show(got) .. ", want " .. M.show(want))
end

-- A group that raises counts as one failure and the run goes on.
function M.group(name, fn)
  local good, err = pcall(fn)
  if not good then M.ok(false, name .. " raised", tostring(err)) end
end

local function give_up(msg)
  print("FAIL " .. msg)
  print("0 passed, 1 failed")
  os.exit(1)
end

-- lua/shoal/NAME.lua, loaded where new globals raise, as shoal.NAME.
function M.load(name)
  local path = root .. "/lua/shoal/" .. name .. ".lua"
  local chunk, err = loadfile(path)
  if not chunk then give_up("cannot load " .. path .. ": " .. tostring(err)) end
  setfenv(chunk, setmetatable({}, {
    __index = _G,
    __newindex = function(_, k)
      error(name .. ".lua assigned the global '" .. tostring(k) .. "'", 2)
    end,
  }))
  local loaded, mod = pcall(chunk, "shoal." .. name)
  if not loaded or type(mod) ~= "table" then
    give_up("loading " .. name .. ".lua: " .. tostring(mod))
  end
  package.loaded["shoal." .. name] = mod
  return mod
end

function M.finish()
  print(string.format("%d passed, %d failed", M.passed, M.failed))
  if M.failed > 0 then os.exit(1) end
end

return M
