//! `[escalation]` and its per-rule tables.

use std::collections::BTreeMap;
use std::time::Duration;

use outpost_config_diag::ConfigError;
use toml::Spanned;

use super::{RawEscalation, V};
use crate::escalation::{RulesConfig, Scenario};
use crate::model::Outcome;

/// Applies `[escalation]` over the default thresholds.
pub(super) fn escalation(
    v: &V<'_>,
    esc: &RawEscalation,
    rules: &mut RulesConfig,
    scenarios: &BTreeMap<String, Scenario>,
) -> Result<(), ConfigError> {
    let src = v.src;
    if let Some(f) = &esc.failing {
        let list = v.outcomes(f, "failing")?;
        if list.is_empty() {
            return Err(src.error(f.span(), "`failing` is empty", "list the outcomes the rules treat as failing, e.g. [\"failed\", \"timeout\", \"unreachable\", \"stale\"]"));
        }
        rules.failing = Outcome::ALL.map(|o| list.contains(&o));
    }
    if let Some(n) = &esc.resolve_after {
        if !(1..=1000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`resolve_after` must be 1..=1000",
                "write e.g. 3 (the default)",
            ));
        }
        rules.resolve_after = *n.get_ref();
    }
    if let Some(f) = &esc.silent_factor {
        if !(1.0..=1000.0).contains(f.get_ref()) {
            return Err(src.error(
                f.span(),
                "`silent_factor` must be 1..=1000",
                "write e.g. 3.0 (the default)",
            ));
        }
        rules.silent_factor = *f.get_ref();
    }
    let consecutive = |c: &Option<Spanned<u32>>, d: &mut u32| -> Result<(), ConfigError> {
        if let Some(c) = c {
            if !(1..=1000).contains(c.get_ref()) {
                return Err(src.error(c.span(), "`consecutive` must be 1..=1000", "write e.g. 2"));
            }
            *d = *c.get_ref();
        }
        Ok(())
    };
    if let Some(r) = &esc.auth {
        if let Some(m) = &r.matchers {
            rules.auth.selectors = v.selectors(m)?;
        }
        if let Some(s) = &r.min_share {
            if !(0.0..=1.0).contains(s.get_ref()) || *s.get_ref() == 0.0 {
                return Err(src.error(
                    s.span(),
                    "`min_share` must be in (0, 1]",
                    "write e.g. 0.5 (half the reporting sites)",
                ));
            }
            rules.auth.min_share = *s.get_ref();
        }
        consecutive(&r.consecutive, &mut rules.auth.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.auth.scenario = v.scenario(s, scenarios)?;
        }
    }
    if let Some(r) = &esc.pages {
        if let Some(m) = &r.matchers {
            rules.pages.selectors = v.selectors(m)?;
        }
        if let Some(n) = &r.min_modules {
            if !(1..=1000).contains(n.get_ref()) {
                return Err(src.error(n.span(), "`min_modules` must be 1..=1000", "write e.g. 2"));
            }
            rules.pages.min_modules = *n.get_ref();
        }
        consecutive(&r.consecutive, &mut rules.pages.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.pages.scenario = v.scenario(s, scenarios)?;
        }
    }
    if let Some(r) = &esc.persistent {
        if let Some(m) = &r.matchers {
            rules.persistent.selectors = v.selectors(m)?;
        }
        consecutive(&r.consecutive, &mut rules.persistent.consecutive)?;
        if let Some(d) = &r.duration {
            rules.persistent.duration_ms = v
                .duration(d, "duration", Duration::from_secs(1))?
                .as_millis() as i64;
        }
        if let Some(s) = &r.scenario {
            rules.persistent.scenario = v.scenario(s, scenarios)?;
        }
    }
    if let Some(r) = &esc.stale {
        if let Some(m) = &r.matchers {
            rules.stale.selectors = v.selectors(m)?;
        }
        consecutive(&r.consecutive, &mut rules.stale.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.stale.scenario = v.scenario(s, scenarios)?;
        }
    }
    if let Some(r) = &esc.inconsistent {
        if let Some(m) = &r.matchers {
            rules.inconsistent.selectors = v.selectors(m)?;
        }
        consecutive(&r.consecutive, &mut rules.inconsistent.consecutive)?;
        if let Some(s) = &r.scenario {
            rules.inconsistent.scenario = v.scenario(s, scenarios)?;
        }
    }
    if let Some(r) = &esc.backup {
        if let Some(m) = &r.matchers {
            rules.backup.selectors = v.selectors(m)?;
        }
        if let Some(l) = &r.scenario_label {
            rules.backup.scenario_label.clone_from(l);
        }
        if let Some(s) = &r.default_scenario {
            rules.backup.default_scenario = v.scenario(s, scenarios)?;
        }
    }

    Ok(())
}
