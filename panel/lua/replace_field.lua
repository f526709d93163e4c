-- Replaces or deletes one hash field, but only if it still holds the value the caller read
-- (compare-and-swap): the heartbeat recorder, a key rotation and a removal all rewrite an
-- agent's registration, and none may undo another's change.
-- KEYS[1] hash
-- ARGV[1] field
-- ARGV[2] the value the caller read, or '' for a field the caller found absent
-- ARGV[3] the new value, or '' to delete the field
-- Returns 1 if it wrote, 0 if the field changed or vanished meanwhile (nothing written).
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == false then current = '' end
if current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
