-- The benchmark's job, for wrk: the same pages in the same order, and the
-- same link scan over each body as bench/links.lua does in shoal.
local pages = tonumber(os.getenv("BENCH_PAGES") or "2000")
local paths = {}
for i = 0, pages - 1 do paths[#paths + 1] = "/p" .. i .. ".html" end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
local links = 0
response = function(status, headers, body)
  for _ in body:gmatch('href="([^"]+)"') do links = links + 1 end
end
