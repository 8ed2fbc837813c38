//! `[rehearsal]` (restore rehearsals) and `[[contact]]` (named contact
//! points): raw TOML → [`RehearsalConfig`] and [`Contact`]s, with
//! file:line:column errors. Rehearsal RTOs are the scenarios' `rto`
//! (`[scenario.NAME]`, defaults full_platform 4 h, single_service 1 h,
//! report_subsystem 2 h), so a custom scenario is one `[scenario.NAME]`
//! table for both incidents and rehearsals.

use std::collections::BTreeMap;
use std::time::Duration;

use outpost_config_diag::{ConfigError, Source};
use serde::Deserialize;
use toml::Spanned;

use crate::contacts::{Contact, Role, MAX_CONTACTS, MAX_FIELD, MAX_NAMES};
use crate::escalation::Scenario;
use crate::rehearsal::RehearsalConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRehearsal {
    default_scenario: Option<Spanned<String>>,
    keep: Option<Spanned<u64>>,
    abandon_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContact {
    name: Spanned<String>,
    role: Spanned<String>,
    email: Option<Spanned<String>>,
    phone: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    note: Option<Spanned<String>>,
    objectives: Option<Spanned<Vec<String>>>,
    modules: Option<Spanned<Vec<String>>>,
}

fn id_ok(s: &str) -> bool {
    crate::ingest::convert::valid_id(s)
}

/// Validates `[rehearsal]` against the scenarios.
pub(super) fn rehearsal(
    src: &Source<'_>,
    raw: RawRehearsal,
    scenarios: &BTreeMap<String, Scenario>,
) -> Result<RehearsalConfig, ConfigError> {
    let mut out = RehearsalConfig {
        rto_ms: scenarios
            .iter()
            .map(|(k, s)| (k.clone(), s.rto_ms))
            .collect(),
        ..RehearsalConfig::default()
    };
    if let Some(s) = &raw.default_scenario {
        if !scenarios.contains_key(s.get_ref()) {
            let known: Vec<&str> = scenarios.keys().map(String::as_str).collect();
            return Err(src.error(
                s.span(),
                format!(
                    "[rehearsal] default_scenario {:?} is not a scenario",
                    s.get_ref()
                ),
                format!(
                    "use one of {} or define [scenario.{}] with rto and rpo",
                    known.join(", "),
                    s.get_ref()
                ),
            ));
        }
        out.default_scenario = s.get_ref().clone();
    }
    if let Some(k) = &raw.keep {
        if !(1..=100_000).contains(k.get_ref()) {
            return Err(src.error(
                k.span(),
                "[rehearsal] `keep` must be 1..=100000",
                "write e.g. 1000 (the default): the newest rehearsals kept",
            ));
        }
        out.keep = *k.get_ref() as usize;
    }
    if let Some(a) = &raw.abandon_after {
        let d = src.duration(a, "abandon_after")?;
        if d < Duration::from_secs(60) {
            return Err(src.error(
                a.span(),
                "[rehearsal] `abandon_after` must be at least 1 minute",
                "write e.g. \"1h\" (the default): a rehearsal silent that long is abandoned",
            ));
        }
        out.abandon_after_ms = d.as_millis() as i64;
    }
    Ok(out)
}

/// Validates `[[contact]]` tables; `objectives` are the configured ones.
pub(super) fn contacts(
    src: &Source<'_>,
    raw: Vec<RawContact>,
    objectives: &[String],
) -> Result<Vec<Contact>, ConfigError> {
    if raw.len() > MAX_CONTACTS {
        return Err(src.error(
            raw[MAX_CONTACTS].name.span(),
            format!("more than {MAX_CONTACTS} contacts"),
            "merge contacts (a contact may cover many objectives and modules)",
        ));
    }
    let mut out: Vec<Contact> = Vec::with_capacity(raw.len());
    for c in raw {
        let name = c.name.get_ref();
        if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(src.error(
                c.name.span(),
                "contact `name` must be 1-64 characters without control characters",
                "write e.g. name = \"Platform operations desk\"",
            ));
        }
        if out.iter().any(|x| &x.name == name) {
            return Err(src.error(
                c.name.span(),
                format!("contact {name:?} is defined twice"),
                "give each contact a unique name",
            ));
        }
        let role = Role::parse(c.role.get_ref()).ok_or_else(|| {
            src.error(
                c.role.span(),
                format!("contact role {:?} is unknown", c.role.get_ref()),
                "write role = \"operations\" or role = \"escalation\"",
            )
        })?;
        let text = |v: &Option<Spanned<String>>, field: &str| -> Result<String, ConfigError> {
            match v {
                None => Ok(String::new()),
                Some(v) if v.get_ref().len() > MAX_FIELD || v.get_ref().chars().any(char::is_control) => {
                    Err(src.error(
                        v.span(),
                        format!("contact `{field}` is longer than {MAX_FIELD} bytes or has control characters"),
                        format!("shorten `{field}` to one line"),
                    ))
                }
                Some(v) => Ok(v.get_ref().trim().to_string()),
            }
        };
        let (email, phone, url, note) = (
            text(&c.email, "email")?,
            text(&c.phone, "phone")?,
            text(&c.url, "url")?,
            text(&c.note, "note")?,
        );
        if email.is_empty() && phone.is_empty() && url.is_empty() {
            return Err(src.error(
                c.name.span(),
                format!("contact {name:?} has no way to reach it"),
                "give at least one of email, phone or url",
            ));
        }
        let names = |v: &Option<Spanned<Vec<String>>>,
                     field: &str,
                     known: Option<&[String]>|
         -> Result<Vec<String>, ConfigError> {
            let Some(v) = v else { return Ok(Vec::new()) };
            if v.get_ref().len() > MAX_NAMES {
                return Err(src.error(
                    v.span(),
                    format!("contact `{field}` lists more than {MAX_NAMES} names"),
                    "leave the list out to cover everything",
                ));
            }
            for n in v.get_ref() {
                if !id_ok(n) {
                    return Err(src.error(
                        v.span(),
                        format!("contact `{field}` names {n:?}, which is not a valid name"),
                        "use 1-64 characters of A-Z a-z 0-9 . _ -",
                    ));
                }
                if let Some(known) = known {
                    if !known.contains(n) {
                        return Err(src.error(
                            v.span(),
                            format!("contact `{field}` names {n:?}, which is not a configured objective"),
                            format!("use one of: {}", known.join(", ")),
                        ));
                    }
                }
            }
            Ok(v.get_ref().clone())
        };
        out.push(Contact {
            name: name.clone(),
            role,
            email,
            phone,
            url,
            note,
            objectives: names(&c.objectives, "objectives", Some(objectives))?,
            modules: names(&c.modules, "modules", None)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, ConfigError};

    fn err(text: &str) -> (usize, usize, String, String) {
        match parse(Path::new("c.toml"), text) {
            Err(ConfigError::Invalid {
                line,
                column,
                message,
                fix,
                ..
            }) => (line, column, message, fix),
            other => panic!("expected an error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn rehearsal_defaults_are_the_guides_rtos() {
        let c = parse(Path::new("c.toml"), "").unwrap();
        let r = &c.rehearsal;
        assert_eq!(r.default_scenario, "full_platform");
        assert_eq!(r.rto_ms["full_platform"], 4 * 3_600_000);
        assert_eq!(r.rto_ms["single_service"], 3_600_000);
        assert_eq!(r.rto_ms["report_subsystem"], 2 * 3_600_000);
        assert_eq!(r.keep, 1_000);
    }

    #[test]
    fn custom_scenarios_and_settings_apply() {
        let text = "[scenario.billing]\nrto = \"30m\"\nrpo = \"5m\"\n\n[rehearsal]\ndefault_scenario = \"billing\"\nkeep = 50\nabandon_after = \"2h\"\n";
        let c = parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(c.rehearsal.default_scenario, "billing");
        assert_eq!(c.rehearsal.rto_ms["billing"], 30 * 60_000);
        assert_eq!(c.rehearsal.keep, 50);
        assert_eq!(c.rehearsal.abandon_after_ms, 2 * 3_600_000);
    }

    #[test]
    fn bad_rehearsal_values_point_at_the_value() {
        let (line, col, msg, fix) = err("[rehearsal]\ndefault_scenario = \"moon\"\n");
        assert_eq!((line, col), (2, 20));
        assert!(
            msg.contains("moon") && fix.contains("full_platform"),
            "{msg} {fix}"
        );
        let (line, _, msg, _) = err("[rehearsal]\nkeep = 0\n");
        assert_eq!(line, 2);
        assert!(msg.contains("keep"));
        let (line, _, _, fix) = err("[rehearsal]\nabandon_after = \"5s\"\n");
        assert_eq!(line, 2);
        assert!(fix.contains("1h"));
        let (line, _, msg, _) = err("[rehearsal]\nrto = \"1h\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("rto"), "{msg}");
    }

    #[test]
    fn contacts_are_validated() {
        let ok = "[[contact]]\nname = \"ops desk\"\nrole = \"operations\"\nemail = \"ops@example.org\"\nobjectives = [\"authentication\"]\nmodules = [\"reports\"]\n";
        let c = parse(Path::new("c.toml"), ok).unwrap();
        let contacts = &c.evaluation.engine.contacts;
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].modules, ["reports"]);
        let (line, _, msg, fix) =
            err("[[contact]]\nname = \"x\"\nrole = \"boss\"\nemail = \"a@b\"\n");
        assert_eq!(line, 3);
        assert!(msg.contains("boss") && fix.contains("escalation"));
        let (line, _, msg, _) = err("[[contact]]\nname = \"x\"\nrole = \"operations\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("no way to reach"));
        let (line, _, msg, fix) = err("[[contact]]\nname = \"x\"\nrole = \"operations\"\nphone = \"1\"\nobjectives = [\"nope\"]\n");
        assert_eq!(line, 5);
        assert!(
            msg.contains("nope") && fix.contains("authentication"),
            "{fix}"
        );
        let (line, _, msg, _) = err("[[contact]]\nname = \"x\"\nrole = \"operations\"\nphone = \"1\"\n[[contact]]\nname = \"x\"\nrole = \"escalation\"\nphone = \"2\"\n");
        assert_eq!(line, 6);
        assert!(msg.contains("twice"));
    }
}
