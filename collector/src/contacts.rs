//! Named contact points for operations and escalation (the guide's
//! "named contact points"), from `[[contact]]` in the collector config.
//!
//! A contact covers the objectives and modules it names; one naming
//! neither covers everything. [`matching`] picks the contacts of an
//! incident from the objectives and modules it touches (its labels and
//! the labels of its series, gathered by the engine). Pure, no I/O.
//!
//! Bounds: at most [`MAX_CONTACTS`] contacts, [`MAX_NAMES`] objectives or
//! modules each, free-text fields at most [`MAX_FIELD`] bytes; the
//! Alertmanager annotation is clipped by the alert builder.

use std::collections::BTreeSet;

/// Most contacts in a config.
pub const MAX_CONTACTS: usize = 64;
/// Most objectives (or modules) one contact names.
pub const MAX_NAMES: usize = 64;
/// Longest free-text field (email, phone, url, note).
pub const MAX_FIELD: usize = 256;

/// What a contact is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Day-to-day operations (first line).
    Operations,
    /// Escalation (management, vendor, on-call lead).
    Escalation,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operations => "operations",
            Role::Escalation => "escalation",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operations" => Some(Role::Operations),
            "escalation" => Some(Role::Escalation),
            _ => None,
        }
    }
}

/// One named contact point.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub name: String,
    pub role: Role,
    pub email: String,
    pub phone: String,
    pub url: String,
    pub note: String,
    /// Objectives covered (empty with `modules` empty: everything).
    pub objectives: Vec<String>,
    /// Modules covered (the checks' `module` label).
    pub modules: Vec<String>,
}

impl Contact {
    /// Covers everything: names neither objectives nor modules.
    pub fn is_general(&self) -> bool {
        self.objectives.is_empty() && self.modules.is_empty()
    }

    /// "name (role): email, phone, url" — the annotation form.
    pub fn line(&self) -> String {
        let reach: Vec<&str> = [&self.email, &self.phone, &self.url]
            .into_iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        if reach.is_empty() {
            format!("{} ({})", self.name, self.role.as_str())
        } else {
            format!(
                "{} ({}): {}",
                self.name,
                self.role.as_str(),
                reach.join(", ")
            )
        }
    }

    /// The contact as JSON (API, webhooks, report).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "role": self.role.as_str(),
            "email": self.email,
            "phone": self.phone,
            "url": self.url,
            "note": self.note,
            "objectives": self.objectives,
            "modules": self.modules,
        })
    }
}

/// The contacts covering any of `objectives` or `modules`, plus the
/// general ones; operations first, then escalation, in config order.
pub fn matching<'a>(
    contacts: &'a [Contact],
    objectives: &BTreeSet<String>,
    modules: &BTreeSet<String>,
) -> Vec<&'a Contact> {
    let mut out: Vec<&Contact> = contacts
        .iter()
        .filter(|c| {
            c.is_general()
                || c.objectives.iter().any(|o| objectives.contains(o))
                || c.modules.iter().any(|m| modules.contains(m))
        })
        .collect();
    out.sort_by_key(|c| c.role);
    out
}

/// The `contacts` annotation: one line per contact, `; `-separated.
pub fn annotation(list: &[&Contact]) -> String {
    list.iter().map(|c| c.line()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, role: Role, objectives: &[&str], modules: &[&str]) -> Contact {
        Contact {
            name: name.into(),
            role,
            email: format!("{name}@example.org"),
            phone: String::new(),
            url: String::new(),
            note: String::new(),
            objectives: objectives.iter().map(|s| s.to_string()).collect(),
            modules: modules.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contacts_match_by_objective_module_or_generally() {
        let all = vec![
            c("lead", Role::Escalation, &[], &[]),
            c("auth-desk", Role::Operations, &["authentication"], &[]),
            c("reports-team", Role::Operations, &[], &["reports"]),
        ];
        let names = |o: &[&str], m: &[&str]| -> Vec<String> {
            matching(&all, &set(o), &set(m))
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names(&["authentication"], &[]), ["auth-desk", "lead"]);
        assert_eq!(names(&[], &["reports"]), ["reports-team", "lead"]);
        assert_eq!(names(&["page_access"], &["alerts"]), ["lead"]);
        let list = matching(&all, &set(&["authentication"]), &set(&[]));
        assert_eq!(
            annotation(&list),
            "auth-desk (operations): auth-desk@example.org; lead (escalation): lead@example.org"
        );
    }
}
