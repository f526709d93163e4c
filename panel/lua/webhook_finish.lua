-- Records the end of one attempt, if the attempt still holds the delivery (its claim is the
-- latest; a lease that ran out and was claimed again by another panel wins).
-- KEYS[1] due sorted set
-- KEYS[2] delivery hash
-- ARGV[1] delivery id
-- ARGV[2] claim token from webhook_claim.lua
-- ARGV[3] new status: delivered, pending (retry at ARGV[5]) or failed
-- ARGV[4] now (unix ms)
-- ARGV[5] next attempt's due time (unix ms; pending only)
-- ARGV[6] HTTP status code, or '' if there was no answer
-- ARGV[7] error text, or ''
-- Returns 1 if recorded, 0 if the claim was stale.
if redis.call('HGET', KEYS[2], 'claims') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'status', ARGV[3], 'updated_at', ARGV[4],
  'last_code', ARGV[6], 'last_error', ARGV[7])
if ARGV[3] == 'pending' then
  redis.call('HSET', KEYS[2], 'next_at', ARGV[5])
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
else
  redis.call('HDEL', KEYS[2], 'next_at')
  redis.call('ZREM', KEYS[1], ARGV[1])
  if ARGV[3] == 'delivered' then
    redis.call('HSET', KEYS[2], 'delivered_at', ARGV[4])
  end
end
return 1
