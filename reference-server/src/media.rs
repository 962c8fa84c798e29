//! Media copying: every attachment, recording and voicemail URL is downloaded into a
//! content-addressed blob store under `DATA_DIR/blobs` by a durable background job.
//!
//! Projection queues a job per `(owner, url)` in the webhook's transaction; [`MediaFetcher`]
//! claims due jobs (with a lease, so replicas share the work), downloads under guards (https
//! only unless a host is configured for plain http, an allowlist of hosts and path prefixes,
//! no redirect off the allowlist, a size cap, a timeout), writes the bytes to
//! `blobs/<first two hex digits>/<sha256>` (written to a temporary file, synced, renamed), and
//! records hash, size and content type. Transient failures retry with exponential backoff; a
//! download that keeps failing, or fails for good (refused host, 4xx, too large), is marked
//! `failed`, logged at error level, and shown by the API and metrics.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::{ObjectStore, ObjectStoreExt};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::metrics::Metrics;
use crate::store::{Arg, Store, StoreError};

/// The hosts (and path prefixes) OpenPhone serves media from, as seen in webhooks.
pub const DEFAULT_ALLOWED: [&str; 4] = [
    "storage.googleapis.com/opstatics/",
    "storage.googleapis.com/opstatics-dev/",
    "opstatics-dev.s3.amazonaws.com",
    "files.openphone.co",
];

/// Default largest download, in bytes (an hour-long call recording fits).
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// Attempts before a download is marked `failed`.
pub const MAX_ATTEMPTS: i64 = 8;

/// What downloads may fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPolicy {
    /// `host` or `host/path-prefix` entries; a URL must match one.
    pub allowed: Vec<String>,
    /// Hosts that may be fetched over plain http (test servers only).
    pub http_hosts: Vec<String>,
    /// Largest download, in bytes.
    pub max_bytes: u64,
    /// Time limit of one download.
    pub timeout: Duration,
}

impl Default for MediaPolicy {
    fn default() -> Self {
        Self {
            allowed: DEFAULT_ALLOWED.iter().map(|s| (*s).to_owned()).collect(),
            http_hosts: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: Duration::from_secs(120),
        }
    }
}

impl MediaPolicy {
    /// Why `url` may not be fetched, if it may not.
    pub fn refusal(&self, url: &reqwest::Url) -> Option<String> {
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if self.http_hosts.iter().any(|allowed| allowed == host) => {}
            scheme => return Some(format!("scheme {scheme} is not allowed (https only)")),
        }
        let port = url
            .port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let target = format!("{host}{port}{}", url.path());
        let allowed = self.allowed.iter().any(|entry| {
            target.starts_with(entry.as_str())
                && (target.len() == entry.len()
                    || entry.contains('/')
                    || target[entry.len()..].starts_with(['/', ':']))
        });
        (!allowed).then(|| format!("host {host} is not in MEDIA_ALLOWED_HOSTS"))
    }
}

/// A media job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaRecord {
    /// Its id (`GET /api/v1/media/{id}`).
    pub id: i64,
    /// `message`, `recording` or `voicemail`.
    pub owner_kind: String,
    /// The message or call id.
    pub owner_id: String,
    /// Where OpenPhone serves it.
    pub url: String,
    /// `pending`, `stored` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The content's SHA-256 (hex), once stored.
    pub sha256: Option<String>,
    /// Content type: the server's, else the event's.
    pub content_type: Option<String>,
    /// Size in bytes, once stored.
    pub size_bytes: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, owner_kind, owner_id, url, status, CAST(attempts AS BIGINT) AS attempts, sha256, COALESCE(content_type, declared_type) AS content_type, size_bytes, last_error";

/// The media jobs, a leased queue: the projection queues one job per (message or call, URL);
/// the fetcher claims due jobs for a lease and records each outcome; the API reads them.
/// [`Store`] keeps them in the `media` table (claims skip rows other replicas hold);
/// `records::MemoryRecords` in memory; both pass [`conformance::run`].
pub trait MediaJobs: Clone + Send + Sync + 'static {
    /// One media job.
    fn media(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<MediaRecord>, StoreError>> + Send;

    /// The media of a message or call in its order: a message's attachments as the message
    /// lists them, a call's recordings as the call does (then by id).
    fn media_of(
        &self,
        owner_id: &str,
    ) -> impl Future<Output = Result<Vec<MediaRecord>, StoreError>> + Send;

    /// Media jobs newest first, below id `before`, of `status` when given; at most `limit`.
    fn media_list(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<MediaRecord>, StoreError>> + Send;

    /// Claims up to `limit` pending jobs due at `now_ms` and not leased, oldest due first, for
    /// `lease_ms`.
    fn claim_media(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<MediaRecord>, StoreError>> + Send;

    /// Records a job's content as stored in `blob` (with the server's content type, when it
    /// gave one); counts the attempt and ends the lease. Only while the claim that took it
    /// still holds it (`held_until_ms`, the lease the claim set): `false`, and nothing
    /// written, when its lease passed and another claim took it over.
    fn media_stored(
        &self,
        id: i64,
        held_until_ms: i64,
        blob: &Blob,
        content_type: Option<String>,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failed attempt: `pending` again to retry at `next_attempt_ms`, or `failed`;
    /// counts the attempt and ends the lease. Only while the claim still holds the job, as
    /// [`MediaJobs::media_stored`].
    fn media_attempt_failed(
        &self,
        id: i64,
        held_until_ms: i64,
        status: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts failed jobs back to work (after an outage of the storage they come from, say):
    /// the one `id` names, or every failed job without one. Each is pending again, due at
    /// `now_ms`, with its attempts counted from zero and its last error kept until the next
    /// attempt. Returns how many; a job not failed is left alone.
    fn retry_failed_media(
        &self,
        id: Option<i64>,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

impl MediaJobs for Store {
    async fn media(&self, id: i64) -> Result<Option<MediaRecord>, StoreError> {
        self.fetch_optional(
            &format!("SELECT {COLUMNS} FROM media WHERE id = $1"),
            &[id.into()],
        )
        .await
    }

    async fn media_of(&self, owner_id: &str) -> Result<Vec<MediaRecord>, StoreError> {
        self.fetch_all(
            &format!("SELECT {COLUMNS} FROM media WHERE owner_id = $1 ORDER BY position, id"),
            &[owner_id.into()],
        )
        .await
    }

    async fn media_list(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MediaRecord>, StoreError> {
        self.fetch_all(
            &format!(
                "SELECT {COLUMNS} FROM media WHERE id < $1 AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3"
            ),
            &[
                before.unwrap_or(i64::MAX).into(),
                status.unwrap_or_default().into(),
                limit.into(),
            ],
        )
        .await
    }

    async fn claim_media(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<MediaRecord>, StoreError> {
        self.fetch_all(
            &format!(
                "UPDATE media SET lease_until_ms = $1 + $2 WHERE id IN (SELECT id FROM media \
                 WHERE status = 'pending' AND next_attempt_ms <= $1 AND lease_until_ms <= $1 \
                 ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"
            ),
            &[now_ms.into(), lease_ms.into(), limit.into()],
        )
        .await
    }

    async fn media_stored(
        &self,
        id: i64,
        held_until_ms: i64,
        blob: &Blob,
        content_type: Option<String>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let stored: Option<(i64,)> = self
            .fetch_optional(
                "UPDATE media SET status = 'stored', attempts = attempts + 1, lease_until_ms = 0, sha256 = $1, \
                 size_bytes = $2, content_type = $3, stored_ms = $4, last_error = NULL \
                 WHERE id = $5 AND status = 'pending' AND lease_until_ms = $6 RETURNING id",
                &[
                    blob.sha256.clone().into(),
                    blob.size.into(),
                    content_type.into(),
                    now_ms.into(),
                    Arg::from(id),
                    held_until_ms.into(),
                ],
            )
            .await?;
        Ok(stored.is_some())
    }

    async fn media_attempt_failed(
        &self,
        id: i64,
        held_until_ms: i64,
        status: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let failed: Option<(i64,)> = self
            .fetch_optional(
                "UPDATE media SET status = $1, attempts = attempts + 1, lease_until_ms = 0, next_attempt_ms = $2, \
                 last_error = $3 WHERE id = $4 AND status = 'pending' AND lease_until_ms = $5 RETURNING id",
                &[
                    status.into(),
                    next_attempt_ms.into(),
                    error.into(),
                    Arg::from(id),
                    held_until_ms.into(),
                ],
            )
            .await?;
        Ok(failed.is_some())
    }

    async fn retry_failed_media(&self, id: Option<i64>, now_ms: i64) -> Result<u64, StoreError> {
        const RETRY: &str = "UPDATE media SET status = 'pending', attempts = 0, next_attempt_ms = $1, \
             lease_until_ms = 0 WHERE status = 'failed'";
        let retried: Vec<(i64,)> = match id {
            Some(id) => {
                self.fetch_all(
                    &format!("{RETRY} AND id = $2 RETURNING id"),
                    &[now_ms.into(), id.into()],
                )
                .await?
            }
            None => {
                self.fetch_all(&format!("{RETRY} RETURNING id"), &[now_ms.into()])
                    .await?
            }
        };
        Ok(retried.len() as u64)
    }
}

/// The suite every [`MediaJobs`] must pass; the jobs come from the projection, so the store
/// must also take [`crate::records::Records`] changes.
pub mod conformance {
    use openphone_webhooks::Event;
    use serde_json::json;

    use super::{Blob, MediaJobs};
    use crate::projection::{OwnNumbers, changes};
    use crate::records::Records;

    /// Runs every case on `store`, whose media jobs must be empty.
    pub async fn run<S: MediaJobs + Records>(store: S) {
        let body = json!({"id": "EVmm", "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T15:00:00Z", "type": "message.received",
            "data": {"object": {"id": "ACmm", "object": "message", "from": "+15555550555",
            "to": ["+15555550001"], "direction": "incoming", "text": "Crack photos",
            "media": [{"url": "https://files.example/z.jpg", "type": "image/jpeg"},
                      {"url": "https://files.example/b.png"}],
            "status": "received", "createdAt": "2026-04-13T15:00:00Z", "phoneNumberId": "PN1"}}});
        let changes = changes(
            &Event::parse(body.to_string().as_bytes()).expect("event"),
            &OwnNumbers::default(),
        );
        // One job per (message, URL), however often the event is applied, listed in the
        // message's order (not the URLs'), also when the attachments were queued the other way
        // round.
        let reversed: Vec<_> = changes.iter().rev().cloned().collect();
        for changes in [&reversed, &changes] {
            store.apply(changes).await.expect("apply");
        }
        let jobs = store.media_of("ACmm").await.expect("read");
        let urls: Vec<&str> = jobs.iter().map(|job| job.url.as_str()).collect();
        assert_eq!(
            urls,
            ["https://files.example/z.jpg", "https://files.example/b.png"]
        );
        assert_eq!(
            (
                jobs[0].owner_kind.as_str(),
                jobs[0].status.as_str(),
                jobs[0].attempts
            ),
            ("message", "pending", 0)
        );
        assert_eq!(
            jobs[0].content_type.as_deref(),
            Some("image/jpeg"),
            "as declared"
        );
        assert_eq!(jobs[1].content_type, None);
        // Queued the other way round: the message's second attachment has the lower id.
        let (a, b) = (jobs[1].id, jobs[0].id);
        assert!(a < b, "queued in the order applied");

        // Claims hold their jobs for the lease.
        let now = 1_800_000_000_000;
        let claimed = store.claim_media(now, 60_000, 1).await.expect("claim");
        assert_eq!(claimed.iter().map(|job| job.id).collect::<Vec<_>>(), [a]);
        let rest = store.claim_media(now, 60_000, 10).await.expect("claim");
        assert_eq!(rest.iter().map(|job| job.id).collect::<Vec<_>>(), [b]);
        assert!(
            store
                .claim_media(now + 1, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );

        // Stored: the server's content type replaces the declared one.
        let blob = Blob {
            sha256: "ab".repeat(32),
            size: 2048,
        };
        assert!(
            store
                .media_stored(a, now + 60_000, &blob, Some("image/webp".into()), now + 5)
                .await
                .expect("stored")
        );
        let stored = store.media(a).await.expect("read").expect("job");
        assert_eq!(
            (stored.status.as_str(), stored.attempts, stored.size_bytes),
            ("stored", 1, Some(2048))
        );
        assert_eq!(stored.sha256.as_deref(), Some(blob.sha256.as_str()));
        assert_eq!(stored.content_type.as_deref(), Some("image/webp"));

        // A retry waits for its time; a final failure is never claimed again.
        assert!(
            store
                .media_attempt_failed(b, now + 60_000, "pending", now + 30_000, "HTTP 503")
                .await
                .expect("retry")
        );
        assert!(
            store
                .claim_media(now + 29_999, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let again = store
            .claim_media(now + 30_000, 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            again
                .iter()
                .map(|job| (job.id, job.attempts))
                .collect::<Vec<_>>(),
            [(b, 1)]
        );
        // A finish under a lease that passed (the claim at `now`) records nothing; the claim
        // that took the job over does.
        assert!(
            !store
                .media_attempt_failed(b, now + 60_000, "failed", 0, "late")
                .await
                .expect("late")
        );
        assert!(
            store
                .media_attempt_failed(b, now + 90_000, "failed", 0, "HTTP 404")
                .await
                .expect("failed")
        );
        assert!(
            !store
                .media_stored(b, now + 90_000, &blob, None, now)
                .await
                .expect("finished once")
        );
        assert!(
            store
                .claim_media(now + 99_999_999, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let failed = store.media(b).await.expect("read").expect("job");
        assert_eq!(
            (
                failed.status.as_str(),
                failed.attempts,
                failed.last_error.as_deref()
            ),
            ("failed", 2, Some("HTTP 404"))
        );
        // A failed job put back to work is due at once, its attempts from zero; a job not
        // failed is left alone.
        assert_eq!(
            store.retry_failed_media(Some(a), now).await.expect("retry"),
            0
        );
        assert_eq!(
            store.retry_failed_media(Some(b), now).await.expect("retry"),
            1
        );
        let retried = store.claim_media(now, 60_000, 10).await.expect("claim");
        assert_eq!(
            retried
                .iter()
                .map(|job| (job.id, job.status.as_str(), job.attempts))
                .collect::<Vec<_>>(),
            [(b, "pending", 0)]
        );
        assert!(
            store
                .media_attempt_failed(b, now + 60_000, "failed", 0, "HTTP 404")
                .await
                .expect("failed")
        );
        assert_eq!(store.retry_failed_media(None, now).await.expect("retry"), 1);
        store.claim_media(now, 60_000, 10).await.expect("claim");
        assert!(
            store
                .media_attempt_failed(b, now + 60_000, "failed", 0, "HTTP 404")
                .await
                .expect("failed")
        );
        let failed = store.media(b).await.expect("read").expect("job");
        assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 1));

        // Listed newest first, by status, in pages.
        let all = store.media_list(None, None, 10).await.expect("list");
        assert_eq!(all.iter().map(|job| job.id).collect::<Vec<_>>(), [b, a]);
        let failures = store
            .media_list(Some("failed"), None, 10)
            .await
            .expect("list");
        assert_eq!(failures.iter().map(|job| job.id).collect::<Vec<_>>(), [b]);
        let older = store.media_list(None, Some(b), 10).await.expect("list");
        assert_eq!(older.iter().map(|job| job.id).collect::<Vec<_>>(), [a]);
        assert!(store.media(-1).await.expect("read").is_none());

        // What events declare of one file merges in any order: the declared type given by
        // either, the first position.
        let media = |owner: &str, declared_type: Option<&str>, position: i64| {
            crate::projection::Change::Media {
                owner_kind: "message",
                owner_id: owner.to_owned(),
                url: "https://files.example/same.jpg".to_owned(),
                declared_type: declared_type.map(str::to_owned),
                position,
            }
        };
        for (owner, first, second) in [
            (
                "ACmerge1",
                media("ACmerge1", None, 1),
                media("ACmerge1", Some("image/jpeg"), 0),
            ),
            (
                "ACmerge2",
                media("ACmerge2", Some("image/jpeg"), 0),
                media("ACmerge2", None, 1),
            ),
        ] {
            store.apply(&[first]).await.expect("apply");
            store.apply(&[second]).await.expect("apply");
            let other = crate::projection::Change::Media {
                owner_kind: "message",
                owner_id: owner.to_owned(),
                url: "https://files.example/other.jpg".to_owned(),
                declared_type: None,
                position: 0,
            };
            store.apply(&[other]).await.expect("apply");
            let jobs = store.media_of(owner).await.expect("read");
            assert_eq!(
                jobs.iter()
                    .map(|job| (
                        job.url.rsplit('/').next().unwrap_or_default(),
                        job.content_type.as_deref()
                    ))
                    .collect::<Vec<_>>(),
                [("same.jpg", Some("image/jpeg")), ("other.jpg", None)],
                "{owner}: both at position 0, then by id"
            );
        }
    }
}

/// `error` with the causes its message leaves out, as `error: cause: cause` (see
/// [`crate::causes`]).
fn with_causes(error: &dyn std::error::Error) -> String {
    crate::causes(error).join(": ")
}

/// A blob written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
}

/// A stored blob's bytes, in chunks ([`BlobStore::stream`]).
pub type BlobStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// Content-addressed blobs: files under `DATA_DIR/blobs` by default, or objects in an object
/// store (S3 and compatible, via `BLOB_STORE_URL`) that every replica shares. Downloads are
/// staged in `DATA_DIR/blobs/tmp` either way.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    remote: Option<(Arc<dyn ObjectStore>, object_store::path::Path)>,
}

impl BlobStore {
    /// Blobs under `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            remote: None,
        }
    }

    /// Blobs in the object store at `url` (`s3://bucket/prefix`, `memory:///`), staged under
    /// `root`. Credentials and endpoint come from the `AWS_*` environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for
    /// S3-compatible services).
    ///
    /// # Errors
    /// The reason the URL or its settings are unusable.
    pub fn with_object_store(root: impl Into<PathBuf>, url: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|error| error.to_string())?;
        let options = std::env::vars()
            .filter(|(key, _)| key.starts_with("AWS_"))
            .map(|(key, value)| (key.to_ascii_lowercase(), value));
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, options).map_err(|error| error.to_string())?;
        Ok(Self {
            root: root.into(),
            remote: Some((Arc::from(store), prefix)),
        })
    }

    /// Where the blob with this hash lives on the local disk (when no object store is used).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join(prefix).join(sha256)
    }

    fn object(prefix: &object_store::path::Path, sha256: &str) -> object_store::path::Path {
        let shard = sha256.get(..2).unwrap_or("xx");
        prefix.clone().join(shard).join(sha256)
    }

    /// The size of the blob `sha256`, in bytes.
    ///
    /// # Errors
    /// The I/O error, `NotFound` when it is missing.
    pub async fn size(&self, sha256: &str) -> std::io::Result<u64> {
        Self::check_name(sha256)?;
        match &self.remote {
            None => Ok(tokio::fs::metadata(self.path(sha256)).await?.len()),
            Some((store, prefix)) => Ok(store
                .head(&Self::object(prefix, sha256))
                .await
                .map_err(object_error)?
                .size),
        }
    }

    /// The bytes of the blob `sha256` in `range` (within its [`BlobStore::size`]), streamed in
    /// chunks: a recording of 100 MB is never held in memory whole.
    ///
    /// # Errors
    /// `NotFound` when there is no such blob, or the error reading it.
    pub async fn stream(
        &self,
        sha256: &str,
        range: std::ops::Range<u64>,
    ) -> std::io::Result<BlobStream> {
        use futures_util::TryStreamExt;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        Self::check_name(sha256)?;
        if range.is_empty() {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        match &self.remote {
            None => {
                let mut file = tokio::fs::File::open(self.path(sha256)).await?;
                file.seek(std::io::SeekFrom::Start(range.start)).await?;
                let part = file.take(range.end - range.start);
                Ok(Box::pin(tokio_util::io::ReaderStream::new(part)))
            }
            Some((store, prefix)) => {
                let object = store
                    .get_opts(
                        &Self::object(prefix, sha256),
                        object_store::GetOptions::new().with_range(Some(range)),
                    )
                    .await
                    .map_err(object_error)?;
                Ok(Box::pin(object.into_stream().map_err(object_error)))
            }
        }
    }

    /// A blob's name is its SHA-256 in hex: anything else names no blob (and no path).
    fn check_name(sha256: &str) -> std::io::Result<()> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        Ok(())
    }

    /// Moves a staged, synced file into the store under its hash.
    async fn commit(&self, staged: &Path, sha256: &str) -> std::io::Result<()> {
        match &self.remote {
            None => {
                let path = self.path(sha256);
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::rename(staged, &path).await?;
                // The new name durable too, and the shard directory's own (it may be new),
                // before the job is recorded as stored: a power loss must not leave a stored
                // job whose file is gone.
                for directory in path.ancestors().skip(1).take(2) {
                    tokio::fs::File::open(directory).await?.sync_all().await?;
                }
                Ok(())
            }
            Some((store, prefix)) => {
                // Streamed from the staged file (a multipart upload past 10 MB), never read
                // into memory whole: four recordings of 100 MB at once would be 400 MB.
                use tokio::io::AsyncWriteExt;
                let mut file = tokio::fs::File::open(staged).await?;
                let mut upload = object_store::buffered::BufWriter::new(
                    store.clone(),
                    Self::object(prefix, sha256),
                );
                let uploaded = async {
                    tokio::io::copy(&mut file, &mut upload).await?;
                    upload.shutdown().await
                }
                .await;
                if let Err(error) = uploaded {
                    if let Err(abort) = upload.abort().await {
                        tracing::warn!(error = %abort, "media: an unfinished upload could not be aborted");
                    }
                    return Err(error);
                }
                tokio::fs::remove_file(staged).await
            }
        }
    }

    /// Removes staged downloads a process left when it stopped mid-download (a crash, a kill):
    /// files of the staging directory last changed before `cutoff`. Returns how many.
    ///
    /// # Errors
    /// The I/O error reading the directory (a missing one holds nothing).
    pub async fn sweep_staging(&self, cutoff: std::time::SystemTime) -> std::io::Result<usize> {
        let mut entries = match tokio::fs::read_dir(self.root.join("tmp")).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            // Another replica may rename or remove a file meanwhile: not this sweep's concern.
            let gone = |error: &std::io::Error| error.kind() == std::io::ErrorKind::NotFound;
            let metadata = match entry.metadata().await {
                Ok(metadata) => metadata,
                Err(error) if gone(&error) => continue,
                Err(error) => return Err(error),
            };
            if metadata.is_file() && metadata.modified()? < cutoff {
                match tokio::fs::remove_file(entry.path()).await {
                    Ok(()) => removed += 1,
                    Err(error) if gone(&error) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(removed)
    }

    fn temporary(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }
}

fn object_error(error: object_store::Error) -> std::io::Error {
    match error {
        object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound.into(),
        other => std::io::Error::other(other),
    }
}

/// Why a download failed.
#[derive(Debug)]
enum Failure {
    /// Trying again may work (network, 5xx, 429, timeout).
    Transient(String),
    /// It will not (refused URL, 4xx, too large).
    Permanent(String),
}

/// How old a staged download must be, at least, to be taken for one a stopped process left.
pub const STAGING_LEFT_AFTER: Duration = Duration::from_secs(3600);

/// Downloads queued media into the blob store.
pub struct MediaFetcher {
    /// The database.
    pub store: Store,
    /// Where blobs go.
    pub blobs: BlobStore,
    /// What may be fetched.
    pub policy: MediaPolicy,
    /// The clock.
    pub clock: Clock,
    /// Metrics.
    pub metrics: Metrics,
    /// Where failures are reported.
    pub alerter: crate::alerts::Alerter,
}

impl MediaFetcher {
    fn http(&self) -> Result<reqwest::Client, reqwest::Error> {
        let policy = self.policy.clone();
        reqwest::Client::builder()
            .timeout(self.policy.timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if let Some(reason) = policy.refusal(attempt.url()) {
                    attempt.error(format!("redirect refused: {reason}"))
                } else {
                    attempt.follow()
                }
            }))
            .build()
    }

    /// Downloads due media until `stop` turns true: again at once while some were due, else
    /// a second later. `stop` is checked before each round: the downloads in hand finish, no
    /// new ones start. Without an HTTP client (which only a broken TLS set-up prevents)
    /// nothing is downloaded, with an error logged, rather than through a client without the
    /// timeout and the redirect checks.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let http = match self.http() {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "media: no HTTP client; nothing will be downloaded");
                return;
            }
        };
        // Staged files older than any download can last were left by a process that stopped
        // mid-download (another replica sharing `DATA_DIR` may be writing newer ones).
        let age = STAGING_LEFT_AFTER.max(self.policy.timeout.saturating_mul(2));
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        match self.blobs.sweep_staging(cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "media: removed downloads left half done"),
            Err(error) => tracing::warn!(%error, "media: the staging directory could not be swept"),
        }
        crate::app::poll_until_stopped(stop, "media", || self.fetch_due(&http)).await;
    }

    /// Downloads the media due now (up to 4 at once); returns how many it handled.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the jobs cannot be read or updated.
    pub async fn fetch_due(&self, http: &reqwest::Client) -> Result<usize, StoreError> {
        let now_ms = self.now_ms();
        let lease_ms = i64::try_from(self.policy.timeout.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(60_000);
        let due = self.store.claim_media(now_ms, lease_ms, 4).await?;
        let held = now_ms.saturating_add(lease_ms);
        let taken_over = |id: i64| {
            tracing::warn!(
                id,
                "media job: its lease passed during the download; the claim that took it over records the outcome"
            );
        };
        let results =
            futures_util::future::join_all(due.iter().map(|job| self.fetch(http, job))).await;
        for (job, result) in due.iter().zip(results) {
            let now_ms = self.now_ms();
            match result {
                Ok((blob, content_type)) => {
                    tracing::info!(id = job.id, owner = %job.owner_id, size = blob.size, "media stored");
                    self.metrics.media_download("stored");
                    if !self
                        .store
                        .media_stored(job.id, held, &blob, content_type, now_ms)
                        .await?
                    {
                        taken_over(job.id);
                    }
                }
                Err(Failure::Transient(reason)) if job.attempts + 1 < MAX_ATTEMPTS => {
                    let backoff = 5_000i64 << job.attempts.clamp(0, 12);
                    tracing::warn!(id = job.id, owner = %job.owner_id, %reason, "media download will be retried");
                    self.metrics.media_download("retry");
                    if !self
                        .store
                        .media_attempt_failed(job.id, held, "pending", now_ms + backoff, &reason)
                        .await?
                    {
                        taken_over(job.id);
                    }
                }
                Err(Failure::Transient(reason) | Failure::Permanent(reason)) => {
                    tracing::error!(id = job.id, owner = %job.owner_id, url_host = %host_of(&job.url), %reason, "media download failed for good");
                    self.metrics.media_download("failed");
                    if !self
                        .store
                        .media_attempt_failed(job.id, held, "failed", 0, &reason)
                        .await?
                    {
                        taken_over(job.id);
                        continue;
                    }
                    self.alerter
                        .raise(
                            "media_download_failed",
                            "media_download_failed",
                            "Media downloads are failing",
                            Some(format!(
                                "Media {} of {} {} ({}): {reason}. Failed media: GET /api/v1/media?status=failed",
                                job.id, job.owner_kind, job.owner_id, host_of(&job.url)
                            )),
                        )
                        .await?;
                }
            }
        }
        Ok(due.len())
    }

    fn now_ms(&self) -> i64 {
        unix_ms((self.clock)())
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        job: &MediaRecord,
    ) -> Result<(Blob, Option<String>), Failure> {
        let url = reqwest::Url::parse(&job.url)
            .map_err(|error| Failure::Permanent(format!("invalid URL: {error}")))?;
        if let Some(reason) = self.policy.refusal(&url) {
            return Err(Failure::Permanent(reason));
        }
        // Reasons go into alerts: without the URL, whose path may be all that protects a
        // recording (the host is named where it matters).
        let mut response = http.get(url).send().await.map_err(|error| {
            let redirect = error.is_redirect();
            let error = error.without_url();
            if redirect {
                Failure::Permanent(format!("redirect: {}", with_causes(&error)))
            } else {
                Failure::Transient(format!("request failed: {}", with_causes(&error)))
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("HTTP {status}");
            return Err(
                if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                    Failure::Permanent(reason)
                } else {
                    Failure::Transient(reason)
                },
            );
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.policy.max_bytes)
        {
            return Err(Failure::Permanent(format!(
                "larger than MEDIA_MAX_BYTES ({} bytes)",
                self.policy.max_bytes
            )));
        }
        // The server's type only: without one, reads fall back to the declared type, which
        // events merge in any order (so it is not frozen here at the download's time).
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let temporary = self.blobs.temporary();
        let written = self.write(&mut response, &temporary).await;
        match written {
            Ok(blob) => Ok((blob, content_type)),
            Err(failure) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                Err(failure)
            }
        }
    }

    async fn write(
        &self,
        response: &mut reqwest::Response,
        temporary: &Path,
    ) -> Result<Blob, Failure> {
        let io = |error: std::io::Error| Failure::Transient(format!("blob store: {error}"));
        if let Some(parent) = temporary.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut file = tokio::fs::File::create(temporary).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            Failure::Transient(format!(
                "download interrupted: {}",
                with_causes(&error.without_url())
            ))
        })? {
            size += chunk.len() as u64;
            if size > self.policy.max_bytes {
                return Err(Failure::Permanent(format!(
                    "larger than MEDIA_MAX_BYTES ({} bytes)",
                    self.policy.max_bytes
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        drop(file);
        let sha256 = crate::ingest::hex(&hasher.finalize());
        self.blobs.commit(temporary, &sha256).await.map_err(io)?;
        Ok(Blob {
            sha256,
            size: i64::try_from(size).unwrap_or(i64::MAX),
        })
    }
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(policy: &MediaPolicy, url: &str) -> Option<String> {
        policy.refusal(&reqwest::Url::parse(url).unwrap())
    }

    #[test]
    fn only_https_urls_on_allowed_hosts_and_prefixes_pass() {
        let policy = MediaPolicy::default();
        assert_eq!(
            refusal(&policy, "https://storage.googleapis.com/opstatics/abc.jpg"),
            None
        );
        assert_eq!(
            refusal(&policy, "https://storage.googleapis.com/opstatics-dev/abc"),
            None
        );
        assert_eq!(refusal(&policy, "https://files.openphone.co/x.mp3"), None);
        assert!(refusal(&policy, "https://storage.googleapis.com/evil/abc.jpg").is_some());
        assert!(refusal(&policy, "https://storage.googleapis.com/opstatics-evil/a").is_some());
        assert!(refusal(&policy, "https://files.openphone.co.evil.com/x").is_some());
        assert!(
            refusal(&policy, "http://files.openphone.co/x.mp3")
                .unwrap()
                .contains("https only")
        );
        assert!(refusal(&policy, "file:///etc/passwd").is_some());
        let test = MediaPolicy {
            allowed: vec!["127.0.0.1".into()],
            http_hosts: vec!["127.0.0.1".into()],
            ..MediaPolicy::default()
        };
        assert_eq!(refusal(&test, "http://127.0.0.1:4567/a.jpg"), None);
        assert!(refusal(&test, "http://localhost:4567/a.jpg").is_some());
    }
}
