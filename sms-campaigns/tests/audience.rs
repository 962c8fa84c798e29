//! CSV import and list validation.

mod support;

use std::io::Read;

use openphone_types::E164;
use sms_campaigns::audience::{Column, CsvOptions, import_csv, preview, validate_list};
use sms_campaigns::{
    CampaignStore, Error, LineType, MemberStatus, MemoryStore, NewContact, PhoneValidator,
    Validation,
};
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

#[test]
fn usual_headers_are_detected() {
    for (header, column) in [
        ("First Name", Column::FirstName),
        ("first_name", Column::FirstName),
        ("FIRSTNAME", Column::FirstName),
        ("Last-Name", Column::LastName),
        ("Full Name", Column::FullName),
        ("Name", Column::FullName),
        ("Phone", Column::Phone),
        ("Mobile Phone", Column::Phone),
        ("cell", Column::Phone),
        ("E-mail", Column::Email),
        ("Email Address", Column::Email),
        ("Street Address", Column::Address),
        ("Company Name", Column::Company),
        ("Job Type", Column::Attribute("job_type".into())),
    ] {
        assert_eq!(Column::detect(header), column, "{header}");
    }
}

#[test]
fn preview_shows_the_mapping_and_rows_without_writing() {
    let csv =
        "Full Name,Mobile,Job Type,Notes\nAna Lopez,(415) 555-0101,pier,\nBad Row,12,slab,x\n";
    let preview = preview(csv.as_bytes(), &CsvOptions::default(), 10).expect("preview");
    let columns: Vec<_> = preview.columns.iter().map(|c| c.column.clone()).collect();
    assert_eq!(
        columns,
        vec![
            Column::FullName,
            Column::Phone,
            Column::Attribute("job_type".into()),
            Column::Attribute("notes".into())
        ]
    );
    let first = preview.rows[0].contact.as_ref().expect("first row");
    assert_eq!(
        (first.first_name.as_deref(), first.last_name.as_deref()),
        (Some("Ana"), Some("Lopez"))
    );
    assert_eq!(first.phone.as_ref().map(E164::as_str), Some("+14155550101"));
    assert_eq!(first.attributes["job_type"], "pier");
    assert_eq!(preview.rows[1].line, 3);
    assert!(
        preview.rows[1]
            .rejected
            .as_deref()
            .is_some_and(|r| r.contains("12"))
    );
}

#[test]
fn a_file_without_a_phone_column_or_with_a_wrong_mapping_is_refused() {
    let error = preview(
        "Name,Email\nAna,a@x.com\n".as_bytes(),
        &CsvOptions::default(),
        5,
    )
    .expect_err("no phone");
    assert!(error.to_string().contains("no phone column"), "{error}");
    let options = CsvOptions {
        mapping: [("Tel 2".to_owned(), "phone".to_owned())].into(),
        ..CsvOptions::default()
    };
    let error =
        preview("Name,Tel\nAna,4155550101\n".as_bytes(), &options, 5).expect_err("bad mapping");
    assert!(error.to_string().contains("Tel 2"), "{error}");
}

#[tokio::test]
async fn an_explicit_mapping_overrides_detection() {
    let store = MemoryStore::new();
    let list = store.create_list("UK", NOW).await.expect("list");
    let csv = "Who,Contact No,Name\nAna,020 7946 0958,ignored\n";
    let options = CsvOptions {
        region: Some("GB".into()),
        mapping: [
            ("Who".to_owned(), "first_name".to_owned()),
            ("Contact No".to_owned(), "phone".to_owned()),
            ("Name".to_owned(), "ignore".to_owned()),
        ]
        .into(),
    };
    let summary = import_csv(&store, &list.id, csv.as_bytes(), &options, NOW, |_| {})
        .await
        .expect("import");
    assert_eq!(summary.created, 1);
    let member = &store
        .members(&list.id, None, None, 5)
        .await
        .expect("members")[0];
    assert_eq!(member.contact.phone.as_str(), "+442079460958");
    assert_eq!(member.contact.first_name.as_deref(), Some("Ana"));
    assert!(member.contact.attributes.is_empty());
}

#[tokio::test]
async fn import_summarizes_created_existing_duplicates_and_rejections() {
    let store = MemoryStore::new();
    let (existing, _) = store
        .upsert_contact(
            NewContact {
                phone: Some(support::phone(1)),
                first_name: Some("Old".into()),
                ..NewContact::default()
            },
            NOW,
        )
        .await
        .expect("existing");
    let list = store.create_list("Leads", NOW).await.expect("list");
    let csv = "first_name,phone,email\n\
               Ana,415-555-0001,ana@example.com\n\
               Ben,415 555 0002,\n\
               Ben again,(415) 555-0002,\n\
               ,not a number,\n\
               Cy,,\n\
               \n\
               Di,4155550003\n";
    let mut progress = 0;
    let summary = import_csv(
        &store,
        &list.id,
        csv.as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| progress += 1,
    )
    .await
    .expect("import");
    assert!(progress >= 1, "progress is reported");
    assert_eq!(summary.rows, 6, "blank lines are not rows");
    assert_eq!(
        (
            summary.created,
            summary.existing_added,
            summary.duplicates_in_file,
            summary.rejected
        ),
        (2, 1, 1, 2)
    );
    let lines: Vec<u64> = summary.rejections.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![5, 6]);
    assert!(summary.rejections[1].reason.contains("no phone"));
    let members = store
        .members(&list.id, None, None, 10)
        .await
        .expect("members");
    assert_eq!(
        members[0].contact.id, existing.id,
        "the existing contact joins the list"
    );
    assert_eq!(
        members[0].contact.first_name.as_deref(),
        Some("Old"),
        "and is not overwritten"
    );
    // Importing again adds nobody twice.
    let again = import_csv(
        &store,
        &list.id,
        csv.as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect("again");
    assert_eq!(
        (again.created, again.existing_added, again.already_in_list),
        (0, 0, 3)
    );
    assert_eq!(store.list(&list.id).await.expect("list").members, 3);
}

/// Generates a CSV file row by row as it is read: the whole file never exists in memory.
struct GeneratedCsv {
    next_row: u32,
    rows: u32,
    buffer: Vec<u8>,
    offset: usize,
}

impl Read for GeneratedCsv {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.offset == self.buffer.len() {
            self.buffer.clear();
            self.offset = 0;
            if self.next_row == 0 {
                self.buffer
                    .extend_from_slice(b"First Name,Last Name,Cell,Job\n");
            } else if self.next_row > self.rows {
                return Ok(0);
            } else {
                let n = self.next_row;
                self.buffer.extend_from_slice(
                    format!(
                        "Name{n},Last{n},(212) 5{:02}-{:04},job{n}\n",
                        n / 10_000,
                        n % 10_000
                    )
                    .as_bytes(),
                );
            }
            self.next_row += 1;
        }
        let len = out.len().min(self.buffer.len() - self.offset);
        out[..len].copy_from_slice(&self.buffer[self.offset..self.offset + len]);
        self.offset += len;
        Ok(len)
    }
}

#[tokio::test]
async fn a_100k_row_file_streams_through() {
    let store = MemoryStore::new();
    let list = store.create_list("Big", NOW).await.expect("list");
    let input = GeneratedCsv {
        next_row: 0,
        rows: 100_000,
        buffer: Vec::new(),
        offset: 0,
    };
    let mut reports = 0;
    let summary = import_csv(&store, &list.id, input, &CsvOptions::default(), NOW, |_| {
        reports += 1
    })
    .await
    .expect("import");
    assert_eq!(summary.rows, 100_000);
    assert_eq!(summary.created + summary.rejected, 100_000, "{summary:?}");
    assert!(summary.created > 90_000, "{summary:?}");
    assert!(summary.rejections.len() <= sms_campaigns::audience::MAX_REJECTIONS_LISTED);
    assert!(reports >= 100, "progress every 1,000 rows");
    assert_eq!(
        store.list(&list.id).await.expect("list").members,
        summary.created
    );
}

/// A validator answering from a table, counting lookups.
struct Table {
    lookups: std::sync::atomic::AtomicU32,
}

impl PhoneValidator for Table {
    async fn validate(&self, phone: &E164) -> Result<Validation, Error> {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let last = phone.as_str().chars().last().expect("digit");
        let (valid, line_type) = match last {
            '0' => (true, LineType::Mobile),
            '1' => (true, LineType::Landline),
            '2' => (false, LineType::Unknown),
            '3' => (true, LineType::Unknown),
            '4' => (true, LineType::Voip),
            _ => {
                return Err(Error::Validator {
                    reason: "quota reached".into(),
                    source: None,
                });
            }
        };
        Ok(Validation {
            valid,
            line_type,
            carrier: None,
            source: "table".into(),
        })
    }
}

#[tokio::test]
async fn validation_keeps_mobiles_and_unknowns_and_caches_per_number() {
    let store = MemoryStore::new();
    let list = store.create_list("Leads", NOW).await.expect("list");
    let csv = "phone\n4155550100\n4155550101\n4155550102\n4155550103\n4155550104\n4155550105\n";
    import_csv(
        &store,
        &list.id,
        csv.as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect("import");
    let validator = Table { lookups: 0.into() };
    let summary = validate_list(&store, &list.id, &validator, NOW, |_| {})
        .await
        .expect("validate");
    assert_eq!(
        (
            summary.validated,
            summary.mobile,
            summary.landline,
            summary.invalid,
            summary.unknown,
            summary.errors
        ),
        (5, 1, 2, 1, 1, 1)
    );
    let statuses: Vec<MemberStatus> = store
        .members(&list.id, None, None, 10)
        .await
        .expect("members")
        .iter()
        .map(|m| m.status)
        .collect();
    use MemberStatus::*;
    assert_eq!(
        statuses,
        vec![Kept, Excluded, Excluded, Kept, Excluded, Unvalidated]
    );
    // Only the one left unvalidated is looked up again; the others come from the cache
    // when they appear in another list.
    let again = validate_list(&store, &list.id, &validator, NOW, |_| {})
        .await
        .expect("again");
    assert_eq!((again.validated, again.errors), (0, 1));
    let other = store.create_list("Other", NOW).await.expect("list");
    import_csv(
        &store,
        &other.id,
        "phone\n4155550100\n".as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect("import");
    let before = validator.lookups.load(std::sync::atomic::Ordering::SeqCst);
    let cached = validate_list(&store, &other.id, &validator, NOW, |_| {})
        .await
        .expect("cached");
    assert_eq!((cached.cached, cached.mobile), (1, 1));
    assert_eq!(
        validator.lookups.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
}

#[tokio::test]
async fn a_broken_file_says_what_was_imported_and_an_unclosed_quote_loses_no_row_silently() {
    let store = MemoryStore::new();
    let list = store.create_list("Leads", NOW).await.expect("list");
    // Bad UTF-8 on the fourth row: the three before are imported, and the error says so.
    let mut bytes =
        b"first_name,phone\nAna,415-555-0001\nBen,415-555-0002\nCy,415-555-0003\n".to_vec();
    bytes.extend_from_slice(b"D\xe9bora,415-555-0004\n");
    let error = import_csv(
        &store,
        &list.id,
        bytes.as_slice(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect_err("bad UTF-8");
    let message = error.to_string();
    assert!(message.contains("after its row 3"), "{message}");
    assert!(message.contains("3 created"), "{message}");
    assert!(message.contains("import it again"), "{message}");
    let members = store
        .members(&list.id, None, None, 10)
        .await
        .expect("members");
    assert_eq!(members.len(), 3);
    // Importing the fixed file again adds only what was missing.
    let fixed = "first_name,phone\nAna,415-555-0001\nBen,415-555-0002\nCy,415-555-0003\nDebora,415-555-0004\n";
    let summary = import_csv(
        &store,
        &list.id,
        fixed.as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect("import");
    assert_eq!((summary.created, summary.already_in_list), (1, 3));

    // A quote opened and never closed: the rows after it are read into one field. That row is
    // rejected, saying so, rather than imported with the rest of the file inside it.
    // A note over six lines is a note, commas and all.
    let mut csv = "first_name,phone,note\nEd,415-555-0005,\"Called Mon\nLeft VM, no answer, retry\nSpoke Tue, confirmed, done\n\n\nok\"\nFay,415-555-0006,\"never closed\n".to_owned();
    // The rows read into it leave out their empty last column (the reader is flexible).
    for i in 0..20 {
        csv.push_str(&format!("P{i},415-555-01{i:02}\n"));
    }
    let other = store.create_list("Quoted", NOW).await.expect("list");
    let summary = import_csv(
        &store,
        &other.id,
        csv.as_bytes(),
        &CsvOptions::default(),
        NOW,
        |_| {},
    )
    .await
    .expect("import");
    assert_eq!((summary.rows, summary.rejected), (2, 1), "{summary:?}");
    let reason = &summary.rejections[0].reason;
    assert!(
        reason.contains("spans") && reason.contains("not closed"),
        "{reason}"
    );
    assert!(
        reason.len() < 200,
        "the swallowed rows are not echoed: {reason}"
    );
}
