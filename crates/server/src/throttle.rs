//! Failed-login throttling per account and per client address.
//!
//! Failures beyond a free allowance lock the key for a doubling delay (capped). Successful
//! logins are never slowed; a locked key refuses even the right password until it unlocks,
//! and unknown usernames are throttled exactly like known ones, so the answer never tells
//! whether an account exists.
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub free_failures: u32,
    pub max_lock_seconds: i64,
    /// Entries idle this long are forgotten.
    pub forget_after: i64,
}

pub const ACCOUNT_LIMITS: Limits = Limits {
    free_failures: 5,
    max_lock_seconds: 15 * 60,
    forget_after: 24 * 3600,
};
/// Addresses can be shared (NAT), so they get a larger allowance.
pub const ADDRESS_LIMITS: Limits = Limits {
    free_failures: 20,
    max_lock_seconds: 15 * 60,
    forget_after: 24 * 3600,
};
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: i64,
    last_failure: i64,
    limits: Limits,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

pub fn account_key(username: &str) -> String {
    format!("account:{}", username.trim().to_lowercase())
}

pub fn address_key(ip: std::net::IpAddr) -> String {
    format!("address:{ip}")
}

impl LoginThrottle {
    /// `Err(seconds)` to wait when any of the keys is locked.
    pub fn check(&self, keys: &[&str], now: i64) -> Result<(), i64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(*k))
            .map(|e| e.locked_until - now)
            .max()
            .unwrap_or(0);
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn record_failure(&self, keys: &[(&str, Limits)], now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| {
                now - e.last_failure < e.limits.forget_after && e.locked_until > now
            });
        }
        for (key, limits) in keys {
            let e = entries.entry((*key).to_owned()).or_insert(Entry {
                failures: 0,
                locked_until: 0,
                last_failure: now,
                limits: *limits,
            });
            if now - e.last_failure >= limits.forget_after {
                e.failures = 0;
            }
            e.failures += 1;
            e.last_failure = now;
            if e.failures > limits.free_failures {
                let exponent = (e.failures - limits.free_failures - 1).min(20);
                e.locked_until = now + (1i64 << exponent).min(limits.max_lock_seconds);
            }
        }
    }

    pub fn record_success(&self, account: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_with_doubling_delay() {
        let t = LoginThrottle::default();
        let k = account_key("Alice");
        assert_eq!(k, "account:alice");
        for _ in 0..5 {
            t.record_failure(&[(&k, ACCOUNT_LIMITS)], 100);
            assert_eq!(t.check(&[&k], 100), Ok(()));
        }
        t.record_failure(&[(&k, ACCOUNT_LIMITS)], 100);
        assert_eq!(t.check(&[&k], 100), Err(1));
        assert_eq!(t.check(&[&k], 101), Ok(()));
        t.record_failure(&[(&k, ACCOUNT_LIMITS)], 101);
        assert_eq!(t.check(&[&k], 101), Err(2));
        t.record_success(&k);
        assert_eq!(t.check(&[&k], 101), Ok(()));
    }

    #[test]
    fn delay_is_capped() {
        let t = LoginThrottle::default();
        for _ in 0..60 {
            t.record_failure(&[("k", ACCOUNT_LIMITS)], 0);
        }
        assert_eq!(t.check(&["k"], 0), Err(ACCOUNT_LIMITS.max_lock_seconds));
    }
}

/// Wrong client secrets: a few, then a doubling lockout (secret guessing gets nowhere).
pub const CLIENT_AUTH_LIMITS: Limits = Limits {
    free_failures: 10,
    max_lock_seconds: 15 * 60,
    forget_after: 24 * 3600,
};

pub fn client_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// Requests per client per second, in fixed one-second windows of the injected clock.
pub struct RateLimiter {
    per_second: u32,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// `per_second` 0 turns the limit off.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` once the key has used up this second.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        if self.per_second == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, (second, _)| *second == now);
        }
        let (second, count) = windows.entry(key.to_owned()).or_insert((now, 0));
        if *second != now {
            *second = now;
            *count = 0;
        }
        if *count >= self.per_second {
            return Err(1);
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn fixed_windows_per_key() {
        let r = RateLimiter::new(2);
        assert_eq!(r.check("a", 10), Ok(()));
        assert_eq!(r.check("a", 10), Ok(()));
        assert_eq!(r.check("a", 10), Err(1));
        assert_eq!(r.check("b", 10), Ok(()), "keys are independent");
        assert_eq!(r.check("a", 11), Ok(()), "a new second starts afresh");
        let off = RateLimiter::new(0);
        for _ in 0..100 {
            assert_eq!(off.check("a", 10), Ok(()));
        }
    }
}
