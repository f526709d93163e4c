//! Throttling of failed authentication (sign-in and bearer tokens), per client address.
//!
//! Each failure takes one cell from the address's GCRA bucket (`governor`): `burst` failures
//! at once, then one more per `refill`. Once a failure is refused, the address is blocked
//! until the bucket has a cell again, and a blocked address is refused BEFORE its token is
//! looked at — otherwise a guess would still tell success from failure at full speed.
//! Successes cost nothing, so a busy API client with a valid token is never slowed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpMessage, HttpRequest};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, Code};

/// Addresses tracked before stale ones are swept.
const SWEEP_AT: usize = 10_000;

/// How long a refused client should wait; the HTTP layer turns it into `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up (a client retrying at once after `0` would be refused).
    pub fn secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }

    /// The refusal: notes the wait on the request (for the header) and builds the 429.
    pub fn refuse(self, req: &HttpRequest) -> ApiError {
        req.extensions_mut().insert(self);
        ApiError::new(
            Code::TooManyRequests,
            format!(
                "too many failed sign-ins or invalid tokens from this address; retry in {} s",
                self.secs()
            ),
        )
    }
}

/// Failed-authentication limiter of one panel process.
#[derive(Debug)]
pub struct Throttle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Throttle {
    /// `burst` failures at once (at least 1), then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        let quota = Quota::with_period(refill.max(Duration::from_millis(1)))
            .expect("the period is positive")
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"));
        Self {
            limiter: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses an address that is blocked; call before checking its credentials.
    pub fn check(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match blocked.get(&ip) {
            Some(until) if *until > now => Err(RetryAfter(*until - now)),
            Some(_) => {
                blocked.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one failure; refused (and blocked) once the address used up its bucket.
    pub fn failed(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        if self.limiter.len() > SWEEP_AT {
            self.limiter.retain_recent();
        }
        let Err(not_until) = self.limiter.check_key(&ip) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(self.limiter.clock().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() > SWEEP_AT {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(ip, Instant::now() + wait);
        Err(RetryAfter(wait))
    }
}

/// The address a request is throttled by: the TCP peer (a forwarded-for header can be
/// forged). An IPv6 peer counts by its /64, which one host can fill with addresses at will.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    throttle_key(
        req.peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
    )
}

fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_blocks_only_that_address() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
            assert!(t.failed(a).is_ok());
        }
        let wait = t.failed(a).unwrap_err();
        assert!(wait.secs() > 0 && wait.secs() <= 60, "{wait:?}");
        assert!(
            t.check(a).is_err(),
            "blocked before the credentials are looked at"
        );
        assert!(t.check(b).is_ok() && t.failed(b).is_ok());
    }

    #[test]
    fn ipv6_peers_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle_key(a), throttle_key(b));
        assert_ne!(throttle_key(a), throttle_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(throttle_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn the_block_ends_when_the_bucket_refills() {
        let t = Throttle::new(1, Duration::from_millis(50));
        let ip = IpAddr::from([10, 0, 0, 3]);
        assert!(t.failed(ip).is_ok());
        assert!(t.failed(ip).is_err());
        std::thread::sleep(Duration::from_millis(80));
        assert!(t.check(ip).is_ok());
        assert!(t.failed(ip).is_ok());
    }
}
