use super::*;
use crate::config::scenario::Scenario;
use crate::display::Display;
use crate::simulate::{self, Law};

/// The `--json` output of one repetition of the paper's experiment on the
/// simulated host, as the daemon would print it.
fn simulated_log(verbose: bool) -> String {
    let path =
        std::env::temp_dir().join(format!("rex-report-{}-{verbose}.jsonl", std::process::id()));
    let mut scenario = Scenario::builtin();
    scenario.repetitions = 1;
    let file = std::fs::File::create(&path).unwrap();
    let mut display = Display::new(Box::new(file), true, verbose);
    simulate::run(&scenario, Law::Rex, Some(&mut display)).unwrap();
    drop(display);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    text
}

fn events(text: &str, kind: &str) -> usize {
    let tag = format!("\"event\":\"{kind}\"");
    text.lines().filter(|l| l.contains(&tag)).count()
}

#[test]
fn a_verbose_run_is_read_back_with_its_timeline_and_every_reallocation() {
    let text = simulated_log(true);
    let log = RunLog::parse("run.jsonl", &text).unwrap();
    let scenario = Scenario::builtin();
    let names: Vec<&str> = log.domains.iter().map(|d| d.name.as_str()).collect();
    let managed: Vec<&str> = scenario
        .policy
        .domains
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, managed);
    assert_eq!(log.usage_ticks, events(&text, "usage"));
    assert!(log.usage_ticks > 10, "{} ticks", log.usage_ticks);
    let counted: u64 = log.reallocations.values().sum();
    assert_eq!(counted as usize, events(&text, "reallocation"));
    assert!(counted > 0, "the experiment reallocates");
    // A point per managed domain per tick, with the response it reported.
    assert_eq!(log.timeline.len(), log.usage_ticks * managed.len());
    assert!(log.timeline.iter().any(|p| p.response_ms.is_some()));
    let summary = log.summary("run.jsonl");
    for name in managed {
        assert!(summary.contains(name), "{summary}");
    }
    assert!(
        summary.contains("Reallocations by domain and reason"),
        "{summary}"
    );
}

#[test]
fn without_usage_events_the_caps_are_rebuilt_from_the_reallocations() {
    let text = simulated_log(false);
    assert_eq!(events(&text, "usage"), 0);
    let log = RunLog::parse("run.jsonl", &text).unwrap();
    assert_eq!(log.usage_ticks, 0);
    // Each domain's last cap on the plot is the last cap rex set it to.
    for d in &log.domains {
        let last_set = text
            .lines()
            .rev()
            .filter(|l| l.contains("\"event\":\"reallocation\"") && l.contains("\"kind\":\"cap\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["name"] == d.name.as_str() && e["error"].is_null())
            .find_map(|e| e["to"].as_u64());
        let plotted = log.timeline.iter().rev().find(|p| p.vm == d.name).unwrap();
        assert_eq!(
            Some(u64::from(plotted.cap)),
            last_set.or(Some(u64::from(d.cap)))
        );
    }
    assert!(log.summary("run.jsonl").contains("run rex with --verbose"));
}

const START: &str = r#"{"event":"start","t":0.0,"dry_run":false,"interval_ms":1000,"domains":[{"domid":1,"name":"web","cap":20,"mem_target_kb":131072,"sla_ms":900.0},{"domid":2,"name":"batch","cap":20,"mem_target_kb":131072,"sla_ms":null}]}"#;

fn usage(t: f64, response_ms: f64) -> String {
    format!(
        r#"{{"event":"usage","t":{t},"domains":[{{"name":"web","cap":20,"mem_current_kb":131072,"response_ms":{response_ms}}},{{"name":"batch","cap":20,"mem_current_kb":131072,"response_ms":null}}]}}"#
    )
}

#[test]
fn time_missing_an_sla_is_counted_per_tick_above_it() {
    let text = [
        START.to_string(),
        usage(1.0, 1200.0),
        usage(2.0, 800.0),
        usage(3.0, 950.0),
        r#"{"event":"reallocation","t":3.0,"domid":1,"name":"web","kind":"cap","from":20,"to":40,"reason":"x","reason_key":"sla_missed","error":null}"#.into(),
        r#"{"event":"reallocation","t":3.0,"domid":2,"name":"batch","kind":"cap","from":20,"to":10,"reason":"x","reason_key":"preempted","error":"refused"}"#.into(),
        r#"{"event":"timings","t":3.5}"#.into(),
    ]
    .join("\n");
    let log = RunLog::parse("t.jsonl", &text).unwrap();
    assert_eq!(log.violation_s.get("web"), Some(&2.0));
    assert_eq!(
        log.violation_s.get("batch"),
        None,
        "no SLA, nothing to miss"
    );
    assert_eq!(log.duration_s, 3.5);
    assert_eq!(
        log.reallocations,
        BTreeMap::from([(("web".into(), "cap".into(), "sla_missed".into()), 1)])
    );
    assert_eq!(log.failed.get("batch"), Some(&1));
    assert_eq!(log.common_sla_ms(), Some(900.0));
    let summary = log.summary("t.jsonl");
    let web = summary.lines().find(|l| l.starts_with("web ")).unwrap();
    assert_eq!(
        web.split_whitespace().collect::<Vec<_>>(),
        ["web", "900", "2.0", "1", "0"]
    );
}

#[test]
fn a_bad_line_is_named_by_file_and_line() {
    let garbled = format!("{START}\n\n{{\"event\":\"usage\",\"t\":1\n");
    let err = RunLog::parse("run.jsonl", &garbled)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("run.jsonl:3: not a JSON event"), "{err}");
    let no_event = format!("{START}\n[1, 2]\n");
    let err = RunLog::parse("run.jsonl", &no_event)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("run.jsonl:2: not a rex event"), "{err}");
    let bad_start = r#"{"event":"start","t":0,"domains":[]}"#;
    let err = RunLog::parse("run.jsonl", bad_start)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "run.jsonl:1: start event without a valid \"interval_ms\""
    );
    let usage_without_cap = format!(
        "{START}\n{}\n",
        r#"{"event":"usage","t":1,"domains":[{"name":"web","mem_current_kb":1}]}"#
    );
    let err = RunLog::parse("run.jsonl", &usage_without_cap)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "run.jsonl:2: usage event without a valid \"cap\"");
    let err = RunLog::parse("x.log", "").unwrap_err().to_string();
    assert!(err.starts_with("x.log: no start event"), "{err}");
}
