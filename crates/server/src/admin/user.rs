//! `oauthd user create|list|delete|set-password`.
use std::io::BufRead as _;

use oauthd_core::secret::{Secret, random_id};
use oauthd_store::{Store, User};

use super::Failure;
use crate::cli::PasswordSource;
use crate::passwords;

pub const MIN_PASSWORD_LENGTH: usize = 8;

pub fn read_password(source: &PasswordSource) -> Result<Secret, Failure> {
    let password = match &source.password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                Failure::failed(format!("cannot read the password from standard input: {e}"))
            })?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(Failure::bad_input(format!(
            "the password must be at least {MIN_PASSWORD_LENGTH} characters"
        )));
    }
    Ok(Secret::from_presented(password))
}

pub fn validate_username(username: &str) -> Result<(), Failure> {
    if username.is_empty()
        || username.len() > 256
        || username.trim() != username
        || username.chars().any(char::is_control)
    {
        return Err(Failure::bad_input(
            "the username must be 1 to 256 characters, without control characters or surrounding spaces",
        ));
    }
    Ok(())
}

/// A new user's profile (the OpenID Connect `email` and `name` claims).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub email: Option<String>,
    pub display_name: Option<String>,
}

pub async fn create(
    store: &dyn Store,
    username: &str,
    password: &Secret,
    profile: Profile,
    now: i64,
) -> Result<User, Failure> {
    validate_username(username)?;
    if let Some(email) = &profile.email
        && (email.len() > 254
            || !email.contains('@')
            || email.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(Failure::bad_input(format!(
            "--email {email:?} is not an email address"
        )));
    }
    if profile
        .display_name
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(Failure::bad_input(
            "--name must be 1 to 200 characters without control characters",
        ));
    }
    let user = User {
        id: random_id(),
        username: username.to_owned(),
        password_hash: passwords::hash(password),
        email: profile.email,
        display_name: profile.display_name,
        created_at: now,
    };
    store.insert_user(&user).await?;
    Ok(user)
}

pub async fn run_list(store: &dyn Store, json: bool) -> Result<(), Failure> {
    let users = store.users().await?;
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| serde_json::json!({ "id": u.id, "username": u.username }))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if users.is_empty() {
        println!("No users.");
    } else {
        for u in &users {
            println!("{}\t{}", u.username, u.id);
        }
    }
    Ok(())
}

pub async fn run_delete(store: &dyn Store, username: &str) -> Result<(), Failure> {
    if store.delete_user(username).await? {
        println!("Deleted user {username} with their sessions, consents and tokens.");
        Ok(())
    } else {
        Err(Failure::failed(format!("user {username:?} does not exist")))
    }
}

pub async fn run_set_password(
    store: &dyn Store,
    username: &str,
    password: &Secret,
) -> Result<(), Failure> {
    if store
        .set_password(username, &passwords::hash(password))
        .await?
    {
        println!("Password changed for {username}; their browser sessions have ended.");
        Ok(())
    } else {
        Err(Failure::failed(format!("user {username:?} does not exist")))
    }
}
