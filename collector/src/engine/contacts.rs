//! Which named contact points an incident concerns: the contacts covering
//! the objectives and modules it touches — its own labels (`objective`,
//! `module`, `modules`) and the labels of its series — plus the general
//! ones (see `crate::contacts`). Pure.

use std::collections::BTreeSet;

use super::Engine;
use crate::contacts::{matching, Contact};
use crate::incidents::Incident;

impl Engine {
    /// The contacts of `inc`, operations first.
    pub fn contacts_of(&self, inc: &Incident) -> Vec<&Contact> {
        let contacts = &self.cfg.contacts;
        if contacts.is_empty() {
            return Vec::new();
        }
        let mut objectives = BTreeSet::new();
        let mut modules = BTreeSet::new();
        if let Some(o) = inc.labels.get("objective") {
            objectives.insert(o.clone());
        }
        if let Some(m) = inc.labels.get("module") {
            modules.insert(m.clone());
        }
        if let Some(ms) = inc.labels.get("modules") {
            modules.extend(ms.split(',').map(str::to_string));
        }
        for (agent, check) in &inc.series {
            if let Some(s) = self.series.get(&(agent.clone(), check.clone())) {
                if let Some(o) = s.labels.get("objective") {
                    objectives.insert(o.clone());
                }
                if !s.module().is_empty() {
                    modules.insert(s.module().to_string());
                }
            }
        }
        matching(contacts, &objectives, &modules)
    }
}
