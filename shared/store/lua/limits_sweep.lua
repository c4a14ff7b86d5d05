-- limits_sweep: the scheduler's pass over one queue's concurrency limits: slots whose
-- lease ran out (their worker died) are dropped and held jobs start in the free ones, so a
-- held job never waits for a slot that only a lease expiry frees (_limits.lua).
-- KEYS: the 11 queue keys.
-- ARGV: none.
-- Returns the number of held jobs moved back onto the stream.
local bad_type = wrong_key_type()
if bad_type then return bad_type end
return limits_sweep(now_ms())
