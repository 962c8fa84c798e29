use futures_util::Stream;
use openphone_types::CallId;

use super::{page_size, segment, timestamp};
use crate::client::Request;
use crate::model::Data;
use crate::model::call::{
    Call, CallRecording, CallSummary, CallTranscript, CallVoicemail, ListCalls,
};
use crate::pagination::{Page, follow};
use crate::{Client, Error};

impl Client {
    /// One page of the calls with one participant (`GET /v1/calls`).
    ///
    /// # Errors
    /// [`Error::Validation`] for a page size outside 1 to 100; the usual kinds otherwise.
    pub async fn list_calls_page(
        &self,
        params: &ListCalls,
        page_token: Option<&str>,
    ) -> Result<Page<Call>, Error> {
        let request = Request::get("/v1/calls")
            .query("phoneNumberId", &params.phone_number_id)
            .query("participants", &params.participant)
            .query(
                "maxResults",
                page_size("maxResults", params.max_results, 100)?,
            )
            .query_opt("userId", params.user_id.as_ref())
            .query_opt("createdAfter", params.created_after.map(timestamp))
            .query_opt("createdBefore", params.created_before.map(timestamp))
            .query_opt("pageToken", page_token);
        self.execute(request).await
    }

    /// Every call with one participant, following pages.
    pub fn list_calls(&self, params: ListCalls) -> impl Stream<Item = Result<Call, Error>> + Send {
        let client = self.clone();
        follow(move |token| {
            let client = client.clone();
            let params = params.clone();
            async move {
                let page = client.list_calls_page(&params, token.as_deref()).await?;
                Ok((page.data, page.next_page_token))
            }
        })
    }

    /// One call (`GET /v1/calls/{callId}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such call, and the usual kinds.
    pub async fn get_call(&self, id: &CallId) -> Result<Call, Error> {
        let Data { data } = self
            .execute(Request::get(format!("/v1/calls/{}", segment(id.as_str()))))
            .await?;
        Ok(data)
    }

    /// A call's recordings (`GET /v1/call-recordings/{callId}`).
    ///
    /// # Errors
    /// The usual kinds.
    pub async fn call_recordings(&self, id: &CallId) -> Result<Vec<CallRecording>, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/call-recordings/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }

    /// A call's AI summary (`GET /v1/call-summaries/{callId}`); plan-gated.
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is none, and the usual kinds.
    pub async fn call_summary(&self, id: &CallId) -> Result<CallSummary, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/call-summaries/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }

    /// A call's transcript (`GET /v1/call-transcripts/{id}`); plan-gated.
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is none, and the usual kinds.
    pub async fn call_transcript(&self, id: &CallId) -> Result<CallTranscript, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/call-transcripts/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }

    /// The voicemail left on a call (`GET /v1/call-voicemails/{callId}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is none, and the usual kinds.
    pub async fn call_voicemail(&self, id: &CallId) -> Result<CallVoicemail, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/call-voicemails/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }
}
