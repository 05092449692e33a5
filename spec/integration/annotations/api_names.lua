-- Prints the name of every function a script can reach through the real
-- `shoal` module, one "api NAME" line each, for test_annotations.sh to
-- compare with lua/types/. Run with `shoal check`, so the module is the one
-- a worker's state has. Names: shoal.http.get (module functions, found
-- by walking the tables), shoal.crawl.links (require "shoal.crawl"),
-- shoal.html.Node:text (methods of shoal.html's documents and nodes),
-- shoal.Counter:inc (methods of metric handles, as the engine accepts them
-- for each kind).

local names = {}

local function walk(t, prefix, seen)
  if seen[t] then return end
  seen[t] = true
  for k, v in pairs(t) do
    if type(k) == "string" then
      local name = prefix .. "." .. k
      if type(v) == "function" then
        names[#names + 1] = name
      elseif type(v) == "table" then
        walk(v, name, seen)
      end
    end
  end
end

walk(shoal, "shoal", {})
walk(require "shoal.crawl", "shoal.crawl", {})

-- shoal.html's documents and nodes keep their methods in their metatables
local doc = shoal.html.parse("<p>x</p>")
local html_classes = { ["shoal.html.Document"] = doc, ["shoal.html.Node"] = doc:first("p") }
for class, v in pairs(html_classes) do
  for method, fn in pairs(getmetatable(v).__index) do
    if type(fn) == "function" then names[#names + 1] = class .. ":" .. method end
  end
end

-- A handle has one metatable whatever its kind; a method belongs to a kind
-- when the engine does not turn it away for that kind. Other errors mean
-- this probe no longer matches the API: say so rather than guess.
local probe_args = { inc = {}, dec = {}, set = { 1 }, observe = { 1 } }
local kinds = { counter = "shoal.Counter", gauge = "shoal.Gauge", histogram = "shoal.Histogram" }
for kind, class in pairs(kinds) do
  local h = shoal.metrics[kind]("annotations_probe_" .. kind .. (kind == "counter" and "_total" or ""), "probe")
  for method, fn in pairs(getmetatable(h).__index) do
    if type(fn) == "function" then
      local args = probe_args[method]
      if not args then
        error("api_names.lua: metric method " .. method .. " is new: teach probe_args its arguments")
      end
      local ok, err = pcall(fn, h, unpack(args))
      if ok then
        names[#names + 1] = class .. ":" .. method
      elseif not (tostring(err):find("is for ", 1, true) or
                  tostring(err):find("this metric is a ", 1, true)) then
        error("api_names.lua: " .. kind .. ":" .. method .. " raised: " .. tostring(err))
      end
    end
  end
end

table.sort(names)
for _, n in ipairs(names) do print("api " .. n) end

function handle() end
