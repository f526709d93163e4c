-- Applies the result of one attempt (the runner's outbox): the state event with the record's
-- fields, the retry in the scheduled set, and the job off the processing list. Applying it
-- again (a crash between this and deleting the outbox file) only repeats the LREM.
-- KEYS[1] job hash
-- KEYS[2] job stream
-- KEYS[3] agent processing list
-- KEYS[4] agent scheduled retries (zset)
-- ARGV[1] job channel
-- ARGV[2] state event JSON without `seq`, starting with `{`
-- ARGV[3] the wire to take off the processing list
-- ARGV[4] finished-at field name
-- ARGV[5] this result's finished-at: the record already holding it means applied before
-- ARGV[6] the next attempt's wire to schedule, or '' for none
-- ARGV[7] its due time (unix ms), ignored without a wire
-- ARGV[8..] field/value pairs of the record
-- Returns 1 when applied now, 0 when it had been applied before.
local applied = redis.call('HGET', KEYS[1], ARGV[4]) == ARGV[5]
if not applied then
  append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[2], argv_from(8))
  if ARGV[6] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6]) end
end
redis.call('LREM', KEYS[3], 1, ARGV[3])
if applied then return 0 end
return 1
