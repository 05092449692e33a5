-- The benchmark's job, for shoal: fetch a page and count the links in it,
-- exactly what bench/wrk_links.lua does inside wrk's response().
local base = shoal.args[1]
local total = tonumber(shoal.args[2])
local pages = tonumber(shoal.args[3] or "2000")

function produce(push)
  for n = 0, total - 1 do push({ url = base .. "/p" .. (n % pages) .. ".html" }) end
end

local links = 0
-- the same request wrk sends: no Accept-Encoding (shoal asks for
-- compression by default, which real crawls want)
local plain = { compressed = false }
function handle(job)
  local res, err = shoal.http.get(job.url, plain)
  if not res then error(err) end
  for _ in res.body:gmatch('href="([^"]+)"') do links = links + 1 end
end
