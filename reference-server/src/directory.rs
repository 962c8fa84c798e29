//! The workspace directory: our phone numbers (lines) and users, as the OpenPhone API lists
//! them.
//!
//! The import and the start-up read record the API's view ([`Directory::save_number`],
//! [`Directory::save_user`]); ingestion also learns a line from the sender of an outgoing
//! message (the projection's `OwnNumber` change, applied through
//! [`crate::records::Records::apply`], which never overrides what the API said). Our numbers
//! tell our line from the other participants of a group message
//! ([`Directory::own_numbers`]).
//!
//! [`Store`] implements [`Directory`] in SQL (`workspace_phone_numbers`, `workspace_users`),
//! [`MemoryRecords`] in memory; [`conformance::run`] is the suite both pass.

use std::future::Future;

use crate::projection::{Change, OwnNumbers};
use crate::records::{Memory, MemoryRecords};
use crate::store::{Store, StoreError};

/// One of our phone numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceNumber {
    /// The phone number id (`PN…`).
    pub id: String,
    /// The number, E.164.
    pub number: String,
    /// Its name in OpenPhone, when the API listed it (not when learned from a message).
    pub name: Option<String>,
}

/// A user of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceUser {
    /// The user id (`US…`).
    pub id: String,
    /// Email.
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Role (`owner`, `admin`, `member`, ...).
    pub role: Option<String>,
}

/// The workspace's numbers and users.
pub trait Directory: Clone + Send + Sync + 'static {
    /// Records a number as the API lists it, replacing what was known of that id.
    fn save_number(
        &self,
        number: &WorkspaceNumber,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a user as the API lists it, replacing what was known of that id.
    fn save_user(
        &self,
        user: &WorkspaceUser,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every known number, by id.
    fn numbers(&self) -> impl Future<Output = Result<Vec<WorkspaceNumber>, StoreError>> + Send;

    /// Every known user, by id.
    fn users(&self) -> impl Future<Output = Result<Vec<WorkspaceUser>, StoreError>> + Send;

    /// Our lines (phone number id and number): those the API listed and those seen sending.
    fn own_numbers(&self) -> impl Future<Output = Result<OwnNumbers, StoreError>> + Send {
        async {
            let numbers = self.numbers().await?;
            Ok(OwnNumbers::new(
                numbers.into_iter().map(|number| (number.id, number.number)),
            ))
        }
    }
}

impl Directory for Store {
    async fn save_number(&self, number: &WorkspaceNumber, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO workspace_phone_numbers (id, number, name, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET number = excluded.number, name = excluded.name, updated_ms = excluded.updated_ms",
            &[
                number.id.as_str().into(),
                number.number.as_str().into(),
                number.name.clone().into(),
                now_ms.into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn save_user(&self, user: &WorkspaceUser, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO workspace_users (id, email, first_name, last_name, role, updated_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name, \
             last_name = excluded.last_name, role = excluded.role, updated_ms = excluded.updated_ms",
            &[
                user.id.as_str().into(),
                user.email.as_str().into(),
                user.first_name.clone().into(),
                user.last_name.clone().into(),
                user.role.clone().into(),
                now_ms.into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn numbers(&self) -> Result<Vec<WorkspaceNumber>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = self
            .fetch_all(
                "SELECT id, number, name FROM workspace_phone_numbers ORDER BY id",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, number, name)| WorkspaceNumber { id, number, name })
            .collect())
    }

    async fn users(&self) -> Result<Vec<WorkspaceUser>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = self
            .fetch_all(
                "SELECT id, email, first_name, last_name, role FROM workspace_users ORDER BY id",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, email, first_name, last_name, role)| WorkspaceUser {
                id,
                email,
                first_name,
                last_name,
                role,
            })
            .collect())
    }
}

impl Memory {
    /// Merges an `OwnNumber` change: a number learned from a message is kept unless its id is
    /// already known.
    pub(crate) fn learn_number(&mut self, change: &Change) {
        if let Change::OwnNumber {
            phone_number_id,
            number,
            ..
        } = change
        {
            self.numbers
                .entry(phone_number_id.clone())
                .or_insert_with(|| WorkspaceNumber {
                    id: phone_number_id.clone(),
                    number: number.clone(),
                    name: None,
                });
        }
    }
}

impl Directory for MemoryRecords {
    async fn save_number(&self, number: &WorkspaceNumber, _now_ms: i64) -> Result<(), StoreError> {
        self.with(|memory| memory.numbers.insert(number.id.clone(), number.clone()));
        Ok(())
    }

    async fn save_user(&self, user: &WorkspaceUser, _now_ms: i64) -> Result<(), StoreError> {
        self.with(|memory| memory.users.insert(user.id.clone(), user.clone()));
        Ok(())
    }

    async fn numbers(&self) -> Result<Vec<WorkspaceNumber>, StoreError> {
        Ok(self.with(|memory| memory.numbers.values().cloned().collect()))
    }

    async fn users(&self) -> Result<Vec<WorkspaceUser>, StoreError> {
        Ok(self.with(|memory| memory.users.values().cloned().collect()))
    }
}

/// The suite every [`Directory`] implementation must pass; the crate runs it on memory,
/// SQLite and PostgreSQL.
pub mod conformance {
    use super::{Directory, WorkspaceNumber, WorkspaceUser};
    use crate::projection::Change;
    use crate::records::Records;

    fn number(id: &str, number: &str, name: Option<&str>) -> WorkspaceNumber {
        WorkspaceNumber {
            id: id.to_owned(),
            number: number.to_owned(),
            name: name.map(str::to_owned),
        }
    }

    fn learned(id: &str, number: &str) -> Change {
        Change::OwnNumber {
            phone_number_id: id.to_owned(),
            number: number.to_owned(),
            seen_ms: 1_000,
        }
    }

    /// Runs every case on `directory`, which must be empty.
    pub async fn run<D: Directory + Records>(directory: D) {
        assert!(directory.numbers().await.expect("numbers").is_empty());
        assert!(directory.users().await.expect("users").is_empty());

        // A line learned from an outgoing message (applied twice: nothing changes).
        for _ in 0..2 {
            directory
                .apply(&[learned("PN2", "+15550000002")])
                .await
                .expect("apply");
        }
        let own = directory.own_numbers().await.expect("own");
        assert_eq!(own.number("PN2"), Some("+15550000002"));

        // The API's listing replaces what was learned, and is not undone by a later message.
        directory
            .save_number(&number("PN2", "+15550000022", Some("Support")), 2_000)
            .await
            .expect("save");
        directory
            .save_number(&number("PN1", "+15550000001", Some("Main line")), 2_000)
            .await
            .expect("save");
        directory
            .apply(&[learned("PN2", "+15550000002")])
            .await
            .expect("apply");
        assert_eq!(
            directory.numbers().await.expect("numbers"),
            [
                number("PN1", "+15550000001", Some("Main line")),
                number("PN2", "+15550000022", Some("Support")),
            ]
        );
        let own = directory.own_numbers().await.expect("own");
        assert_eq!(own.number("PN1"), Some("+15550000001"));
        assert_eq!(own.number("PN2"), Some("+15550000022"));
        assert_eq!(own.number("PN3"), None);

        // A renamed line keeps one row.
        directory
            .save_number(&number("PN1", "+15550000001", Some("Front desk")), 3_000)
            .await
            .expect("save");
        let numbers = directory.numbers().await.expect("numbers");
        assert_eq!(numbers.len(), 2);
        assert_eq!(numbers[0].name.as_deref(), Some("Front desk"));

        // Users: saved, replaced on the next listing, in id order.
        let user = |id: &str, email: &str, role: &str| WorkspaceUser {
            id: id.to_owned(),
            email: email.to_owned(),
            first_name: Some("Alex".to_owned()),
            last_name: None,
            role: Some(role.to_owned()),
        };
        directory
            .save_user(&user("US2", "sam@example.com", "member"), 1_000)
            .await
            .expect("save");
        directory
            .save_user(&user("US1", "alex@example.com", "member"), 1_000)
            .await
            .expect("save");
        directory
            .save_user(&user("US1", "alex@example.com", "admin"), 2_000)
            .await
            .expect("save");
        assert_eq!(
            directory.users().await.expect("users"),
            [
                user("US1", "alex@example.com", "admin"),
                user("US2", "sam@example.com", "member"),
            ]
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::records::MemoryRecords;

    #[tokio::test]
    async fn memory_directory_passes_the_conformance_suite() {
        super::conformance::run(MemoryRecords::new()).await;
    }
}
