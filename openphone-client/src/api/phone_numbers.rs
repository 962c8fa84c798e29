use openphone_types::{PhoneNumberId, UserId};

use super::segment;
use crate::client::Request;
use crate::model::Data;
use crate::model::phone_number::PhoneNumber;
use crate::{Client, Error};

impl Client {
    /// The workspace's phone numbers, or those of one user (`GET /v1/phone-numbers`; not
    /// paginated).
    ///
    /// # Errors
    /// The usual kinds.
    pub async fn list_phone_numbers(
        &self,
        user: Option<&UserId>,
    ) -> Result<Vec<PhoneNumber>, Error> {
        let Data { data } = self
            .execute(Request::get("/v1/phone-numbers").query_opt("userId", user))
            .await?;
        Ok(data)
    }

    /// One phone number (`GET /v1/phone-numbers/{id}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such number, and the usual kinds.
    pub async fn get_phone_number(&self, id: &PhoneNumberId) -> Result<PhoneNumber, Error> {
        let Data { data } = self
            .execute(Request::get(format!(
                "/v1/phone-numbers/{}",
                segment(id.as_str())
            )))
            .await?;
        Ok(data)
    }
}
