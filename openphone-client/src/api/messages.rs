use futures_util::Stream;
use openphone_types::MessageId;

use super::{page_size, segment, timestamp};
use crate::client::Request;
use crate::model::Data;
use crate::model::message::{ListMessages, Message, SendMessage};
use crate::pagination::{Page, follow};
use crate::{Client, Error};

impl Client {
    /// Sends a text message (`POST /v1/messages`, answered 202 with the queued message).
    ///
    /// Sending is not idempotent and OpenPhone takes no idempotency key, so this is never
    /// retried after it may have reached OpenPhone: a timeout or a server error then returns
    /// [`Error::Ambiguous`], and the caller decides (e.g. by listing the conversation) whether
    /// to send again. Rate-limit answers (429) and 503 are retried: nothing was sent.
    ///
    /// # Errors
    /// [`Error::Ambiguous`] as above; [`Error::Api`] for refusals (A2P registration `0206400`,
    /// credits 402, not a member of the number 403...); the other kinds as for any call.
    pub async fn send_message(&self, message: &SendMessage) -> Result<Message, Error> {
        let body = serde_json::to_value(message)
            .map_err(|error| Error::validation("message", error.to_string()))?;
        let Data { data } = self.execute(Request::post("/v1/messages", body)).await?;
        Ok(data)
    }

    /// One message (`GET /v1/messages/{id}`).
    ///
    /// # Errors
    /// [`Error::Api`] with status 404 when there is no such message, and the usual kinds.
    pub async fn get_message(&self, id: &MessageId) -> Result<Message, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/messages/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }

    /// One page of a conversation's messages (`GET /v1/messages`).
    ///
    /// # Errors
    /// [`Error::Validation`] for no or more than 10 participants or a page size outside
    /// 1 to 100; the usual kinds otherwise.
    pub async fn list_messages_page(
        &self,
        params: &ListMessages,
        page_token: Option<&str>,
    ) -> Result<Page<Message>, Error> {
        if params.participants.is_empty() || params.participants.len() > 10 {
            return Err(Error::validation(
                "participants",
                "give 1 to 10 participants",
            ));
        }
        let mut request = Request::get("/v1/messages")
            .query("phoneNumberId", &params.phone_number_id)
            .query(
                "maxResults",
                page_size("maxResults", params.max_results, 100)?,
            );
        for participant in &params.participants {
            request = request.query("participants", participant);
        }
        let request = request
            .query_opt("userId", params.user_id.as_ref())
            .query_opt("createdAfter", params.created_after.map(timestamp))
            .query_opt("createdBefore", params.created_before.map(timestamp))
            .query_opt("pageToken", page_token);
        self.execute(request).await
    }

    /// Every message of a conversation, following pages.
    pub fn list_messages(
        &self,
        params: ListMessages,
    ) -> impl Stream<Item = Result<Message, Error>> + Send {
        let client = self.clone();
        follow(move |token| {
            let client = client.clone();
            let params = params.clone();
            async move {
                let page = client.list_messages_page(&params, token.as_deref()).await?;
                Ok((page.data, page.next_page_token))
            }
        })
    }
}
