//! `oauthd keys list|rotate|retire`.
use oauthd_core::jose::JwsAlg;
use oauthd_store::Store;

use super::Failure;
use crate::keys::{KeyRing, publish_until};

fn state_of(k: &oauthd_store::StoredKey, now: i64) -> String {
    match (k.retired_at, k.rotated_at, k.publish_until) {
        (Some(_), _, _) => "retired".into(),
        (None, None, _) => "active".into(),
        (None, Some(_), Some(until)) if now < until => {
            format!("rotated out, published until {until}")
        }
        _ => "rotated out, no longer published".into(),
    }
}

pub async fn run_list(store: &dyn Store, now: i64, json: bool) -> Result<(), Failure> {
    let keys = store.signing_keys().await?;
    if json {
        let list: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid, "alg": k.alg, "state": state_of(k, now), "created_at": k.created_at,
                    "rotated_at": k.rotated_at, "publish_until": k.publish_until, "retired_at": k.retired_at,
                    "sealed": oauthd_core::key_sealing::is_sealed(&k.private_key),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if keys.is_empty() {
        println!("No signing keys yet; `oauthd serve` creates them on first start.");
    } else {
        for k in &keys {
            println!("{}\t{}\t{}", k.kid, k.alg, state_of(k, now));
        }
    }
    Ok(())
}

pub async fn run_rotate(
    store: &dyn Store,
    ring: &KeyRing,
    alg: Option<&str>,
    now: i64,
) -> Result<(), Failure> {
    let algs = match alg {
        None => JwsAlg::ALL.to_vec(),
        Some(a) => vec![JwsAlg::parse(a).ok_or_else(|| {
            Failure::bad_input(format!(
                "--alg {a:?} is not valid; use ES256, EdDSA or RS256"
            ))
        })?],
    };
    let longest = store
        .clients()
        .await?
        .iter()
        .map(|c| c.access_token_ttl)
        .max()
        .unwrap_or(0);
    let until = publish_until(now, longest);
    for alg in algs {
        let key = ring
            .new_stored_key(alg, now)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let previous = store.rotate_key(&key, now, until).await?;
        match previous {
            Some(old) => println!(
                "{}: {} is active; {old} stays published until {until}",
                alg.as_str(),
                key.kid
            ),
            None => println!("{}: {} is active", alg.as_str(), key.kid),
        }
    }
    Ok(())
}

pub async fn run_retire(store: &dyn Store, kid: &str, now: i64) -> Result<(), Failure> {
    let key = store
        .signing_keys()
        .await?
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| Failure::failed(format!("signing key {kid:?} does not exist")))?;
    if key.is_active() {
        return Err(Failure::bad_input(format!(
            "signing key {kid:?} is active; rotate first (`oauthd keys rotate --alg {}`) so tokens can still be signed",
            key.alg
        )));
    }
    if store.retire_key(kid, now).await? {
        println!(
            "Retired {kid}: it is no longer published, and tokens it signed are no longer accepted."
        );
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "signing key {kid:?} is already retired"
        )))
    }
}
