-- Claims one due delivery for one attempt: moves its due time to the end of a lease (so no
-- other panel takes it meanwhile, and it is due again if this panel dies mid-attempt) and
-- counts the attempt.
-- KEYS[1] due sorted set
-- KEYS[2] delivery hash
-- ARGV[1] delivery id
-- ARGV[2] now (unix ms)
-- ARGV[3] end of the lease (unix ms)
-- Returns {claim token, attempt} or false if it is not due (someone else claimed it, or it
-- is gone).
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local claim = redis.call('HINCRBY', KEYS[2], 'claims', 1)
local attempt = redis.call('HINCRBY', KEYS[2], 'attempts', 1)
redis.call('HSET', KEYS[2], 'updated_at', ARGV[2], 'next_at', ARGV[3])
return {claim, attempt}
