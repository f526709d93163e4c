-- Appends one event to a job: numbers it, stores it in the job's stream, publishes it.
-- KEYS[1] job hash      (field `seq` holds the last sequence number)
-- KEYS[2] job stream    (entry id `0-<seq>`, field `e` holds the event JSON)
-- ARGV[1] job channel   (pubsub; receives the same JSON)
-- ARGV[2] event JSON without `seq`, starting with `{`
-- ARGV[3..] optional field/value pairs to HSET on the job hash in the same step
-- Returns the sequence number.
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local body = ARGV[2]
local json = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', json)
if #ARGV > 2 then
  local pairs = {}
  for i = 3, #ARGV do pairs[#pairs + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(pairs))
end
redis.call('PUBLISH', ARGV[1], json)
return seq
