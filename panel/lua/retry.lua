-- Retries a finished job: a new attempt, queued again, provided nothing changed since the
-- panel read it (same state, same attempts). Field names come from Rust.
-- KEYS[1] job hash
-- KEYS[2] job stream
-- KEYS[3] agent queue
-- ARGV[1] job channel
-- ARGV[2] `queued` event JSON without `seq`, starting with `{`
-- ARGV[3] new signed job, wire form
-- ARGV[4] state field name
-- ARGV[5] attempts field name
-- ARGV[6] sequence field name
-- ARGV[7] the state the panel saw
-- ARGV[8] the attempts the panel saw
-- ARGV[9] JSON array: field/value pairs of the new attempt
-- Returns {'missing'} | {'changed', state} | {'queued', seq}.
local state = redis.call('HGET', KEYS[1], ARGV[4])
if not state then return {'missing'} end
local attempts = redis.call('HGET', KEYS[1], ARGV[5]) or '0'
if state ~= ARGV[7] or attempts ~= ARGV[8] then return {'changed', state} end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[9])))
local seq = redis.call('HINCRBY', KEYS[1], ARGV[6], 1)
local json = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', json)
redis.call('PUBLISH', ARGV[1], json)
redis.call('LPUSH', KEYS[3], ARGV[3])
return {'queued', tostring(seq)}
