-- Enqueues a new job in one step: the record, its first event, the queue push.
-- Field names come from Rust (`job::write::created`); none is spelled here.
-- KEYS[1] job hash      (must not exist yet)
-- KEYS[2] job stream
-- KEYS[3] agent queue   (list; the runner BLMOVEs from the right)
-- ARGV[1] job channel   (pubsub; receives the event JSON)
-- ARGV[2] `queued` event JSON without `seq`, starting with `{`
-- ARGV[3] signed job, wire form (pushed onto the queue)
-- ARGV[4..] field/value pairs of the record
-- Returns the event's sequence number (1), or 0 and writes nothing if the job exists
-- (another request with the same Idempotency-Key wrote it first).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local seq = append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[2], argv_from(4))
redis.call('LPUSH', KEYS[3], ARGV[3])
return seq
