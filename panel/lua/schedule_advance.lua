-- Moves a schedule past one due time, records that due time's run, and re-indexes it —
-- but only if the schedule is still at that due time (compare-and-swap). Every panel's tick
-- runs the same due time with the same idempotency key; the one whose advance lands records
-- the run, the others find the schedule moved on and record nothing.
-- KEYS[1] schedule hash (`next_due`, `last`)
-- KEYS[2] schedule runs list (JSON, oldest first)
-- KEYS[3] due index (sorted set: schedule id scored by next due, unix ms)
-- ARGV[1] schedule id
-- ARGV[2] the next due time the caller read (unix ms, as stored)
-- ARGV[3] the new next due time (unix ms), or '' when the expression fires no more
-- ARGV[4] the run JSON
-- ARGV[5] how many runs to keep
-- Returns 1 if it advanced, 0 if the schedule moved on, was paused or deleted meanwhile.
if redis.call('HGET', KEYS[1], 'next_due') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'next_due', ARGV[3], 'last', ARGV[4])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
return 1
