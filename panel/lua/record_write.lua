-- Writes a record (an installation, a rollout) if it still has the revision the caller read
-- (compare-and-swap), and appends a history entry in the same step: a stale form, two
-- actions at once or two panels settling the same job can never overwrite each other.
-- KEYS[1] the record's hash (fields `data`, `rev`)
-- KEYS[2] the record's history list
-- ARGV[1] the revision the caller read ('0' for a new record)
-- ARGV[2] the new `data` JSON
-- ARGV[3] a history entry JSON, or '' for none
-- Returns the new revision, or 0 if the revision changed meanwhile (nothing written).
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'rev', rev + 1)
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
return rev + 1
