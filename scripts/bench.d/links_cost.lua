-- crawl.links over the pages of gen_site.py, ROUNDS times each, at the
-- script's top level, so that `shoal check` runs it in one state without a
-- network: the instructions per page are the difference between two runs
-- under callgrind, divided by the pages read in between.
--
--   python3 scripts/bench.d/gen_site.py /tmp/site 2000
--   for r in 0 5; do
--     SHOAL_LINKS_SITE=/tmp/site SHOAL_LINKS_ROUNDS=$r valgrind --tool=callgrind \
--       build/shoal check scripts/bench.d/links_cost.lua --hook-timeout 600
--   done   # (Ir(5) - Ir(0)) / (5 * 2000) per page
local crawl = require "shoal.crawl"
local site = os.getenv("SHOAL_LINKS_SITE") or "/tmp/site"
local rounds = tonumber(os.getenv("SHOAL_LINKS_ROUNDS") or "1")
local pages = {}
for i = 0, 1999 do
  local f = assert(io.open(site .. "/p" .. i .. ".html", "rb"))
  pages[#pages + 1] = f:read("*a")
  f:close()
end
local total = 0
for _ = 1, rounds do
  for i = 1, #pages do
    total = total + #crawl.links(pages[i], "http://127.0.0.1:8080/p" .. (i - 1) .. ".html")
  end
end
print("links", total)
function produce() end
function handle() end
