//! `[[objective]]`: objectives from the config (replacing the defaults).

use std::collections::BTreeMap;
use std::time::Duration;

use outpost_config_diag::ConfigError;

use super::{name_ok, RawObjective, MAX_OBJECTIVES, V};
use crate::escalation::Scenario;
use crate::model::Outcome;
use crate::slo::objective::{
    default_classes, Class, Guard, Objective, Selector, Source as ObjSource,
};

/// The configured objectives, or `None` to keep the defaults.
pub(super) fn objectives(
    v: &V<'_>,
    raw: &[RawObjective],
    scenarios: &BTreeMap<String, Scenario>,
) -> Result<Option<Vec<Objective>>, ConfigError> {
    let src = v.src;
    if !raw.is_empty() {
        if raw.len() > MAX_OBJECTIVES {
            return Err(src.error(
                raw[MAX_OBJECTIVES].name.span(),
                format!("more than {MAX_OBJECTIVES} objectives"),
                "merge objectives",
            ));
        }
        let mut objectives: Vec<Objective> = Vec::new();
        for o in raw {
            objectives.push(objective(v, o, scenarios)?);
            if objectives[..objectives.len() - 1]
                .iter()
                .any(|x| x.name == o.name.get_ref().as_str())
            {
                return Err(src.error(
                    o.name.span(),
                    format!("objective {:?} is defined twice", o.name.get_ref()),
                    "give each objective a unique name",
                ));
            }
        }
        let acks = objectives
            .iter()
            .filter(|o| matches!(o.source, ObjSource::Acknowledgement { .. }))
            .count();
        if acks > 1 {
            return Err(src.error(
                raw[0].name.span(),
                "more than one acknowledgement objective",
                "keep one objective with `acknowledge_within`",
            ));
        }
        return Ok(Some(objectives));
    }
    Ok(None)
}

fn objective(
    v: &V<'_>,
    o: &RawObjective,
    scenarios: &BTreeMap<String, Scenario>,
) -> Result<Objective, ConfigError> {
    let src = v.src;
    if !name_ok(o.name.get_ref()) {
        return Err(src.error(
            o.name.span(),
            format!("objective name {:?} is not valid", o.name.get_ref()),
            "use 1-64 of A-Z a-z 0-9 . _ -",
        ));
    }
    let t = *o.target.get_ref();
    if !(50.0..100.0).contains(&t) {
        return Err(src.error(
            o.target.span(),
            format!("`target` = {t} is not a percentage in [50, 100)"),
            "write the target in percent, e.g. 99.5",
        ));
    }
    let scenario = match &o.scenario {
        Some(s) => v.scenario(s, scenarios)?,
        None => "single_service".to_string(),
    };
    let mut guard = Guard::default();
    if let Some(n) = &o.min_bad_events {
        if !(1..=100_000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`min_bad_events` must be 1..=100000",
                "write e.g. 3 (the default)",
            ));
        }
        guard.min_bad_events = *n.get_ref();
    }
    if let Some(n) = &o.min_bad_sites {
        if !(1..=10_000).contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                "`min_bad_sites` must be 1..=10000",
                "write e.g. 2 (the default)",
            ));
        }
        guard.min_bad_sites = *n.get_ref();
    }
    let source = if let Some(within) = &o.acknowledge_within {
        if let Some(m) = &o.matcher {
            return Err(src.error(
                m.span(),
                "an acknowledgement objective counts incidents and takes no `match`",
                "remove `match` (or `acknowledge_within`)",
            ));
        }
        let severity = match &o.severity {
            None => "critical".to_string(),
            Some(s) if crate::escalation::Severity::parse(s.get_ref()).is_some() => {
                s.get_ref().clone()
            }
            Some(s) => {
                return Err(src.error(
                    s.span(),
                    format!("unknown severity {:?}", s.get_ref()),
                    "use critical, major or minor",
                ))
            }
        };
        ObjSource::Acknowledgement {
            within_ms: v
                .duration(within, "acknowledge_within", Duration::from_secs(1))?
                .as_millis() as i64,
            severity,
        }
    } else {
        let selector = match &o.matcher {
            Some(m) => v.selector(m.get_ref(), m.span())?,
            None => Selector::label("objective", o.name.get_ref()),
        };
        let mut classes = default_classes();
        let mut given: BTreeMap<Outcome, &str> = BTreeMap::new();
        for (list, class, field) in [
            (&o.good, Class::Good, "good"),
            (&o.bad, Class::Bad, "bad"),
            (&o.excluded, Class::Excluded, "excluded"),
        ] {
            let Some(list) = list else { continue };
            for oc in v.outcomes(list, field)? {
                if let Some(prev) = given.insert(oc, field) {
                    return Err(src.error(
                        list.span(),
                        format!(
                            "outcome {:?} is listed in both `{prev}` and `{field}`",
                            oc.as_str()
                        ),
                        "list each outcome in one class only",
                    ));
                }
                classes[oc.index()] = class;
            }
        }
        ObjSource::Results { selector, classes }
    };
    Ok(Objective {
        name: o.name.get_ref().clone(),
        description: o.description.clone().unwrap_or_default(),
        target: t / 100.0,
        source,
        guard,
        alert: o.alert.unwrap_or(true),
        scenario,
    })
}
