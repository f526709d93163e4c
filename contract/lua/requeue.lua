-- Puts a taken job back on the consuming end of its queue (runner recovery): off the
-- processing list, the (possibly re-signed) wire onto the queue, and an optional event.
-- KEYS[1] agent processing list
-- KEYS[2] agent queue   (the runner BLMOVEs from the right, so RPUSH takes it next)
-- KEYS[3] job hash
-- KEYS[4] job stream
-- ARGV[1] the wire to take off the processing list
-- ARGV[2] the wire to queue
-- ARGV[3] job channel
-- ARGV[4] event JSON without `seq`, starting with `{`, or '' for no event
-- ARGV[5..] field/value pairs of the record, set with the event
-- Returns 1.
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[4] ~= '' then
  append_event(KEYS[3], KEYS[4], ARGV[3], ARGV[4], argv_from(5))
end
return 1
