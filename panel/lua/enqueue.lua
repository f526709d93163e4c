-- Enqueues a new job in one step: the record, its first event, the queue push.
-- Field names come from Rust (outfitter_contract::job::field); none is spelled here.
-- KEYS[1] job hash      (must not exist yet)
-- KEYS[2] job stream    (events; entry id `0-<seq>`, field `e`)
-- KEYS[3] agent queue   (list; the runner BLMOVEs from the right)
-- ARGV[1] job channel   (pubsub; receives the event JSON)
-- ARGV[2] `queued` event JSON without `seq`, starting with `{`
-- ARGV[3] signed job, wire form (pushed onto the queue)
-- ARGV[4] name of the sequence field of the job hash
-- ARGV[5..] field/value pairs of the record
-- Returns the event's sequence number (1), or 0 and writes nothing if the job exists
-- (another request with the same Idempotency-Key wrote it first).
-- Numbering is the same as contract/lua/append_event.lua (a test checks they agree).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local seq = redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
local json = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', json)
redis.call('PUBLISH', ARGV[1], json)
redis.call('LPUSH', KEYS[3], ARGV[3])
return seq
