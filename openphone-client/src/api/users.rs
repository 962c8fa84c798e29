use futures_util::Stream;
use openphone_types::UserId;

use super::{page_size, segment};
use crate::client::Request;
use crate::model::Data;
use crate::model::user::User;
use crate::pagination::{Page, follow};
use crate::{Client, Error};

impl Client {
    /// One page of users (`GET /v1/users`), `max_results` 1 to 50.
    ///
    /// # Errors
    /// [`Error::Validation`] for a page size outside 1 to 50; the usual kinds otherwise.
    pub async fn list_users_page(
        &self,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<User>, Error> {
        let request = Request::get("/v1/users")
            .query("maxResults", page_size("maxResults", max_results, 50)?)
            .query_opt("pageToken", page_token);
        self.execute(request).await
    }

    /// Every user of the workspace, following pages.
    pub fn list_users(&self) -> impl Stream<Item = Result<User, Error>> + Send {
        let client = self.clone();
        follow(move |token| {
            let client = client.clone();
            async move {
                let page = client.list_users_page(50, token.as_deref()).await?;
                Ok((page.data, page.next_page_token))
            }
        })
    }

    /// One user (`GET /v1/users/{id}`).
    ///
    /// # Errors
    /// [`Error::Api`] 404 when there is no such user, and the usual kinds.
    pub async fn get_user(&self, id: &UserId) -> Result<User, Error> {
        let Data { data } = self
            .execute(Request::get(format!("/v1/users/{}", segment(id.as_str()))))
            .await?;
        Ok(data)
    }
}
