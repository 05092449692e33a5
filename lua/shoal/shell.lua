-- shell.lua: the script `shoal shell [URL]` runs: a Lua prompt in a worker
-- state, to try a selector or a pattern on a page before it goes into a
-- script.
--
--   res          the response last fetched (status, body, headers, url, elapsed)
--   doc          res.body parsed by shoal.html, when that module is there
--   fetch(url)   fetches another page into res and doc
--   crawl        require "shoal.crawl"
--
-- An expression prints its values; a statement runs. Everything of the
-- shoal module works (shoal.http, shoal.json, shoal.log, ...). Ctrl-D leaves.

local io_ = require "shoal.shell_io"
local crawl = require "shoal.crawl"

function produce(push)
  push({ url = shoal.args[1] or false })
end

-- A value, readable: tables one level deep, keys sorted, long strings cut.
local function show(v)
  if type(v) == "string" then
    if #v > 400 then v = v:sub(1, 400) .. ("... (%d bytes)"):format(#v) end
    return string.format("%q", v)
  end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > 30 then
      parts[#parts + 1] = ("... (%d keys)"):format(#keys)
      break
    end
    local x = v[k]
    local shown = type(x) == "table" and "{...}" or show(x)
    if #shown > 80 then shown = shown:sub(1, 77) .. "..." end
    parts[#parts + 1] = (type(k) == "string" and k or "[" .. tostring(k) .. "]") .. " = " .. shown
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

function handle(job)
  local env = setmetatable({ crawl = crawl }, { __index = _G })
  function env.fetch(url)
    local res, err = shoal.http.get(url)
    if not res then
      print("fetch " .. tostring(url) .. " failed: " .. tostring(err))
      return nil, err
    end
    env.res = res
    env.doc = shoal.html and shoal.html.parse(res.body, res.url) or nil
    print(("%d %s, %d bytes, %.1f ms"):format(res.status, res.url, #res.body,
                                              res.elapsed * 1000))
    return res
  end
  if job.url then env.fetch(job.url) end
  print("shoal shell: Lua with res, doc" .. (shoal.html and "" or " (no shoal.html yet)")
    .. ", fetch(url) and crawl; Ctrl-D leaves")
  while true do
    local line = io_.readline("shoal> ")
    if not line then break end
    if line:find("%S") then
      io_.add_history(line)
      -- an expression first, so that its values print; else a statement
      local chunk, err = loadstring("return " .. line, "=shell")
      if not chunk then chunk, err = loadstring(line, "=shell") end
      if not chunk then
        print(err)
      else
        setfenv(chunk, env)
        local out = { pcall(chunk) }
        if not out[1] then
          print("error: " .. tostring(out[2]))
        else
          for i = 2, table.maxn(out) do print(show(out[i])) end
        end
      end
    end
  end
  print("")
end
