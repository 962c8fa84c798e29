use futures_util::Stream;

use super::{page_size, timestamp};
use crate::client::Request;
use crate::model::workspace::{WorkspaceCall, WorkspaceMessage, WorkspaceQuery};
use crate::pagination::{CursorPage, follow};
use crate::{Client, Error};

impl Client {
    /// One page of every message in the workspace, with media (2026-03-30 `GET /messages`).
    ///
    /// # Errors
    /// [`Error::Validation`] for a limit outside 1 to 50; the usual kinds otherwise.
    pub async fn workspace_messages_page(
        &self,
        query: &WorkspaceQuery,
        after: Option<&str>,
    ) -> Result<CursorPage<WorkspaceMessage>, Error> {
        self.execute(workspace_request("/messages", query, after)?)
            .await
    }

    /// Every message in the workspace, following cursors.
    pub fn workspace_messages(
        &self,
        query: WorkspaceQuery,
    ) -> impl Stream<Item = Result<WorkspaceMessage, Error>> + Send {
        let client = self.clone();
        follow(move |cursor| {
            let client = client.clone();
            let query = query.clone();
            async move {
                let page = client
                    .workspace_messages_page(&query, cursor.as_deref())
                    .await?;
                Ok((page.data, page.next_cursor))
            }
        })
    }

    /// One page of every call in the workspace (2026-03-30 `GET /calls`).
    ///
    /// # Errors
    /// [`Error::Validation`] for a limit outside 1 to 50; the usual kinds otherwise.
    pub async fn workspace_calls_page(
        &self,
        query: &WorkspaceQuery,
        after: Option<&str>,
    ) -> Result<CursorPage<WorkspaceCall>, Error> {
        self.execute(workspace_request("/calls", query, after)?)
            .await
    }

    /// Every call in the workspace, following cursors.
    pub fn workspace_calls(
        &self,
        query: WorkspaceQuery,
    ) -> impl Stream<Item = Result<WorkspaceCall, Error>> + Send {
        let client = self.clone();
        follow(move |cursor| {
            let client = client.clone();
            let query = query.clone();
            async move {
                let page = client
                    .workspace_calls_page(&query, cursor.as_deref())
                    .await?;
                Ok((page.data, page.next_cursor))
            }
        })
    }
}

fn workspace_request(
    path: &str,
    query: &WorkspaceQuery,
    after: Option<&str>,
) -> Result<Request, Error> {
    Ok(Request::get(path)
        .dated()
        .query("limit", page_size("limit", query.limit.unwrap_or(50), 50)?)
        .query_opt("createdAt[gt]", query.created_after.map(timestamp))
        .query_opt("createdAt[lt]", query.created_before.map(timestamp))
        .query_opt("after", after))
}
