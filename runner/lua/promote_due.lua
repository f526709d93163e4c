-- Moves retries that are due from the scheduled set to the consuming end of the queue.
-- KEYS[1] scheduled zset  (member = signed wire, score = due time in unix ms)
-- KEYS[2] queue list      (the runner BLMOVEs from the right, so RPUSH runs it next)
-- ARGV[1] now, unix ms
-- ARGV[2] most members to move
-- Returns the number moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, wire in ipairs(due) do
  redis.call('ZREM', KEYS[1], wire)
  redis.call('RPUSH', KEYS[2], wire)
end
return #due
