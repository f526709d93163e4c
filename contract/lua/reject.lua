-- Files a refused job (runner checks): always on the agent's rejected stream and off the
-- processing list; on the job's record, with a state event, only when the runner decided the
-- refusal may touch it (then KEYS[3] and KEYS[4] are given).
-- KEYS[1] agent processing list
-- KEYS[2] agent rejected stream
-- KEYS[3] job hash      (optional)
-- KEYS[4] job stream    (optional)
-- ARGV[1] the refused wire
-- ARGV[2] job id hint for the rejected stream ('' when unknown)
-- ARGV[3] reason
-- ARGV[4] approximate length the rejected stream is trimmed to
-- ARGV[5] job channel   (with KEYS[3])
-- ARGV[6] state event JSON without `seq`, starting with `{` (with KEYS[3])
-- ARGV[7..] field/value pairs of the record (with KEYS[3])
-- Returns 1.
if #KEYS == 4 then
  append_event(KEYS[3], KEYS[4], ARGV[5], ARGV[6], argv_from(7))
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'job_id', ARGV[2], 'reason', ARGV[3])
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
