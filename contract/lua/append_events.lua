-- Appends a batch of events of one job in one step (the runner's event writer): each is
-- numbered, stored and published in order, with its own record fields.
-- KEYS[1] job hash
-- KEYS[2] job stream
-- ARGV[1] job channel
-- ARGV[2..] per event, in order: the event JSON without `seq` (starting with `{`), the number
--           n of field/value pairs that follow, then those 2n strings
-- Returns the sequence numbers the events got, in order.
local seqs = {}
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  local fields = {}
  for j = i + 2, i + 1 + 2 * n do fields[#fields + 1] = ARGV[j] end
  seqs[#seqs + 1] = append_event(KEYS[1], KEYS[2], ARGV[1], ARGV[i], fields)
  i = i + 2 + 2 * n
end
return seqs
