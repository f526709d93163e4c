-- A runner's heartbeat: its host facts under a key with a TTL, and, when the heartbeat
-- carries a sample, that sample added to the server's history. The history is three capped
-- streams whose entry ids are the sample's unix milliseconds: raw samples, and averages over
-- two bucket widths, each trimmed to its age here (MINID) and to a count cap, so it never
-- grows past its bound whatever a runner sends. A bucket's average is written when the first
-- sample of a later bucket arrives.
-- KEYS[1] agent heartbeat string
-- KEYS[2] raw samples stream
-- KEYS[3] first averages stream
-- KEYS[4] second averages stream
-- KEYS[5] accumulator hash (per averages tier: bucket start, count, sums)
-- ARGV[1] host facts JSON
-- ARGV[2] heartbeat TTL, seconds
-- ARGV[3] the sample's unix milliseconds
-- ARGV[4] raw: age kept, ms
-- ARGV[5] raw: most entries kept
-- ARGV[6] first averages: bucket width, ms
-- ARGV[7] first averages: age kept, ms
-- ARGV[8] first averages: most entries kept
-- ARGV[9] second averages: bucket width, ms
-- ARGV[10] second averages: age kept, ms
-- ARGV[11] second averages: most entries kept
-- ARGV[12..] the sample: field/value pairs, values non-negative integers (none: facts only)
-- Returns 1 when the sample was stored, 0 when there was none or it was older than the last
-- one stored (a clock set back), or an error naming the first bad value.
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if #ARGV < 13 then
  return 0
end
local ts = tonumber(ARGV[3])
if not ts or ts ~= ts or ts < 0 or ts % 1 ~= 0 then
  return redis.error_reply('ERR sample time ' .. ARGV[3] .. ' must be unix milliseconds')
end
local names, values = {}, {}
for i = 12, #ARGV - 1, 2 do
  local v = tonumber(ARGV[i + 1])
  if not v or v ~= v or v < 0 or v % 1 ~= 0 or v > 9007199254740992 then
    return redis.error_reply('ERR sample value ' .. ARGV[i] .. ' must be a non-negative integer')
  end
  names[#names + 1] = ARGV[i]
  values[#values + 1] = v
end

local function add(stream, id_ms, fields, keep_ms, cap)
  local ok = redis.pcall('XADD', stream, id_ms .. '-*', unpack(fields))
  if type(ok) == 'table' and ok.err then
    return false
  end
  redis.call('XTRIM', stream, 'MINID', tostring(id_ms - tonumber(keep_ms)))
  if redis.call('XLEN', stream) > tonumber(cap) then
    redis.call('XTRIM', stream, 'MAXLEN', cap)
  end
  return true
end

local raw = {}
for i = 1, #names do
  raw[#raw + 1] = names[i]
  raw[#raw + 1] = string.format('%d', values[i])
end
if not add(KEYS[2], ts, raw, ARGV[4], ARGV[5]) then
  return 0
end

local tiers = {
  { 'a', KEYS[3], tonumber(ARGV[6]), ARGV[7], ARGV[8] },
  { 'b', KEYS[4], tonumber(ARGV[9]), ARGV[10], ARGV[11] },
}
for _, t in ipairs(tiers) do
  local tag, stream, width = t[1], t[2], t[3]
  local bucket = ts - ts % width
  local want = { tag .. ':start', tag .. ':n' }
  for i = 1, #names do
    want[#want + 1] = tag .. ':' .. names[i]
  end
  local held = redis.call('HMGET', KEYS[5], unpack(want))
  local start, n = tonumber(held[1]), tonumber(held[2]) or 0
  if start ~= bucket then
    if start and n > 0 and start < bucket then
      local avg = {}
      for i = 1, #names do
        avg[#avg + 1] = names[i]
        avg[#avg + 1] = string.format('%d', math.floor((tonumber(held[i + 2]) or 0) / n + 0.5))
      end
      add(stream, start, avg, t[4], t[5])
    end
    local reset = { tag .. ':start', bucket, tag .. ':n', 0 }
    for i = 1, #names do
      reset[#reset + 1] = tag .. ':' .. names[i]
      reset[#reset + 1] = 0
    end
    redis.call('HSET', KEYS[5], unpack(reset))
  end
  redis.call('HINCRBY', KEYS[5], tag .. ':n', 1)
  for i = 1, #names do
    redis.call('HINCRBY', KEYS[5], tag .. ':' .. names[i], values[i])
  end
end
return 1
