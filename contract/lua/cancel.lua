-- Cancels a job (the panel): marks it, and if the runner has not taken it yet (still in the queue, or
-- waiting as a scheduled retry), ends it `canceled` here; otherwise asks the runner over
-- the control channel. Field names come from Rust; none is spelled here.
-- KEYS[1] job hash
-- KEYS[2] job stream
-- KEYS[3] agent queue
-- KEYS[4] agent scheduled retries (zset)
-- ARGV[1] job channel
-- ARGV[2] `canceled` event JSON without `seq`, starting with `{`
-- ARGV[3] control channel
-- ARGV[4] control message JSON
-- ARGV[5] state field name
-- ARGV[6] signed-job field name
-- ARGV[7] JSON array: states in which a job can no longer be canceled
-- ARGV[8] JSON array: field/value pairs marking the request (set in every case)
-- ARGV[9] JSON array: field/value pairs set when the job ends here (`job::write::terminal`)
-- ARGV[10] '1': end the job only if it still waits; a started job is left alone (no mark,
--          no request to the runner) and {'started', state} is returned
-- Returns {'missing'} | {'final', state} | {'canceled', seq} | {'requested'} | {'started', state}.
local state = redis.call('HGET', KEYS[1], ARGV[5])
if not state then return {'missing'} end
for _, final in ipairs(cjson.decode(ARGV[7])) do
  if state == final then return {'final', state} end
end
local wire = redis.call('HGET', KEYS[1], ARGV[6])
local removed = 0
if wire then
  removed = redis.call('LREM', KEYS[3], 0, wire) + redis.call('ZREM', KEYS[4], wire)
end
if removed > 0 then
  redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[8])))
  local seq = append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[2], cjson.decode(ARGV[9]))
  return {'canceled', tostring(seq)}
end
if ARGV[10] == '1' then return {'started', state} end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[8])))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {'requested'}
