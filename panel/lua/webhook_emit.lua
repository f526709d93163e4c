-- Queues one delivery unless it exists already (the same occurrence emitted twice, by two
-- panels or after a crash, is delivered once), adds it to its webhook's log and trims the
-- log to its bound (the trimmed deliveries are deleted and leave the due set).
-- KEYS[1] delivery hash
-- KEYS[2] due sorted set
-- KEYS[3] the webhook's log sorted set
-- ARGV[1] delivery id
-- ARGV[2] webhook id
-- ARGV[3] event name
-- ARGV[4] event key
-- ARGV[5] data JSON
-- ARGV[6] now (unix ms)
-- ARGV[7] most deliveries a log keeps
-- ARGV[8] key prefix of delivery hashes (same hash tag as KEYS, so one slot)
-- Returns 1 if queued, 0 if the delivery existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1],
  'webhook_id', ARGV[2], 'event', ARGV[3], 'key', ARGV[4], 'data', ARGV[5],
  'status', 'pending', 'attempts', 0, 'claims', 0,
  'created_at', ARGV[6], 'updated_at', ARGV[6], 'since', ARGV[6], 'next_at', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[3], 0, over - 1)
  for _, id in ipairs(old) do
    redis.call('DEL', ARGV[8] .. id)
    redis.call('ZREM', KEYS[2], id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
end
return 1
