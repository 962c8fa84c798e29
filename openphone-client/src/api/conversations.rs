use futures_util::Stream;
use openphone_types::ConversationId;

use super::{page_size, segment, timestamp};
use crate::client::Request;
use crate::model::conversation::{Conversation, ListConversations};
use crate::pagination::{Page, follow};
use crate::{Client, Error};

impl Client {
    /// One page of conversations, most recent first (`GET /v1/conversations`).
    ///
    /// # Errors
    /// [`Error::Validation`] for more than 100 numbers or a page size outside 1 to 100.
    pub async fn list_conversations_page(
        &self,
        params: &ListConversations,
        page_token: Option<&str>,
    ) -> Result<Page<Conversation>, Error> {
        if params.phone_numbers.len() > 100 {
            return Err(Error::validation("phoneNumbers", "at most 100 numbers"));
        }
        let mut request = Request::get("/v1/conversations").query(
            "maxResults",
            page_size("maxResults", params.max_results.unwrap_or(100), 100)?,
        );
        for number in &params.phone_numbers {
            request = request.query("phoneNumbers", number);
        }
        let request = request
            .query_opt("userId", params.user_id.as_ref())
            .query_opt("createdAfter", params.created_after.map(timestamp))
            .query_opt("createdBefore", params.created_before.map(timestamp))
            .query_opt("updatedAfter", params.updated_after.map(timestamp))
            .query_opt("updatedBefore", params.updated_before.map(timestamp))
            .query_opt("excludeInactive", params.exclude_inactive)
            .query_opt("pageToken", page_token);
        self.execute(request).await
    }

    /// Every conversation matching `params`, following pages.
    pub fn list_conversations(
        &self,
        params: ListConversations,
    ) -> impl Stream<Item = Result<Conversation, Error>> + Send {
        let client = self.clone();
        follow(move |token| {
            let client = client.clone();
            let params = params.clone();
            async move {
                let page = client
                    .list_conversations_page(&params, token.as_deref())
                    .await?;
                Ok((page.data, page.next_page_token))
            }
        })
    }

    /// Marks a conversation read (`POST /v1/conversations/{id}/mark-as-read`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such conversation, and the usual kinds.
    pub async fn mark_conversation_read(&self, id: &ConversationId) -> Result<Conversation, Error> {
        self.mark(id, "mark-as-read").await
    }

    /// Marks a conversation done (`POST /v1/conversations/{id}/mark-as-done`).
    ///
    /// # Errors
    /// As for [`Client::mark_conversation_read`].
    pub async fn mark_conversation_done(&self, id: &ConversationId) -> Result<Conversation, Error> {
        self.mark(id, "mark-as-done").await
    }

    /// Reopens a conversation (`POST /v1/conversations/{id}/mark-as-open`).
    ///
    /// # Errors
    /// As for [`Client::mark_conversation_read`].
    pub async fn mark_conversation_open(&self, id: &ConversationId) -> Result<Conversation, Error> {
        self.mark(id, "mark-as-open").await
    }

    async fn mark(&self, id: &ConversationId, action: &str) -> Result<Conversation, Error> {
        // These answer with the conversation itself, not wrapped in `data`.
        self.execute(Request::post_idempotent(format!(
            "/v1/conversations/{}/{action}",
            segment(id.as_str())
        )))
        .await
    }
}
