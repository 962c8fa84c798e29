//! Task events (`task.*`, 2026-03-30).

use openphone_types::{ActivityId, ConversationId, PhoneNumberId, TaskId, UserId};

use super::raw::{RawContext, RawObject};
use super::required;
use crate::Error;

openphone_types::string_enum! {
    /// What happened to a task: the part of the event type after `task.`.
    TaskAction {
        /// `task.created`.
        Created = "created",
        /// `task.updated` (title or description).
        Updated = "updated",
        /// `task.deleted`.
        Deleted = "deleted",
        /// `task.completed`.
        Completed = "completed",
        /// `task.reopened`.
        Reopened = "reopened",
        /// `task.assigned`.
        Assigned = "assigned",
        /// `task.unassigned`.
        Unassigned = "unassigned",
        /// `task.overdue`.
        Overdue = "overdue",
        /// `task.linked`.
        Linked = "linked",
        /// `task.unlinked`.
        Unlinked = "unlinked",
        /// `task.duedate.updated`.
        DueDateUpdated = "duedate.updated",
        /// `task.duedate.removed`.
        DueDateRemoved = "duedate.removed",
    }
}

/// A task event's resource and context. Most task events carry only the id; fetch the task
/// when its full state is needed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Task {
    /// The task id (`TK…`).
    pub id: TaskId,
    /// Title (`task.created`).
    pub title: Option<String>,
    /// Description (`task.created`).
    pub description: Option<String>,
    /// Due date (`task.created`, `task.overdue`), or the new one (`task.duedate.updated`).
    pub due_date: Option<String>,
    /// The user assigned (`task.assigned`).
    pub assigned_to: Option<UserId>,
    /// The user unassigned (`task.unassigned`).
    pub unassigned_from: Option<UserId>,
    /// Fields changed by `task.updated`, with their new values.
    pub updated_fields: Vec<(String, Option<String>)>,
    /// The user who acted.
    pub actor_id: Option<UserId>,
    /// The workspace number it is linked to.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation it is linked to (or was unlinked from).
    pub conversation_id: Option<ConversationId>,
    /// The activity it is linked to.
    pub activity_id: Option<ActivityId>,
    /// The phone number group.
    pub phone_number_group_id: Option<String>,
}

pub(crate) fn normalize(object: RawObject, context: RawContext, at: &str) -> Result<Task, Error> {
    Ok(Task {
        id: TaskId::new(required(object.id, at, "id")?),
        title: object.title,
        description: object.description,
        due_date: object.updated_due_date.or(object.due_date),
        assigned_to: object.assigned_to.map(UserId::new),
        unassigned_from: object.unassigned_from.map(UserId::new),
        updated_fields: object
            .updated_fields
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, update)| update.is_updated)
            .map(|(name, update)| (name, update.updated_value))
            .collect(),
        actor_id: context.actor_id.map(UserId::new),
        phone_number_id: context.phone_number_id.map(PhoneNumberId::new),
        conversation_id: context.conversation_id.map(ConversationId::new),
        activity_id: context.activity_id.map(ActivityId::new),
        phone_number_group_id: context.phone_number_group_id,
    })
}
