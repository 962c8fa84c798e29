//! Pages and the streams that follow them.

use std::collections::HashSet;
use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::Error;

/// One page of a v1 list: the items and the token of the next page.
///
/// v1 responses also carry `totalItems`, which OpenPhone documents as inaccurate; it is not
/// read. The list ends when `next_page_token` is `None`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// The token of the next page, `None` on the last.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One page of a 2026-03-30 list: the items and the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CursorPage<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// The cursor of the next page (`after`), `None` on the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Follows page tokens from the first page until one comes back without a next token (or an
/// empty one). A token already followed ends the stream too (an old API bug returned a token on
/// the last page), so a listing never loops forever.
pub(crate) fn follow<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>> + Send
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Error>> + Send,
{
    enum State {
        Next(Option<String>),
        Done,
    }
    let start = (State::Next(None), fetch, HashSet::new());
    let pages = stream::try_unfold(start, |(state, fetch, mut seen)| async move {
        let State::Next(token) = state else {
            return Ok(None);
        };
        let (items, next) = fetch(token).await?;
        let state = match next {
            Some(next) if next.is_empty() => State::Done,
            Some(next) if !seen.insert(next.clone()) => {
                tracing::warn!("OpenPhone returned a page token already followed; stopping");
                State::Done
            }
            Some(next) => State::Next(Some(next)),
            None => State::Done,
        };
        Ok(Some((items, (state, fetch, seen))))
    });
    pages
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}
