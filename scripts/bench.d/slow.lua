-- One request per job to a server that answers slowly: with enough jobs and
-- concurrency, this many requests are in flight at once.
local url = shoal.args[1]
local total = tonumber(shoal.args[2])
function produce(push)
  for n = 1, total do push({ n = n }) end
end
function handle(job)
  local res, err = shoal.http.get(url)
  if not res then error(err) end
  if res.status ~= 200 then error("status " .. res.status) end
end
