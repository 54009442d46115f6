//! Decoded client records kept in memory, each tagged with the value the database's
//! `clients` change counter had when it was read. Every change to `clients` bumps that
//! counter by trigger (migrations: `client_changes`), so a record is used only while no
//! client has changed since, whoever changed it: this process, another instance, the admin
//! CLI. A lookup then costs one read of a single integer instead of the whole row and its
//! decoding; every token request, authorization and introspection starts with one.
use std::collections::HashMap;
use std::sync::Mutex;

use oauthd_core::client::Client;

/// Past this many records the cache starts again from empty: a bound on memory whatever the
/// number of clients, and no bookkeeping on the hot path.
const MAX_ENTRIES: usize = 4096;

/// The counter's name in `change_counters`, and the statements both backends use.
pub(crate) const COUNTER: &str = "clients";

#[derive(Default)]
pub(crate) struct ClientCache {
    entries: Mutex<HashMap<String, (i64, Client)>>,
}

impl ClientCache {
    /// The record read when the counter was `version`, if that is still what it is.
    pub(crate) fn get(&self, client_id: &str, version: i64) -> Option<Client> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(client_id) {
            Some((read_at, client)) if *read_at == version => Some(client.clone()),
            _ => None,
        }
    }

    /// Remember `client` as read after the counter was read as `version`. Read in that
    /// order, a change committed in between leaves a newer record under an older version:
    /// the next lookup sees another version and reads it again, never the other way round.
    /// Unknown ids are not remembered, so made-up ids cannot fill the cache.
    pub(crate) fn put(&self, version: i64, client: &Client) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&client.client_id) {
            entries.clear();
        }
        entries.insert(client.client_id.clone(), (version, client.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_client;

    #[test]
    fn a_record_is_used_only_at_the_version_it_was_read_at() {
        let cache = ClientCache::default();
        assert!(cache.get("c1", 0).is_none());
        cache.put(7, &sample_client("c1"));
        assert_eq!(cache.get("c1", 7).unwrap().client_id, "c1");
        assert!(cache.get("c1", 8).is_none(), "a newer counter is a miss");
        assert!(cache.get("c2", 7).is_none());
        let mut renamed = sample_client("c1");
        renamed.name = "Renamed".into();
        cache.put(8, &renamed);
        assert_eq!(cache.get("c1", 8).unwrap().name, "Renamed");
        assert!(cache.get("c1", 7).is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let cache = ClientCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put(1, &sample_client(&format!("c{i}")));
        }
        assert!(cache.get("c0", 1).is_some());
        cache.put(1, &sample_client("one-more"));
        assert!(cache.get("c0", 1).is_none(), "full: started again");
        assert!(cache.get("one-more", 1).is_some());
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }
}
