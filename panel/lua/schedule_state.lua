-- Pauses or resumes a schedule: its `paused` flag, its next due time and its place in the
-- due index together, and only if the schedule exists (a pause racing a delete must not
-- bring the record back).
-- KEYS[1] schedule hash
-- KEYS[2] due index (sorted set: schedule id scored by next due, unix ms)
-- ARGV[1] schedule id
-- ARGV[2] '1' to pause, '0' to resume
-- ARGV[3] the next due time (unix ms) when resuming, '' when pausing
-- Returns 1 if it wrote, 0 if there is no such schedule.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'paused', ARGV[2], 'next_due', ARGV[3])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
