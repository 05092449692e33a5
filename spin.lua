function produce(push) push({}) end
local sink
function handle(job)
  while true do sink = shoal.now() end
end
