//! Every option and argument of every command (and subcommand) has a description in `--help`.

mod common;

use common::{bare, text};

fn help(args: &[&str]) -> String {
    let out = bare().args(args).arg("--help").output().expect("carepass runs");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The names in a help text's `Commands:` section.
fn commands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .filter(|c| c != "help")
                .collect()
        })
        .unwrap_or_default()
}

/// Option and argument lines with nothing after their name.
fn undescribed(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if line == "Options:" || line == "Arguments:" {
            in_list = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_list = false;
        }
        if in_list && (line.trim_start().starts_with('-') || line.trim_start().starts_with('<')) {
            let name_end = line.trim_start().find("  ").unwrap_or(line.trim_start().len());
            let after = line.trim_start()[name_end..].trim();
            if after.is_empty() {
                missing.push(line.trim().to_string());
            }
        }
    }
    missing
}

#[test]
fn every_option_of_every_command_is_described() {
    let top = help(&[]);
    let mut missing = Vec::new();
    let mut checked = 0;
    for command in commands(&top) {
        let text = help(&[&command]);
        missing.extend(undescribed(&text).into_iter().map(|m| format!("{command}: {m}")));
        checked += 1;
        for sub in commands(&text) {
            let text = help(&[&command, &sub]);
            missing.extend(undescribed(&text).into_iter().map(|m| format!("{command} {sub}: {m}")));
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} help texts found");
    assert!(missing.is_empty(), "options without a description:\n{}", missing.join("\n"));
}
