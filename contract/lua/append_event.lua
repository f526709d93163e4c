-- Appends one event to a job: numbers it, stores it in the job's stream, publishes it.
-- KEYS[1] job hash      (holds the last sequence number)
-- KEYS[2] job stream    (entry id `0-<seq>`)
-- ARGV[1] job channel   (pubsub; receives the same JSON)
-- ARGV[2] event JSON without `seq`, starting with `{`
-- ARGV[3..] optional field/value pairs to HSET on the job hash in the same step
-- Returns the sequence number.
return append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[2], argv_from(3))
