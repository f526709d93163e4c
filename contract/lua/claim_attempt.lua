-- Starts one attempt (the runner, once the checks that need no Redis have passed): claims
-- `<job>:<attempt>` in the replay guard, reads the record's cancel flag and, unless the
-- attempt was claimed before or a cancel was asked, moves the record to `running` with its
-- state event — one step, so no cancel can land between the read and `running`.
-- KEYS[1] job hash
-- KEYS[2] job stream
-- KEYS[3] agent replay guard (zset `seen`)
-- ARGV[1] job channel
-- ARGV[2] the replay guard's member, `<job id>:<attempt>`
-- ARGV[3] its score: the envelope's expiry (unix s), by which the guard is pruned
-- ARGV[4] the cancel flag's field name
-- ARGV[5] '1' when this call repeats one whose reply was lost (the runner's own claim is
--         then recognised by the record: this attempt with this started-at)
-- ARGV[6] the `running` event JSON without `seq`, starting with `{`
-- ARGV[7] the attempts field name, ARGV[8] the attempt number
-- ARGV[9] the started-at field name, ARGV[10] this start's started-at (unix ms)
-- ARGV[11..] field/value pairs of the `running` record
-- Returns {0} when the attempt was claimed before (a replay), {1} when it is claimed now but a
-- cancel was asked (nothing written but the claim), {2, seq} when it runs now (seq of its
-- `running` event; 0 when the repeated call finds its own earlier claim).
if redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2]) == 0 then
  if ARGV[5] == '1' then
    local mine = redis.call('HMGET', KEYS[1], ARGV[7], ARGV[9])
    if mine[1] == ARGV[8] and mine[2] == ARGV[10] then
      return {2, 0}
    end
  end
  return {0}
end
if redis.call('HGET', KEYS[1], ARGV[4]) == '1' then return {1} end
return {2, append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[6], argv_from(11))}
