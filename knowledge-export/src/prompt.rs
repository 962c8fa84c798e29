//! Our prompt, versioned: what the model is asked, with the most relevant SOPs.

use crate::format::ExportRecord;
use crate::providers::Completion;
use crate::sop::Sop;

/// The prompt's version, stored with every insight it produced.
pub const PROMPT_VERSION: &str = "sop-insights/1";

/// How much of each SOP goes into the prompt.
const SOP_CHARS: usize = 2_000;

const SYSTEM: &str = "You review resolved customer conversations of a business (SMS threads \
and calls between its customers and its staff) against the business's standard operating \
procedures (SOPs). Find NEW issues, questions or requests that the SOPs given do not already \
cover. Ignore anything the SOPs already answer, greetings, small talk, and repetitive or \
already answered questions. Several threads raising the same point make one insight listing \
all their thread ids.

Answer with ONLY a JSON object, no prose, in exactly this shape:
{\"insights\": [{\"source\": \"the customer's question or request, quoted or paraphrased\", \
\"summary\": \"what the SOPs are missing\", \"action\": \"the change to make to the SOPs\", \
\"category\": \"the SOP category it belongs to\", \"sop_target\": \"the path of the SOP file to \
change, or null for a new one\", \"confidence\": \"high\" | \"medium\" | \"low\", \
\"thread_ids\": [thread ids it came from]}]}
Answer {\"insights\": []} when there is nothing new. Personal data in the threads is \
replaced by placeholders like [phone]; never try to restore it.";

/// The request for a batch of threads and the SOPs relevant to it.
pub fn build(records: &[ExportRecord], sops: &[&Sop]) -> Completion {
    let mut user = String::from("Existing SOPs (the most relevant ones):\n");
    if sops.is_empty() {
        user.push_str("(none match these conversations)\n");
    }
    for sop in sops {
        let text: String = sop.text.chars().take(SOP_CHARS).collect();
        user.push_str(&format!(
            "\n--- SOP {} (category {}): {}\n{}\n",
            sop.path, sop.category, sop.title, text
        ));
    }
    user.push_str("\nResolved threads, one JSON object per line (role customer or staff):\n");
    for record in records {
        user.push_str(&record.to_line());
        user.push('\n');
    }
    Completion {
        system: SYSTEM.to_owned(),
        user,
    }
}

/// The request asking again after invalid output, with the parse error.
pub fn retry(first: &Completion, answer: &str, error: &str) -> Completion {
    Completion {
        system: first.system.clone(),
        user: format!(
            "{}\n\nYour previous answer was:\n{answer}\n\nIt is invalid: {error}. Answer again with only the JSON object in the required shape.",
            first.user
        ),
    }
}
