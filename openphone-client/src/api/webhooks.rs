use openphone_types::{UserId, WebhookId};

use super::segment;
use crate::client::Request;
use crate::model::Data;
use crate::model::webhook::{NewWebhook, Webhook};
use crate::{Client, Error};

impl Client {
    /// The webhooks created through the API (`GET /v1/webhooks`). Webhooks created in the
    /// OpenPhone app are not listed.
    ///
    /// # Errors
    /// The usual kinds.
    pub async fn list_webhooks(&self, user: Option<&UserId>) -> Result<Vec<Webhook>, Error> {
        let Data { data } = self
            .execute(Request::get("/v1/webhooks").query_opt("userId", user))
            .await
            .map_err(redact_body)?;
        Ok(data)
    }

    /// One webhook (`GET /v1/webhooks/{id}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such webhook, 400 `0305400` for one created in the
    /// app, and the usual kinds.
    pub async fn get_webhook(&self, id: &WebhookId) -> Result<Webhook, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/webhooks/{}",
                segment(id.as_str())
            )))
            .await
            .map_err(redact_body)?;
        Ok(data)
    }

    /// Creates a webhook of one kind (`POST /v1/webhooks/{messages|calls|call-summaries|
    /// call-transcripts}`, 201). Keep the returned [`Webhook::key`]: it verifies deliveries.
    ///
    /// # Errors
    /// [`Error::Validation`] when an event does not belong to the kind or the list is empty;
    /// [`Error::Ambiguous`] when the outcome is unknown (list the webhooks to find out).
    pub async fn create_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, Error> {
        if webhook.events.is_empty() {
            return Err(Error::validation("events", "give at least one event"));
        }
        if let Some(event) = webhook
            .events
            .iter()
            .find(|event| !webhook.kind.events().contains(&event.as_str()))
        {
            return Err(Error::validation(
                "events",
                format!("{event} is not an event of {:?} webhooks", webhook.kind),
            ));
        }
        let body = serde_json::to_value(webhook)
            .map_err(|error| Error::validation("webhook", error.to_string()))?;
        let Data { data } = self
            .execute(Request::post(webhook.kind.path(), body))
            .await
            .map_err(redact_body)?;
        Ok(data)
    }

    /// Deletes a webhook (`DELETE /v1/webhooks/{id}`, 204).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such webhook, and the usual kinds.
    pub async fn delete_webhook(&self, id: &WebhookId) -> Result<(), Error> {
        self.execute_empty(Request::delete(format!(
            "/v1/webhooks/{}",
            segment(id.as_str())
        )))
        .await
    }
}

/// Webhook bodies carry signing keys: an undecodable one is not kept in the error.
fn redact_body(error: Error) -> Error {
    match error {
        Error::Decode {
            status,
            path,
            reason,
            ..
        } => Error::Decode {
            status,
            path,
            reason,
            body: "[withheld: webhook bodies carry signing keys]".to_owned(),
        },
        Error::Ambiguous { reason, source } => Error::Ambiguous {
            reason,
            source: Box::new(redact_body(*source)),
        },
        other => other,
    }
}
