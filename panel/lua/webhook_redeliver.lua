-- Queues a delivery again now, with a fresh attempt count and a fresh retry window. The
-- claim counter goes on, so an attempt still in flight from before cannot record over it.
-- KEYS[1] due sorted set
-- KEYS[2] delivery hash
-- ARGV[1] delivery id
-- ARGV[2] now (unix ms)
-- Returns 1, or 0 if there is no such delivery.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'claims', 1)
redis.call('HSET', KEYS[2], 'status', 'pending', 'attempts', 0, 'since', ARGV[2],
  'updated_at', ARGV[2], 'next_at', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
