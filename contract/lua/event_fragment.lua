-- Shared by every script that appends a job event: contract/src/scripts.rs joins it in front
-- of each one at compile time, so numbering, storing and publishing an event is written once.
-- The two names below are spelled nowhere else in Lua; a test in contract/src/scripts.rs holds
-- them equal to `job::field::SEQ` and `scripts::EVENT_FIELD`.
-- KEYS, ARGV: none of its own (each script's header names what it passes in).
local SEQ_FIELD = 'seq'
local EVENT_FIELD = 'e'

-- ARGV[from..#ARGV] as a table (empty when from > #ARGV).
local function argv_from(from)
  local t = {}
  for i = from, #ARGV do t[#t + 1] = ARGV[i] end
  return t
end

-- Appends one event to a job: takes the next sequence number from the job hash, HSETs
-- `fields` (a flat field/value table, may be empty) on it, stores the event as stream entry
-- `0-<seq>` and publishes the same JSON. `body` is the event JSON without `seq`, starting
-- with `{`. Returns the sequence number.
local function append_event(job, stream, channel, body, fields)
  local seq = redis.call('HINCRBY', job, SEQ_FIELD, 1)
  local json = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
  redis.call('XADD', stream, '0-' .. seq, EVENT_FIELD, json)
  if #fields > 0 then redis.call('HSET', job, unpack(fields)) end
  redis.call('PUBLISH', channel, json)
  return seq
end

