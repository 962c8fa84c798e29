//! The operations, as methods of [`Client`](crate::Client), one module per resource.

mod calls;
mod contacts;
mod conversations;
mod messages;
mod phone_numbers;
mod users;
mod webhooks;
mod workspace;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

/// A time as the API's query strings take it (RFC 3339).
pub(crate) fn timestamp(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

/// Checks a page size against the endpoint's maximum.
pub(crate) fn page_size(field: &'static str, size: u32, max: u32) -> Result<u32, Error> {
    if (1..=max).contains(&size) {
        Ok(size)
    } else {
        Err(Error::validation(
            field,
            format!("must be 1 to {max}, got {size}"),
        ))
    }
}

/// Percent-encodes an id for a path segment (ids are opaque; most need no encoding).
pub(crate) fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
