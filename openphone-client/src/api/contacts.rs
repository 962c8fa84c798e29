use futures_util::Stream;
use openphone_types::ContactId;

use super::{page_size, segment};
use crate::client::Request;
use crate::model::Data;
use crate::model::contact::{
    Contact, ContactUpdate, CustomFieldDefinition, ListContacts, NewContact,
};
use crate::pagination::{Page, follow};
use crate::{Client, Error};

impl Client {
    /// Creates a contact (`POST /v1/contacts`, 201).
    ///
    /// Not retried after it may have been sent; give it an `external_id` so that a repeat is
    /// refused with 409 (`0800409`) rather than creating a duplicate.
    ///
    /// # Errors
    /// [`Error::Validation`] for an external id or source outside 1 to 75/72 characters;
    /// [`Error::Api`] 409 for a duplicate external id; [`Error::Ambiguous`] as for sends.
    pub async fn create_contact(&self, contact: &NewContact) -> Result<Contact, Error> {
        if let Some(id) = &contact.external_id
            && !(1..=75).contains(&id.chars().count())
        {
            return Err(Error::validation(
                "externalId",
                "must be 1 to 75 characters",
            ));
        }
        if let Some(source) = &contact.source
            && !(1..=72).contains(&source.chars().count())
        {
            return Err(Error::validation("source", "must be 1 to 72 characters"));
        }
        let body = serde_json::to_value(contact)
            .map_err(|error| Error::validation("contact", error.to_string()))?;
        let Data { data } = self.execute(Request::post("/v1/contacts", body)).await?;
        Ok(data)
    }

    /// One contact (`GET /v1/contacts/{id}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such contact, and the usual kinds.
    pub async fn get_contact(&self, id: &ContactId) -> Result<Contact, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/contacts/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }

    /// Changes a contact (`PATCH /v1/contacts/{id}`). Lists in the update replace the
    /// stored lists whole.
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such contact, and the usual kinds.
    pub async fn update_contact(
        &self,
        id: &ContactId,
        update: &ContactUpdate,
    ) -> Result<Contact, Error> {
        let body = serde_json::to_value(update)
            .map_err(|error| Error::validation("update", error.to_string()))?;
        let Data { data } = self
            .execute(Request::patch(
                format!("/v1/contacts/{}", segment(id.as_str())),
                body,
            ))
            .await?;
        Ok(data)
    }

    /// Deletes a contact (`DELETE /v1/contacts/{id}`, 204).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such contact, and the usual kinds.
    pub async fn delete_contact(&self, id: &ContactId) -> Result<(), Error> {
        self.execute_empty(Request::delete(format!(
            "/v1/contacts/{}",
            segment(id.as_str())
        )))
        .await
    }

    /// One page of contacts (`GET /v1/contacts`).
    ///
    /// # Errors
    /// [`Error::Validation`] for a page size outside 1 to 50; the usual kinds otherwise.
    pub async fn list_contacts_page(
        &self,
        params: &ListContacts,
        page_token: Option<&str>,
    ) -> Result<Page<Contact>, Error> {
        let mut request = Request::get("/v1/contacts").query(
            "maxResults",
            page_size("maxResults", params.max_results.unwrap_or(50), 50)?,
        );
        for id in &params.external_ids {
            request = request.query("externalIds", id);
        }
        for source in &params.sources {
            request = request.query("sources", source);
        }
        self.execute(request.query_opt("pageToken", page_token))
            .await
    }

    /// Every contact matching `params`, following pages.
    pub fn list_contacts(
        &self,
        params: ListContacts,
    ) -> impl Stream<Item = Result<Contact, Error>> + Send {
        let client = self.clone();
        follow(move |token| {
            let client = client.clone();
            let params = params.clone();
            async move {
                let page = client.list_contacts_page(&params, token.as_deref()).await?;
                Ok((page.data, page.next_page_token))
            }
        })
    }

    /// The workspace's contact custom-field definitions (`GET /v1/contact-custom-fields`).
    ///
    /// # Errors
    /// The usual kinds.
    pub async fn contact_custom_fields(&self) -> Result<Vec<CustomFieldDefinition>, Error> {
        let Data { data } = self
            .execute(Request::get("/v1/contact-custom-fields"))
            .await?;
        Ok(data)
    }
}
