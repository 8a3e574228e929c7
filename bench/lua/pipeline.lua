-- wrk script: every write carries DEPTH GET requests back to back (HTTP/1.1 pipelining).
-- usage: wrk -s pipeline.lua URL -- DEPTH      (bench/run.py passes 16)
function init(args)
  local depth = tonumber(args[1]) or 16
  local one = wrk.format("GET", wrk.path)
  batch = string.rep(one, depth)
end

function request()
  return batch
end
