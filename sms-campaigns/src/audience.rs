//! Building audiences: streaming CSV import into a list, and the phone validation every list
//! goes through before a campaign may use it.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use openphone_types::E164;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::phone::{Region, normalize};
use crate::template::field_key;
use crate::validation::{LineType, PhoneValidator};
use crate::{CampaignStore, Error, ListId, MemberStatus, NewContact};

/// Where a CSV column goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "field", content = "name")]
pub enum Column {
    /// First name.
    FirstName,
    /// Last name.
    LastName,
    /// Full name, split at the first space when there is no first or last name column.
    FullName,
    /// The phone number.
    Phone,
    /// Email address.
    Email,
    /// Postal address.
    Address,
    /// Company.
    Company,
    /// Kept as an attribute under this key (usable as a `{{token}}`).
    Attribute(String),
    /// Dropped.
    Ignore,
}

impl Column {
    /// The column a header means: the usual spellings (`First Name`, `first_name`,
    /// `FIRSTNAME`, `Mobile`, `Cell Phone`, `E-mail`, ...) with case, spaces, dashes and
    /// underscores ignored; anything else is an attribute named by its normalized header.
    pub fn detect(header: &str) -> Column {
        let key = field_key(header);
        match key.replace('_', "").as_str() {
            "firstname" | "first" | "fname" | "givenname" => Column::FirstName,
            "lastname" | "last" | "lname" | "surname" | "familyname" => Column::LastName,
            "fullname" | "name" | "contactname" | "contact" => Column::FullName,
            "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "cell"
            | "cellphone" | "cellnumber" | "telephone" | "tel" | "number" => Column::Phone,
            "email" | "emailaddress" | "mail" => Column::Email,
            "address" | "streetaddress" | "street" | "mailingaddress" | "fulladdress" => {
                Column::Address
            }
            "company" | "companyname" | "business" | "organization" | "organisation" => {
                Column::Company
            }
            "" => Column::Ignore,
            _ => Column::Attribute(key),
        }
    }

    /// Parses an explicit mapping target: `first_name`, `last_name`, `full_name`, `phone`,
    /// `email`, `address`, `company`, `ignore`, or any other name for an attribute.
    pub fn parse(target: &str) -> Column {
        match field_key(target).as_str() {
            "first_name" => Column::FirstName,
            "last_name" => Column::LastName,
            "full_name" => Column::FullName,
            "phone" => Column::Phone,
            "email" => Column::Email,
            "address" => Column::Address,
            "company" => Column::Company,
            "ignore" | "" => Column::Ignore,
            other => Column::Attribute(other.to_owned()),
        }
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CsvOptions {
    /// The region of numbers without a country code (default `US`).
    #[serde(default)]
    pub region: Option<String>,
    /// Explicit mapping: header (as written in the file) to target ([`Column::parse`]);
    /// it overrides detection for those headers.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
}

/// A header and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct MappedColumn {
    /// The header as written.
    pub header: String,
    /// Where its values go.
    pub column: Column,
}

/// One data row, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRow {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// The contact, or why the row is refused.
    pub contact: Result<NewContact, String>,
}

/// Reads a CSV file row by row (bounded memory) into contacts.
pub struct CsvRows<R: Read> {
    reader: csv::Reader<R>,
    columns: Vec<MappedColumn>,
    region: Region,
    record: csv::StringRecord,
    line: u64,
}

/// How many lines of one field that look like rows of the file (a phone number where a phone
/// column is) make it taken for a quote never closed.
const ROW_LIKE_LINES: usize = 2;

impl<R: Read> CsvRows<R> {
    /// Opens `input`: reads the header row and maps it. Refuses a file without a header, or
    /// whose columns include no phone column.
    pub fn open(input: R, options: &CsvOptions) -> Result<Self, Error> {
        let region = match &options.region {
            Some(code) => Region::parse(code)?,
            None => Region::default(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader.headers().map_err(Error::Csv)?.clone();
        if headers.is_empty() || headers.iter().all(str::is_empty) {
            return Err(Error::Invalid("the CSV file has no header row".into()));
        }
        for header in options.mapping.keys() {
            if !headers.iter().any(|h| h == header) {
                return Err(Error::Invalid(format!(
                    "mapping names column {header:?}, which the file does not have"
                )));
            }
        }
        let columns: Vec<MappedColumn> = headers
            .iter()
            .map(|header| MappedColumn {
                header: header.to_owned(),
                column: options
                    .mapping
                    .get(header)
                    .map_or_else(|| Column::detect(header), |target| Column::parse(target)),
            })
            .collect();
        if !columns.iter().any(|c| c.column == Column::Phone) {
            return Err(Error::Invalid(format!(
                "no phone column among {:?}: name one in the mapping",
                headers.iter().collect::<Vec<_>>()
            )));
        }
        Ok(CsvRows {
            reader,
            columns,
            region,
            record: csv::StringRecord::new(),
            line: 1,
        })
    }

    /// The columns and where they go.
    pub fn columns(&self) -> &[MappedColumn] {
        &self.columns
    }

    /// The next row, `None` at the end. A malformed file (bad UTF-8, broken quoting) is an
    /// error; a bad row is a [`ParsedRow`] with the reason.
    pub fn next_row(&mut self) -> Result<Option<ParsedRow>, Error> {
        loop {
            if !self
                .reader
                .read_record(&mut self.record)
                .map_err(Error::Csv)?
            {
                return Ok(None);
            }
            self.line = self.record.position().map_or(self.line + 1, |p| p.line());
            if self.record.iter().all(str::is_empty) {
                continue;
            }
            return Ok(Some(ParsedRow {
                line: self.line,
                contact: self.parse_record(),
            }));
        }
    }

    /// Whether `line` (inside a field) reads as a row of this file: split at its commas, it
    /// has a valid phone number where a phone column is.
    fn looks_like_a_row(&self, line: &str) -> bool {
        let cells: Vec<&str> = line.split(',').collect();
        self.columns.iter().zip(&cells).any(|(mapped, cell)| {
            mapped.column == Column::Phone
                && normalize(cell.trim().trim_matches('"'), self.region).is_ok()
        })
    }

    fn parse_record(&self) -> Result<NewContact, String> {
        let mut contact = NewContact::default();
        let mut full_name = None;
        let mut phones = Vec::new();
        for (value, mapped) in self.record.iter().zip(&self.columns) {
            if value.is_empty() {
                continue;
            }
            // A quote opened and never closed makes the rest of the file one field: its rows
            // would vanish into it without a word. A note may span lines; lines that look
            // like rows of this file (a valid phone number where a phone column is) are rows.
            let row_like = value
                .lines()
                .skip(1)
                .filter(|line| self.looks_like_a_row(line))
                .count();
            if row_like >= ROW_LIKE_LINES {
                return Err(format!(
                    "column {:?} spans {} lines, {row_like} of them like rows of this file: \
                     a quote (\") opened and not closed? the rows after this line were read \
                     into it",
                    mapped.header,
                    value.lines().count()
                ));
            }
            let value = value.to_owned();
            match &mapped.column {
                Column::FirstName => contact.first_name = Some(value),
                Column::LastName => contact.last_name = Some(value),
                Column::FullName => full_name = Some(value),
                Column::Phone => phones.push((mapped.header.to_lowercase(), value)),
                Column::Email => contact.email = Some(value),
                Column::Address => contact.address = Some(value),
                Column::Company => contact.company = Some(value),
                Column::Attribute(key) => {
                    contact.attributes.insert(key.clone(), value);
                }
                Column::Ignore => {}
            }
        }
        if let Some(full) = full_name
            && contact.first_name.is_none()
            && contact.last_name.is_none()
        {
            let mut parts = full.splitn(2, ' ');
            contact.first_name = parts.next().map(str::to_owned);
            contact.last_name = parts
                .next()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
        }
        if phones.is_empty() {
            return Err("no phone number".to_owned());
        }
        // Mobile and cell columns first.
        phones.sort_by_key(|(header, _)| !(header.contains("mobile") || header.contains("cell")));
        let mut reasons = Vec::new();
        for (_, value) in &phones {
            match normalize(value, self.region) {
                Ok(phone) => {
                    contact.phone = Some(phone);
                    return Ok(contact);
                }
                Err(reason) => reasons.push(reason),
            }
        }
        Err(reasons.join("; "))
    }
}

/// What an import would do: the mapping and the first rows, nothing written.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ImportPreview {
    /// Headers and where they go.
    pub columns: Vec<MappedColumn>,
    /// The first rows, parsed.
    pub rows: Vec<PreviewRow>,
}

/// A row of a preview.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PreviewRow {
    /// Line number.
    pub line: u64,
    /// The contact the row gives.
    pub contact: Option<NewContact>,
    /// Why the row would be rejected.
    pub rejected: Option<String>,
}

/// Reads the header and the first `rows` data rows of `input`.
pub fn preview<R: Read>(
    input: R,
    options: &CsvOptions,
    rows: usize,
) -> Result<ImportPreview, Error> {
    let mut reader = CsvRows::open(input, options)?;
    let mut preview = ImportPreview {
        columns: reader.columns().to_vec(),
        rows: Vec::new(),
    };
    while preview.rows.len() < rows {
        let Some(row) = reader.next_row()? else { break };
        let (contact, rejected) = match row.contact {
            Ok(contact) => (Some(contact), None),
            Err(reason) => (None, Some(reason)),
        };
        preview.rows.push(PreviewRow {
            line: row.line,
            contact,
            rejected,
        });
    }
    Ok(preview)
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Rejection {
    /// Line number.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ImportSummary {
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    /// Contacts created.
    pub created: u64,
    /// Existing contacts (same number) added to the list instead of duplicated.
    pub existing_added: u64,
    /// Rows whose contact was already in the list before the import.
    pub already_in_list: u64,
    /// Rows repeating a number seen earlier in the same file.
    pub duplicates_in_file: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// The reasons, row by row (the first [`MAX_REJECTIONS_LISTED`]).
    pub rejections: Vec<Rejection>,
}

/// How many rejections a summary lists one by one (all are counted).
pub const MAX_REJECTIONS_LISTED: usize = 1_000;

/// Imports every row of `input` into `list`: a new number creates a contact, a known one
/// adds the existing contact. `progress` is called every 1,000 rows with the summary so far.
/// Memory stays bounded by the numbers seen (to count duplicates within the file).
pub async fn import_csv<S: CampaignStore, R: Read>(
    store: &S,
    list: &ListId,
    input: R,
    options: &CsvOptions,
    now: OffsetDateTime,
    mut progress: impl FnMut(&ImportSummary),
) -> Result<ImportSummary, Error> {
    store.list(list).await?;
    let mut reader = CsvRows::open(input, options)?;
    let mut summary = ImportSummary::default();
    let mut seen: HashSet<E164> = HashSet::new();
    // A file that breaks off (bad UTF-8 at line 5,000) keeps what came before: importing is
    // idempotent, so the error says what was written and to import the fixed file again.
    while let Some(row) = reader.next_row().map_err(|error| match error {
        Error::Csv(error) => Error::Invalid(format!(
            "the CSV file could not be read after its row {}: {error}; the {} row(s) before \
             were imported ({} created, {} existing added, {} already in the list, {} \
             duplicates in the file, {} rejected); fix the file and import it again (rows \
             already imported are not added twice)",
            summary.rows,
            summary.rows,
            summary.created,
            summary.existing_added,
            summary.already_in_list,
            summary.duplicates_in_file,
            summary.rejected,
        )),
        other => other,
    })? {
        summary.rows += 1;
        match row.contact {
            Err(reason) => {
                summary.rejected += 1;
                if summary.rejections.len() < MAX_REJECTIONS_LISTED {
                    summary.rejections.push(Rejection {
                        line: row.line,
                        reason,
                    });
                }
            }
            Ok(contact) => {
                let phone = contact
                    .phone
                    .clone()
                    .ok_or_else(|| Error::Invalid("row without phone".into()))?;
                if !seen.insert(phone) {
                    summary.duplicates_in_file += 1;
                } else {
                    let (stored, created) = store.upsert_contact(contact, now).await?;
                    let added = store.add_member(list, &stored.id, now).await?;
                    match (created, added) {
                        (true, _) => summary.created += 1,
                        (false, true) => summary.existing_added += 1,
                        (false, false) => summary.already_in_list += 1,
                    }
                }
            }
        }
        if summary.rows % 1_000 == 0 {
            progress(&summary);
        }
    }
    progress(&summary);
    Ok(summary)
}

/// What validating a list did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ValidationSummary {
    /// Members validated this time.
    pub validated: u64,
    /// Of those, answered from the cache.
    pub cached: u64,
    /// Valid mobiles (kept).
    pub mobile: u64,
    /// Valid numbers of a known non-mobile type: landline, VoIP, toll-free, special
    /// (excluded).
    pub landline: u64,
    /// Invalid numbers (excluded).
    pub invalid: u64,
    /// Valid numbers whose line type the validator does not know (kept).
    pub unknown: u64,
    /// Lookups that failed (left unvalidated; validate again later).
    pub errors: u64,
}

/// Validates every unvalidated member of `list` with `validator` (each number once, cached),
/// keeping valid mobiles and valid numbers of unknown type, excluding the rest with the
/// reason. `progress` is called every 100 members.
pub async fn validate_list<S: CampaignStore, V: PhoneValidator>(
    store: &S,
    list: &ListId,
    validator: &V,
    now: OffsetDateTime,
    mut progress: impl FnMut(&ValidationSummary),
) -> Result<ValidationSummary, Error> {
    store.list(list).await?;
    let mut summary = ValidationSummary::default();
    let mut after = None;
    loop {
        let page = store
            .members(list, Some(MemberStatus::Unvalidated), after, 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        for member in page {
            let phone = &member.contact.phone;
            let validation = match store.cached_validation(phone).await? {
                Some(cached) => {
                    summary.cached += 1;
                    cached
                }
                None => match validator.validate(phone).await {
                    Ok(validation) => {
                        store.cache_validation(phone, &validation, now).await?;
                        validation
                    }
                    Err(error) => {
                        tracing::warn!(phone = %phone.masked(), error = %error, "phone validation failed");
                        summary.errors += 1;
                        continue;
                    }
                },
            };
            summary.validated += 1;
            let note = if !validation.valid {
                summary.invalid += 1;
                Some("invalid number".to_owned())
            } else {
                match validation.line_type {
                    LineType::Mobile => {
                        summary.mobile += 1;
                        None
                    }
                    LineType::Unknown => {
                        summary.unknown += 1;
                        None
                    }
                    other => {
                        summary.landline += 1;
                        Some(format!(
                            "{} line: cannot receive SMS reliably",
                            other.as_str()
                        ))
                    }
                }
            };
            let status = if validation.keeps() {
                MemberStatus::Kept
            } else {
                MemberStatus::Excluded
            };
            store
                .set_member_status(
                    list,
                    member.position,
                    status,
                    Some(validation.line_type),
                    note,
                )
                .await?;
            if summary.validated % 100 == 0 {
                progress(&summary);
            }
        }
    }
    progress(&summary);
    Ok(summary)
}
