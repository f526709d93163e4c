-- Retries a finished job (the panel, for a person): a new attempt, queued again, provided
-- nothing changed since the panel read it (same state, same attempts). Field names come
-- from Rust (`job::write::queued`).
-- KEYS[1] job hash
-- KEYS[2] job stream
-- KEYS[3] agent queue
-- ARGV[1] job channel
-- ARGV[2] `queued` event JSON without `seq`, starting with `{`
-- ARGV[3] new signed job, wire form
-- ARGV[4] state field name
-- ARGV[5] attempts field name
-- ARGV[6] the state the panel saw
-- ARGV[7] the attempts the panel saw
-- ARGV[8] JSON array: field/value pairs of the new attempt
-- Returns {'missing'} | {'changed', state} | {'queued', seq}.
local state = redis.call('HGET', KEYS[1], ARGV[4])
if not state then return {'missing'} end
local attempts = redis.call('HGET', KEYS[1], ARGV[5]) or '0'
if state ~= ARGV[6] or attempts ~= ARGV[7] then return {'changed', state} end
local seq = append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[2], cjson.decode(ARGV[8]))
redis.call('LPUSH', KEYS[3], ARGV[3])
return {'queued', tostring(seq)}
